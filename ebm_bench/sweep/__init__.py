"""Sweeps: a grid of runs (grid), where they train (executors: `execute`, for `run` as for `sweep`), what they
cost (cost) and what a log file shows of them (progress). The `ebm-bench sweep` command is ebm_bench.cli.sweep."""

from __future__ import annotations

from ebm_bench.config import preset_names

from .cost import (CALIBRATION_SHARE, SAFETY_SHARE, CostBook, PackWork, describe_seconds, parse_time_limit,
                   time_packs)
from .executors import (Local, Outcome, Progress, Ray, Window, execute, execute_local, execute_ray, execute_window,
                        pack_works, run_pack_safely, run_safely)
from .grid import (Plan, apply_setting, apply_settings, check_names, checked, expand,
                   matched_configs, parse_grid, plan_runs, setting_of)
from .progress import RunLines, parse_threads, thread_count, use_threads

__all__ = ["CALIBRATION_SHARE", "SAFETY_SHARE", "CostBook", "Local", "Outcome", "PackWork", "Plan", "Progress", "Ray",
           "RunLines", "Window", "apply_setting", "apply_settings", "check_names", "checked", "describe_seconds",
           "execute", "execute_local", "execute_ray", "execute_window", "expand", "matched_configs",
           "pack_works", "parse_grid", "parse_threads", "parse_time_limit", "plan_runs", "preset_names",
           "run_pack_safely", "run_safely", "setting_of", "thread_count", "time_packs",
           "use_threads"]
