"""One self-contained HTML page of a set of runs (a sweep, a leaderboard's records): the leaderboard, each method's
samples, the energy view, quality over training, the sweep's figures and the setup the numbers depend on.

Self-contained so that it can be mailed, committed or opened from an archive years later: CSS inline, every image
a base64 PNG in a data: URI, no script and nothing fetched at view time. Every text that comes from a record is
escaped. The page fits a 1,400 px wide screen: the leaderboard shows its primary scores, and every other column
sits in a folded table with one row per column and one column per leaderboard row (five methods fit; thirty
columns side by side would not); the whole table also travels inside the page as a CSV download.
"""

from __future__ import annotations

import base64
import html
import warnings
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Sequence

import pandas as pd

from ebm_bench.errors import ConfigError
from ebm_bench.files import atomic_write_bytes
from ebm_bench.leaderboard import (default_rank_by, display_rows, headline_metrics, leaderboard_from_runs,
                                   record_metrics, render)
from ebm_bench.leaderboard.build import quality_metrics
from ebm_bench.leaderboard.reliability import N_LAYERS, SUBSETS, subset
from ebm_bench.plots import MARGIN, default_metrics, energy_figure, figure_bytes, histogram_figure, margin_figure
from ebm_bench.plots import quality_figure, reliability_figure, samples_figure
from ebm_bench.plots.common import plt, readable_samples
from ebm_bench.record import check_out_dir, read_records, SAMPLES

PAGE = "index.html"
OVER_TRAINING = (".best", ".drop")  # of the scores over training (--eval-every): the peak, and the loss since it
HISTOGRAM_RUNS = 5  # runs per method from which a histogram of their scores says more than the table


def write_report(paths: Sequence[str | Path], out: str | Path = "report", *, metrics: Sequence[str] = (),
                 rank_by: str | None = None, reference: str = "auto", data_root: str | None = None) -> Path:
    """Write `<out>/index.html` for the runs under `paths` and return its path. Unreadable records are skipped
    (each with a warning, also listed on the page); `reference` "auto" adds the real-data row as
    `ebm-bench leaderboard` does."""
    paths = [Path(p) for p in paths]
    out_arg, out = out, Path(out)
    records, unreadable = read_records([str(p) for p in paths])
    if records.empty:
        raise ConfigError(f"no readable run folders (with result.json) under {', '.join(map(str, paths))}; "
                          "pass run folders or folders of them")
    check_out_dir(out_arg)  # after the records: a mistyped run folder leaves no empty report folder behind
    metrics = list(metrics) or record_metrics(records) + [m for m in quality_metrics(records)
                                                          if m.endswith(OVER_TRAINING)]
    rank_by = rank_by or default_rank_by(metrics)  # as `ebm-bench leaderboard` ranks
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = leaderboard_from_runs([str(p) for p in paths], metrics, rank_by, reference, data_root)
    notes = [str(w.message) for w in caught]
    for note in notes:
        warnings.warn(note, stacklevel=2)
    page = render_page(records, table, paths, rank_by, notes or [f"skipped {line}" for line in unreadable])
    atomic_write_bytes(out / PAGE, page.encode())
    return out / PAGE


# -- the page ----------------------------------------------------------------------------------------------------
STYLE = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;margin:0 auto;max-width:1320px;
 padding:12px 24px 48px}
h1{font-size:24px;margin:12px 0 4px}h2{font-size:19px;margin:32px 0 8px;border-bottom:2px solid #ddd}
nav a{margin-right:14px}
img{max-width:100%;height:auto}
table{border-collapse:collapse;width:100%;margin:8px 0}
th,td{padding:4px 8px;border-bottom:1px solid #e2e2e2;text-align:right;vertical-align:top;overflow-wrap:normal;
 word-break:normal}
th{background:#f3f3f3;font-weight:600}
.wide{overflow-x:auto;max-width:100%}
.text{text-align:left}
.ci{display:block;color:#777;font-size:12px}
.reference td{color:#555;font-style:italic}
table.columns{width:auto;max-width:100%;font-size:13px}
table.setup{table-layout:fixed}table.setup th{width:17%;text-align:left;background:none}
table.setup td{text-align:left;overflow-wrap:anywhere}
.hash,code{font-family:ui-monospace,Menlo,Consolas,monospace;font-size:12px;overflow-wrap:anywhere}
.differs{color:#a33;font-size:12px}
.samples{display:flex;flex-wrap:wrap;gap:18px}
.samples figure{margin:0}.samples img{width:196px;image-rendering:pixelated;border:1px solid #ccc}
figcaption,.caption{color:#555;font-size:13px}
details{margin:8px 0}summary{cursor:pointer;font-weight:600}
.notes{color:#a33}
"""


def _e(value) -> str:
    return html.escape(str(value))


def _png(data: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(data).decode()}">'


def _figure(fig, alt: str) -> str:
    try:
        return _png(figure_bytes(fig), alt)
    finally:
        plt.close(fig)


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", "").split(" ")[0])
    except ValueError:
        return text == "-"
    return True


def _cell(text: str) -> str:
    """A display cell; a score's 95% interval goes on a line of its own, so that score columns stay narrow."""
    score, bracket, interval = text.partition(" [")
    body = _e(score) + (f'<span class="ci">[{_e(interval)}</span>' if bracket else "")
    return f"<td>{body}</td>" if bracket or _is_number(text) else f'<td class="text">{body}</td>'


def _header(name: str, css: str = "") -> str:
    """A header that wraps only between words and after an underscore of a long metric name, its arrow kept on the
    name's line: never inside a word ("ran k", "precisi on")."""
    label = _e(name).replace("_", "_<wbr>").replace(" ↑", "&nbsp;↑").replace(" ↓", "&nbsp;↓")
    return f'<th class="{css}">{label}</th>' if css else f"<th>{label}</th>"


KEYS = ("rank", "dataset", "budget", "method", "variant", "seeds", "diverged")  # display_rows' first columns
TEXT_KEYS = ("dataset", "budget", "method", "variant")


def _leaderboard(table: pd.DataFrame, rank_by: str | None) -> str:
    """The primary table (keys and the headline scores, `headline_metrics`), every other column folded beneath it
    (one row per column), and the whole table as a CSV inside the page."""
    header, rows = display_rows(table)
    constant = [k for k in ("dataset", "budget") if table[k].astype(str).nunique() == 1]  # said once, above
    scores = {h.rstrip(" ↑↓"): i for i, h in enumerate(header[len(KEYS):-4], start=len(KEYS))}
    primary = headline_metrics(list(scores), rank_by)
    shown = [i for i, key in enumerate(KEYS) if key not in constant and (key != "variant" or any(r[4] for r in rows))]
    shown += [scores[m] for m in primary]
    head = "".join(_header(header[i], "text" if header[i] in TEXT_KEYS else "") for i in shown)
    body = "".join(("<tr class=\"reference\">" if r[5] == "0" and not r[0] else "<tr>")  # the real-data row
                   + "".join(_cell(r[i]) for i in shown) + "</tr>\n" for r in rows)
    context = ", ".join(_e(table[k].iloc[0]) for k in constant)
    ranked = f"ranked by {_e(rank_by)}; " if rank_by else ""
    caption = (f'<p class="caption">{context + ": " if context else ""}{ranked}mean ± std over the seeds that '
               "finished, 95% Student-t interval beneath; ↑ higher is better, ↓ lower is better.</p>")
    rest = [i for i, h in enumerate(header) if i not in shown and h not in ("rank", "method", "variant", *constant)]
    named = [i for i, h in enumerate(header[:5]) if h in TEXT_KEYS and h not in constant]
    columns = "".join("<th>" + "<br>".join(_e(r[i]) for i in named if r[i]) + "</th>" for r in rows)
    folded = "".join("<tr>" + _header(header[i], "text") + "".join(_cell(r[i]) for r in rows) + "</tr>\n"
                     for i in rest)
    csv = base64.b64encode(render(table, "csv").encode()).decode()
    # each table scrolls inside its own box when wider than the page (the folded one has a column per row)
    return (f'{caption}\n<div class="wide"><table class="leaderboard"><thead><tr>{head}</tr></thead><tbody>\n'
            f"{body}</tbody></table></div>\n"
            f"<details><summary>Every column ({len(rest)} more), one row per column</summary>\n"
            f'<div class="wide"><table class="columns"><thead><tr><th class="text">column</th>{columns}</tr></thead>'
            f"<tbody>\n{folded}</tbody></table></div></details>\n"
            f'<p><a download="leaderboard.csv" href="data:text/csv;base64,{csv}">leaderboard.csv</a> (every column '
            "of the table, with std, interval and seed count of each score as numbers)</p>")


def _samples(records: pd.DataFrame) -> str:
    runs = records[records["run_dir"].map(lambda d: readable_samples(d, "the page"))]
    figures = []
    for method, group in runs.sort_values(["method", "seed"]).groupby("method", sort=True):
        run = group.iloc[0]
        data = (Path(run["run_dir"]) / SAMPLES).read_bytes()
        figures.append(f"<figure>{_png(data, f'samples of {method}')}<figcaption><b>{_e(method)}</b> seed "
                       f"{_e(run['seed'])}<br><code>{_e(Path(run['run_dir']).name)}</code></figcaption></figure>")
    if not figures:
        return "<p>No run folder has a readable samples.png.</p>"
    return ('<p class="caption">The final samples of each method\'s first run (the same noise for every run).</p>'
            f'<div class="samples">{"".join(figures)}</div>')


def _sweep(records: pd.DataFrame) -> str:
    parts = []
    metrics = default_metrics(records)
    if MARGIN in records and records[MARGIN].nunique() > 1:
        try:
            parts.append(_figure(margin_figure(records, metrics), "scores against the margin m"))
        except ConfigError as err:
            parts.append(f"<p>No margin curve: {_e(err)}</p>")
        if records["run_dir"].map(lambda d: readable_samples(d, "the page")).any():
            parts.append(_figure(samples_figure(records), "samples per margin"))
            parts.append('<p class="caption">Samples of the first seed at each margin (the EBGAN paper\'s '
                         "Figure 9).</p>")
    layers_vary = all(c in records for c in N_LAYERS) and max(records[c].nunique() for c in N_LAYERS) > 1
    if metrics and layers_vary and records.groupby("method").size().max() >= HISTOGRAM_RUNS:
        metric = metrics[0].split(".")[-1]
        panels = {name: subset(records, name) for name in SUBSETS}
        parts.append(_figure(reliability_figure(panels, metric), f"histograms of {metric} over the grid"))
        parts.append(f'<p class="caption">Share of runs per {_e(metric)} bin over the grid, all of it and its '
                     "smaller networks (the EBGAN paper's Figure 2); diverged runs are the bars left of the "
                     "axis.</p>")
    elif metrics and records.groupby("method").size().max() >= HISTOGRAM_RUNS:
        parts.append(_figure(histogram_figure(records, metrics[0]), f"histogram of {metrics[0]}"))
        parts.append(f'<p class="caption">Share of runs per {_e(metrics[0].split(".")[-1])} bin, per method (the '
                     "EBGAN paper's Figure 2): how reliably a method reaches a score.</p>")
    return "".join(parts)


def _package_version() -> str:
    try:
        return version("ebm-bench")
    except PackageNotFoundError:
        return "(not installed)"


def _values(records: pd.DataFrame, column: str) -> list[str]:
    if column not in records:
        return []
    return sorted({str(v) for v in records[column].dropna() if str(v) != ""})


def _setting(name: str, values: list[str], hashed: bool = False) -> str:
    if not values:
        return ""
    css = ' class="hash"' if hashed else ""
    cell = "<br>".join(f"<span{css}>{_e(v)}</span>" for v in values)
    if len(values) > 1:
        cell += ' <span class="differs">(differs across runs)</span>'
    return f"<tr><th>{_e(name)}</th><td>{cell}</td></tr>\n"


def _budget(run: pd.Series) -> str:
    """'1718 steps (109,952 images, 2.00 epochs of 55,000)': the budget and, where the record says, the epochs."""
    budget = f"{run['budget.amount']:g} {run['budget.kind']}"
    try:
        images, train = float(run["images"]), float(run["manifest.samples.train"])
    except (KeyError, TypeError, ValueError):
        return budget
    if images == images and train > 0:
        budget += f" ({int(images):,} images, {images / train:.3g} epochs of {int(train):,})"
    return budget


def _per_run(records: pd.DataFrame, text) -> list[str]:
    """The distinct values of `text(run)` over the runs (empty texts left out)."""
    return sorted({text(run) for _, run in records.iterrows()} - {""})


def _text(run: pd.Series, column: str) -> str:
    """A run's field as text; "" where it is absent or NaN (a record older than the field)."""
    value = run.get(column)
    return "" if value is None or value != value else str(value)


def _fields(run: pd.Series, prefix: str) -> str:
    return ", ".join(f"{c[len(prefix):]}={run[c]}" for c in sorted(run.index) if c.startswith(prefix)
                     and run[c] == run[c])


def _setup(records: pd.DataFrame) -> str:
    statuses = records["status"].value_counts()
    rows = [
        _setting("runs", [f"{len(records)} runs: " + ", ".join(f"{n} {s}" for s, n in statuses.items())
                          + f"; seeds {', '.join(map(str, sorted(set(records['seed'].dropna().astype(int)))))}"]),
        _setting("dataset", _values(records, "dataset")),
        _setting("budget", _per_run(records, _budget)),
        _setting("architecture", _values(records, "config.arch")),
        _setting("MLP", _per_run(records, lambda run: _fields(run, "config.mlp.")
                                 if _text(run, "config.arch") == "mlp" else "")),
        _setting("batch, z", _per_run(records, lambda run: f"batch {_text(run, 'config.batch_size')}, "
                                                            f"z_dim {_text(run, 'config.z_dim')}")),
        _setting("optimiser", _per_run(records, lambda run: _fields(run, "config.optim."))),
        _setting("evaluation N", _values(records, "evaluation.n")),
        _setting("reference set", _values(records, "evaluation_provenance.reference")),
        _setting("quality over training", _per_run(
            records, lambda run: f"every {_text(run, 'config.eval_every')} steps on "
                                 f"{_text(run, 'config.eval_every_n')} samples (evaluation.csv)"
                                 if _text(run, "config.eval_every") not in ("", "0") else "")),
        _setting("classifier sha256", _values(records, "evaluation_provenance.classifier_sha256"), True),
        _setting("classifier test accuracy", _values(records, "evaluation_provenance.classifier_test_accuracy")),
        _setting("Inception weights sha256",
                 _values(records, "evaluation_provenance.inception_weights_sha256") or ["not used (no Inception score)"]
                 if "evaluation_provenance.inception_weights_sha256" in records else [], True),
        _setting("data sha256", _values(records, "manifest.data_sha256"), True),
        _setting("ebm-bench", _values(records, "manifest.versions.ebm-bench")),
        _setting("commit", _values(records, "manifest.git_commit"), True),
        _setting("torch", _values(records, "manifest.versions.torch")),
        _setting("torchvision", _values(records, "manifest.versions.torchvision")),
        _setting("torch-fidelity", _values(records, "manifest.versions.torch-fidelity")
                 or _values(records, "evaluation_provenance.torch_fidelity_version")),
        _setting("python", _values(records, "manifest.versions.python")),
        _setting("device", _per_run(records, lambda run: f"{_text(run, 'manifest.device')} "
                                                         f"{_text(run, 'manifest.device_name')}".strip())),
    ]
    return f'<table class="setup"><tbody>\n{"".join(rows)}</tbody></table>'


def _sections(records: pd.DataFrame, table: pd.DataFrame, rank_by: str | None) -> list[tuple[str, str, str]]:
    """(anchor, title, HTML) of each section the runs fill."""
    sections = [("leaderboard", "Leaderboard", _leaderboard(table, rank_by)),
                ("samples", "Samples", _samples(records))]
    energy = energy_figure(records)
    if energy is not None:
        sections.append(("energy", "Energy of real and generated samples", _figure(energy, "energy view")))
    quality = quality_figure(records)
    if quality is not None:
        sections.append(("quality", "Quality over training", _figure(quality, "quality over training")))
    sweep = _sweep(records)
    if sweep:
        sections.append(("sweep", "Sweep", sweep))
    sections.append(("setup", "Setup", _setup(records)))
    return sections


def render_page(records: pd.DataFrame, table: pd.DataFrame, paths: Sequence[Path], rank_by: str | None,
                notes: Sequence[str] = ()) -> str:
    """The page's HTML (see the module's docstring). What a section leaves out (a run without a readable
    trajectory, a damaged samples.png) is warned about and listed in the page's notes too."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sections = _sections(records, table, rank_by)
    left_out = list(dict.fromkeys(str(w.message) for w in caught))
    for note in left_out:
        warnings.warn(note, stacklevel=2)
    notes = [*notes, *left_out]
    nav = "".join(f'<a href="#{key}">{_e(title)}</a>' for key, title, _ in sections)
    body = "".join(f'<section id="{key}"><h2>{_e(title)}</h2>\n{content}\n</section>\n'
                   for key, title, content in sections)
    methods = ", ".join(sorted(records["method"].astype(str).unique()))
    listed = "".join(f"<li>{_e(note)}</li>" for note in notes)
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>ebm-bench report: {_e(methods)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
            f"<h1>ebm-bench report</h1>\n<p>{len(records)} runs of {_e(methods)} from "
            f"{', '.join(f'<code>{_e(p)}</code>' for p in paths)}; made by ebm-bench {_e(_package_version())}.</p>\n"
            f"<nav>{nav}</nav>\n" + (f'<ul class="notes">{listed}</ul>\n' if listed else "")
            + f"{body}</body>\n</html>\n")
