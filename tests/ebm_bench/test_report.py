"""`ebm-bench report`: one self-contained HTML page, checked as HTML and as a browser shows it.

The browser check drives the system Chromium through Playwright: it has to read what only a rendering engine knows
(each image decoded, the laid-out width at 1,400 px, console errors), which `chromium --headless --dump-dom` cannot
report without a script inside the page. Playwright's own browser download is never used; the test skips, saying
why, when no Chromium is installed or it does not start (CI installs it from Debian).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from ebm_bench.cli import main
from ebm_bench.errors import ConfigError
from ebm_bench.report import write_report

BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
BROWSER_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run"]


@pytest.fixture(scope="module")
def page_path(report_runs, tmp_path_factory) -> Path:
    return write_report([report_runs], tmp_path_factory.mktemp("report") / "report", reference="none")


def test_the_page_is_one_self_contained_file(page_path):
    text = page_path.read_text()
    assert [p.name for p in page_path.parent.iterdir()] == ["index.html"]
    links = re.findall(r'(?:src|href)="([^"]*)"', text)
    assert links and all(link.startswith(("data:", "#")) for link in links)  # nothing fetched when viewed
    assert "<script" not in text and "url(" not in text
    assert text.count('src="data:image/png;base64,') == 4  # two methods' samples, energy view, quality curves
    for section in ("leaderboard", "samples", "energy", "quality", "setup"):
        assert f'<section id="{section}">' in text
    assert 'id="sweep"' not in text  # one margin, two seeds at most: no sweep figure to show


def test_the_setup_names_budget_evaluation_versions_and_hashes(page_path, report_runs):
    text = page_path.read_text()
    run = next(report_runs.glob("ebgan-*"))
    manifest = json.loads((run / "manifest.json").read_text())
    provenance = json.loads((run / "result.json").read_text())["evaluation_provenance"]
    for value in (provenance["classifier_sha256"], manifest["data_sha256"], manifest["versions"]["torch"],
                  "12 steps (192 images, 0.00321 epochs of 59,800)"):
        assert value in text
    assert "<th>evaluation N</th><td><span>100</span>" in text


def test_record_text_is_escaped(report_runs, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(report_runs, runs)
    result = next(runs.glob("gan-*")) / "result.json"
    record = json.loads(result.read_text())
    record["method"] = "gan<script>alert(1)</script>"
    result.write_text(json.dumps(record))
    text = write_report([runs], tmp_path / "out", reference="none").read_text()
    assert "<script>" not in text and "gan&lt;script&gt;alert(1)&lt;/script&gt;" in text


def test_bad_input_is_one_line(tmp_path, report_runs, capsys):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no readable run folders .* under .*empty"):
        write_report([tmp_path / "empty"], tmp_path / "out")
    (tmp_path / "a_file").write_text("")
    assert main(["report", str(report_runs), "--out", str(tmp_path / "a_file"), "--reference", "none"]) == 2
    assert main(["report", str(tmp_path / "missing"), "--out", str(tmp_path / "out")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 2 and "is a file; pass a directory" in lines[0] and "no such run folder" in lines[1]


def test_the_report_command_writes_the_page(report_runs, tmp_path, capsys):
    assert main(["report", str(report_runs), "--out", str(tmp_path / "r"), "--reference", "none"]) == 0
    assert capsys.readouterr().out.strip() == str(tmp_path / "r" / "index.html")


def test_runs_that_differ_in_the_margin_get_the_margin_curve(report_runs, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(report_runs, runs)
    path = next(runs.glob("ebgan-mnist-seed1-*")) / "config.json"
    config = json.loads(path.read_text())
    config["method_options"]["margin"] = 4.0
    path.write_text(json.dumps(config))
    text = write_report([runs], tmp_path / "out", reference="none").read_text()
    assert '<section id="sweep">' in text and 'alt="scores against the margin m"' in text


def test_a_grid_over_layers_gets_the_papers_reliability_histograms(tmp_path):
    import pandas as pd

    from ebm_bench.report import _sweep

    rows = [{"method": method, "status": "finished", "seed": 0, "run_dir": str(tmp_path / f"{method}{i}"),
             "evaluation.i_prime": float(i), "config.mlp.n_layer_g": 2 + i % 4, "config.mlp.n_layer_d": 2}
            for method in ("ebgan", "gan") for i in range(5)]
    html = _sweep(pd.DataFrame(rows))
    assert 'alt="histograms of i_prime over the grid"' in html and "histogram of" not in html
    one_shape = _sweep(pd.DataFrame(rows).assign(**{"config.mlp.n_layer_g": 5}))
    assert 'alt="histogram of evaluation.i_prime"' in one_shape  # no grid over layers: the plain histogram


def test_scores_over_training_join_the_table_as_their_best_and_their_drop(report_runs, tmp_path):
    runs = tmp_path / "runs"
    shutil.copytree(report_runs, runs)
    for path in runs.glob("*/result.json"):
        record = json.loads(path.read_text())
        record["quality"] = {"i_prime": {"best": 2.0, "best_step": 12, "final": 1.5, "drop": 0.5,
                                         "near_best_share": 0.5}}
        path.write_text(json.dumps(record))
    text = write_report([runs], tmp_path / "out", reference="none").read_text()
    assert "i_<wbr>prime.best&nbsp;↑" in text and "i_<wbr>prime.drop&nbsp;↓" in text  # the arrow on the name's line
    assert "near_best_share" not in text


# -- in a browser ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import Error, sync_playwright
    except ImportError:
        pytest.skip("the browser check needs playwright (pip install playwright)")
    executable = os.environ.get("EBM_BENCH_CHROMIUM") or next(filter(None, map(shutil.which, BROWSERS)), None)
    if executable is None:
        pytest.skip(f"no Chromium found (looked for {', '.join(BROWSERS)}; apt-get install chromium, or set "
                    "EBM_BENCH_CHROMIUM to a Chromium binary)")
    with sync_playwright() as playwright:
        try:
            chromium = playwright.chromium.launch(executable_path=executable, args=BROWSER_ARGS)
        except Error as err:
            pytest.skip(f"Chromium at {executable} does not start: {str(err).splitlines()[0]}")
        yield chromium
        chromium.close()


@pytest.mark.slow  # Chromium
def test_the_page_renders_whole_in_a_browser_without_horizontal_scrolling(browser, page_path, tmp_path):
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    errors, requests = [], []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(page_path.as_uri())
    assert page.locator("table.leaderboard tbody tr").count() == 2  # ebgan and gan
    assert page.locator("table.setup").count() == 1
    images = page.evaluate("[...document.images].map(i => [i.alt, i.naturalWidth, i.complete])")
    assert [alt for alt, _, _ in images] == ["samples of ebgan", "samples of gan", "energy view",
                                             "quality over training"]
    assert all(width > 0 and complete for _, width, complete in images)  # no broken image
    widths = "[document.documentElement.scrollWidth, window.innerWidth]"
    scroll, inner = page.evaluate(widths)
    assert scroll <= inner == 1400
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")  # the folded columns too
    scroll, inner = page.evaluate(widths)
    assert scroll <= inner
    assert errors == []
    assert all(url.startswith(("file:", "data:")) for url in requests)
    shot = Path(os.environ.get("EBM_BENCH_REPORT_SCREENSHOT", tmp_path / "report.png"))
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    page.close()



# Per text node of the leaderboard's cells: the characters before each line break the browser made. A break may
# follow a space or an underscore (a <wbr> after it), never a letter or a digit ("ran k", "precisi on", "16. 0").
BREAKS = """[...document.querySelectorAll('table.leaderboard th, table.leaderboard td')].flatMap(cell => {
  const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
  const found = [];
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const range = document.createRange();
    let top = null;
    for (let i = 0; i < node.length; i++) {
      range.setStart(node, i); range.setEnd(node, i + 1);
      const rect = range.getBoundingClientRect();
      if (rect.width === 0) continue;
      if (top !== null && rect.top > top + 2) found.push([node.textContent, node.textContent.slice(0, i)]);
      top = rect.top;
    }
  }
  return found;
})"""


@pytest.mark.slow
def test_headers_and_cells_wrap_only_between_words(browser, tmp_path):
    # the committed margin sweep: eight variants, the real-data row and wide intervals squeeze the table
    records = Path(__file__).resolve().parents[2] / "leaderboards" / "mnist-margin-sensitivity" / "records"
    page_path = write_report([records], tmp_path / "report")
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(page_path.as_uri())
    assert page.locator("table.leaderboard tbody tr").count() == 9
    breaks = page.evaluate(BREAKS)
    assert breaks, "nothing wrapped: the check would not see a word broken"
    assert all(before[-1] in " _" for _, before in breaks), [b for b in breaks if b[1][-1] not in " _"]
    page.evaluate("document.querySelectorAll('details').forEach(d => d.open = true)")
    scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert scroll <= inner
    page.close()
