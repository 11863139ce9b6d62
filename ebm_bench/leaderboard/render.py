"""A leaderboard table as text: display cells (mean ± std [95% CI]), markdown, csv, latex, html."""

from __future__ import annotations

import html
import io

import pandas as pd

from ebm_bench.errors import ConfigError

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


def render(table: pd.DataFrame, fmt: str) -> str:
    """The table as markdown, csv, latex or html (rich tables are printed by the CLI)."""
    if fmt == "csv":
        buffer = io.StringIO()
        table.to_csv(buffer, index=False, lineterminator="\n")
        return buffer.getvalue()
    header, rows = display_rows(table)
    note = _setup_note(table)
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
        return "\n".join(lines) + f"\n\nMean ± std [95% CI] over finished seeds. {note}\n"
    if fmt == "latex":
        def tex(text: str) -> str:
            for a, b in (("\\", "\\textbackslash{}"), ("&", "\\&"), ("%", "\\%"), ("_", "\\_"), ("#", "\\#"),
                         ("±", "$\\pm$"), ("↑", "$\\uparrow$"), ("↓", "$\\downarrow$")):
                text = text.replace(a, b)
            return text
        lines = ["\\begin{tabular}{" + "l" * len(header) + "}", "\\hline",
                 " & ".join(tex(h) for h in header) + " \\\\", "\\hline"]
        lines += [" & ".join(tex(c) for c in row) + " \\\\" for row in rows]
        return "\n".join(lines + ["\\hline", "\\end{tabular}"]) + "\n"
    if fmt == "html":
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>\n" for row in rows)
        return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                "<title>ebm-bench leaderboard</title>\n<style>body{font-family:sans-serif;margin:2em}"
                "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:4px 8px;text-align:right}"
                "td:nth-child(-n+5),th:nth-child(-n+5){text-align:left}th{background:#eee}</style>\n</head>\n"
                f"<body>\n<h1>ebm-bench leaderboard</h1>\n<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n"
                f"{body}</tbody>\n</table>\n<p>Mean ± std [95% CI] over finished seeds. {html.escape(note)}</p>\n"
                "</body>\n</html>\n")
    raise ConfigError(f"unknown format {fmt!r}; use rich, markdown, csv, latex or html")
