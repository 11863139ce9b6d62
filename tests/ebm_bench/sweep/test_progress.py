"""RunLines: which trajectory rows a log file gets past the 30 s throttle, whatever the budget."""

from __future__ import annotations

from io import StringIO

from rich.console import Console

from ebm_bench import Budget, RunConfig
from ebm_bench.sweep import RunLines
from ebm_bench.train import RunResult, RunStart


def lines_of(budget: Budget, rows: list[dict], eval_every: int = 0) -> list[str]:
    """The lines one run prints for `rows`, on a clock that never reaches the throttle's 30 s."""
    out = StringIO()
    lines = RunLines(Console(file=out, width=200), RunConfig(budget=budget, eval_every=eval_every), clock=lambda: 0.0)
    lines.on_start(RunStart("r", 0, budget, budget.expected_steps(64)))
    for row in rows:
        lines.on_log({"images": row["step"] * 64, "energy_real_mean": 1.0, "energy_fake_mean": 2.0} | row)
    lines.ended(RunResult(run_id="r", run_dir="d", method="ebgan", dataset="mnist", seed=0, status="finished",
                          budget={}, steps=rows[-1]["step"], wall_s=rows[-1]["wall_s"]))
    return out.getvalue().splitlines()


def test_the_last_row_of_a_time_budget_is_printed():
    printed = lines_of(Budget("seconds", 10), [{"step": s, "wall_s": w} for s, w in ((5, 2.0), (9, 6.0), (12, 9.9996))])
    assert [line.split("  ")[1] for line in printed if "steps/s" in line] == ["step 5 (2/10 s)", "step 12 (10/10 s)"]
    assert printed[-2:] == ["r trained to step 12; end-of-run evaluation started",
                            "r finished: 12 steps in 10.0 s; end-of-run evaluation took 0.0 s"]


def test_evaluations_between_rows_get_a_line_each():
    printed = lines_of(Budget("steps", 10), [{"step": s, "wall_s": s / 10} for s in (4, 8, 10)], eval_every=3)
    assert [line for line in printed if "scored" in line] == [f"r scored at step {s} (evaluation.csv)"
                                                              for s in (3, 6, 9, 10)]


def test_a_diverged_row_is_printed_and_not_evaluated():
    printed = lines_of(Budget("steps", 10), [{"step": 2, "wall_s": 0.1}, {"step": 4, "wall_s": 0.2,
                                                                         "loss_d": float("nan")}], eval_every=2)
    assert "r  step 4/10" in printed[-3] and printed[-2] == "r diverged at step 4: not evaluated"
    assert [line for line in printed if "scored" in line] == ["r scored at step 2 (evaluation.csv)"]
