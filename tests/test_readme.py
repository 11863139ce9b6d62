"""The README's examples run as written: the plugin method and the Python API."""

import re
from pathlib import Path

from ebm_bench.cli import main

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def code_block(starting_with: str) -> str:
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    matches = [b for b in blocks if b.startswith(starting_with)]
    assert len(matches) == 1, f"README has no single python block starting with {starting_with!r}"
    return matches[0]


def test_readme_plugin_example_runs_through_the_cli(tmp_path, mnist_root, capsys):
    plugin = tmp_path / "my_methods.py"
    plugin.write_text(code_block("# my_methods.py"))
    assert "ebm-bench run --plugin my_methods.py --methods lsgan,gan --steps 500" in README
    code = main(["run", "--plugin", str(plugin), "--methods", "lsgan,gan", "--steps", "6", "--batch-size", "16",
                 "--size-g", "32", "--size-d", "32", "--log-every", "3", "--holdout", "100", "--eval-n", "100",
                 "--data-root", str(mnist_root), "--out", str(tmp_path / "runs"), "--quiet", "--json"])
    assert code == 0
    out = capsys.readouterr().out
    assert '"method": "lsgan"' in out and '"status": "finished"' in out
    assert main(["list", "--plugin", str(plugin)]) == 0
    assert re.search(r"lsgan +LSGAN: classifier D, least-squares losses\.", capsys.readouterr().out)


def test_readme_python_api_example_runs(tmp_path, mnist_root, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EBM_BENCH_DATA", str(mnist_root))
    exec(code_block("import ebm_bench"), {})
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [(words[0], words[1]) for words in lines] == [("ebgan", "finished"), ("began", "finished")]
    assert (tmp_path / "runs-api").is_dir()
