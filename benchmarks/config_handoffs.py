"""Count the hand-offs of a run's config from `ebm-bench run` to its record (issue 24's measure of the house).

Runs `ebm-bench run --methods ebgan --steps 2` (tiny nets, no scoring) under a profiler and records every call
from one ebm-bench module into another that passes a RunConfig (as an argument, or inside a Plan, a PreparedRun or
an Outcome), and every return that carries one back into another module. A hand-off is such a call edge (caller
module -> function, counted once however often it repeats; the config's own methods and constructors are not
hand-offs); a climb is a hand-off into a module of a higher layer (pyproject.toml's layers, highest first), which
only a callback can make; a return up is a config carried back into the module that called for it.

    python benchmarks/config_handoffs.py --data-root DIR
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import tomllib
from pathlib import Path

import ebm_bench
from ebm_bench.cli import main
from ebm_bench.config import RunConfig

ROOT = Path(__file__).resolve().parent.parent


def layers() -> dict[str, int]:
    """Room -> layer index (0: the top, cli)."""
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())
    order = spec["tool"]["importlinter"]["contracts"][0]["layers"]
    return {room.strip(): i for i, layer in enumerate(order) for room in layer.split("|")}


def room(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "ebm_bench" and len(parts) > 1 else None


HOLDERS = {"Plan": "configs", "PreparedRun": "config", "Outcome": "config", "RunState": "config",
           "Resolved": "config"}  # what carries a run's config besides the RunConfig itself


def carries(value, depth: int = 0) -> bool:
    if isinstance(value, RunConfig):
        return True
    if depth > 1:
        return False
    if type(value) in (list, tuple):
        return any(carries(v, depth + 1) for v in value[:4])
    field = HOLDERS.get(type(value).__name__)
    return field is not None and carries(value.__dict__.get(field), depth + 1)


def main_count(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True)
    args = parser.parse_args(argv)
    rank = layers()
    handoffs: dict[str, None] = {}
    climbs: dict[str, None] = {}
    returns: dict[str, None] = {}
    modules: set[str] = set()
    stack: list[str] = []

    def profile(frame, event, arg):
        if event == "call":
            callee = frame.f_globals.get("__name__", "")
            caller = stack[-1] if stack else ""
            stack.append(callee)
            if not (callee.startswith("ebm_bench") and caller.startswith("ebm_bench")) or caller == callee:
                return
            if callee == "ebm_bench.config":  # the config's own methods and constructors
                return
            values = [frame.f_locals[name] for name in frame.f_code.co_varnames[:frame.f_code.co_argcount]
                      if name in frame.f_locals]
            if any(carries(v) for v in values):
                edge = f"{caller} -> {callee}.{frame.f_code.co_name}"
                handoffs[edge] = None
                modules.update((caller, callee))
                if rank.get(room(callee) or "", -1) < rank.get(room(caller) or "", -1):
                    climbs[edge] = None
        elif event == "return":
            callee = stack.pop() if stack else ""
            caller = stack[-1] if stack else ""
            if (callee.startswith("ebm_bench") and caller.startswith("ebm_bench") and callee != caller
                    and callee != "ebm_bench.config" and carries(arg)):
                returns[f"{callee}.{frame.f_code.co_name} -> {caller}"] = None

    with tempfile.TemporaryDirectory() as out:
        command = ["run", "--methods", "ebgan", "--steps", "2", "--size-g", "16", "--size-d", "16", "--n-layer-g",
                   "2", "--batch-size", "16", "--holdout", "64", "--eval-n", "0", "--no-download", "--quiet",
                   "--data-root", args.data_root, "--out", out]
        sys.setprofile(profile)
        try:
            code = main(command)
        finally:
            sys.setprofile(None)
    ebm_bench_modules = sorted(m for m in modules if m.startswith("ebm_bench"))
    print(f"ebm-bench {ebm_bench.__version__}: exit {code}")
    print(f"{len(handoffs)} hand-offs across {len(ebm_bench_modules)} modules; {len(climbs)} climbs (calls into a "
          f"higher layer); {len(returns)} returns carrying it back up")
    for line in handoffs:
        print("  hand-off", line, "(climb)" if line in climbs else "")
    for line in returns:
        print("  return  ", line)
    print("  modules ", ", ".join(ebm_bench_modules))
    return 0


if __name__ == "__main__":
    sys.exit(main_count(sys.argv[1:]))
