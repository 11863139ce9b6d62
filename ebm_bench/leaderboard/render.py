"""A leaderboard table as text: display cells (mean ± std [95% CI]), markdown, csv, latex, html."""

from __future__ import annotations

import io

import pandas as pd

from ebm_bench.errors import ConfigError
from ebm_bench.table import FORMATS, TextTable

from .build import INFO_COLUMNS, SETUP_COLUMNS, metric_direction


def table_metrics(table: pd.DataFrame) -> list[str]:
    """The metrics of a leaderboard table, in its column order."""
    return [c[: -len("_mean")] for c in table.columns if c.endswith("_mean") and f"{c[:-5]}_ci95" in table]


def _cell(value, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "-"
    return f"{value:.{digits}g}" if isinstance(value, float) else str(value)


def display_rows(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Header and string cells: each metric as 'mean ± std [low, high]' (the 95% interval)."""
    metrics = table_metrics(table)
    arrows = {m: {"higher": " ↑", "lower": " ↓"}.get(metric_direction(m) or "", "") for m in metrics}
    header = (["rank", "dataset", "budget", "method", "variant", "seeds", "diverged"]
              + [f"{m}{arrows[m]}" for m in metrics] + ["params G", "params D", "wall s", "steps/s"])
    rows = []
    for _, r in table.iterrows():
        cells = [str(r["rank"]), r["dataset"], r["budget"], r["method"], r["variant"] or "",
                 _cell(r["n_runs"]), _cell(r["n_diverged"])]
        for m in metrics:
            mean, std, ci = r[f"{m}_mean"], r[f"{m}_std"], r[f"{m}_ci95"]
            text = _cell(mean)
            if std == std:
                text += f" ± {_cell(std, 2)}"
            if ci == ci:
                text += f" [{_cell(mean - ci)}, {_cell(mean + ci)}]"
            cells.append(text)
        cells += [f"{int(r['params_g']):,}" if r["params_g"] == r["params_g"] else "-",
                  f"{int(r['params_d']):,}" if r["params_d"] == r["params_d"] else "-",
                  _cell(r["wall_s"]), _cell(r["steps_per_s"])]
        rows.append(cells)
    return header, rows


def _setup_note(table: pd.DataFrame) -> str:
    parts = []
    for name in list(SETUP_COLUMNS) + list(INFO_COLUMNS):
        values = sorted({v for v in table.get(name, pd.Series(dtype=str)).dropna().astype(str) if v})
        if values:
            parts.append(f"{name}: {', '.join(v[:16] for v in values)}")
    return "; ".join(parts)


def text_table(table: pd.DataFrame) -> TextTable:
    """The leaderboard as the one table model: display cells, and the note saying what they are and the setup."""
    header, rows = display_rows(table)
    return TextTable(header, rows, note=f"Mean ± std [95% CI] over finished seeds. {_setup_note(table)}",
                     text_columns=5)


def render(table: pd.DataFrame, fmt: str) -> str:
    """The table as markdown, csv, latex or html (rich tables are printed by the CLI). CSV holds the numbers
    themselves (one column per statistic), the other formats the display cells."""
    if fmt == "csv":
        buffer = io.StringIO()
        table.to_csv(buffer, index=False, lineterminator="\n")
        return buffer.getvalue()
    if fmt == "html":
        return text_table(table).html(page_title="ebm-bench leaderboard")
    if fmt in FORMATS:
        return text_table(table).render(fmt)
    raise ConfigError(f"unknown format {fmt!r}; use rich, markdown, csv, latex or html")
