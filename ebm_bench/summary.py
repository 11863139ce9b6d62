"""Terminal summaries of finished runs."""

from __future__ import annotations

from typing import Sequence

from rich.table import Table


def _fmt(value, digits: int = 4) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def summary_table(results: Sequence) -> Table:
    """One row per run: status, budget used, speed, size, and where its energies ended."""
    table = Table(title="ebm-bench runs")
    for column in ("method", "seed", "status", "steps", "wall s", "steps/s", "E(x)", "E(G(z))", "held-out E",
                   "AUROC"):
        table.add_column(column, justify="left" if column in ("method", "status") else "right")
    for r in results:
        table.add_row(r.method, str(r.seed), r.status, str(r.steps), _fmt(r.wall_s, 3), _fmt(r.steps_per_s, 3),
                      _fmt(r.final.get("energy_real_mean")), _fmt(r.final.get("energy_fake_mean")),
                      _fmt(r.evaluation.get("energy_heldout_mean")), _fmt(r.evaluation.get("energy_auroc"), 3))
    return table
