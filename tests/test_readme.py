"""The README's examples run as written: the four plug-in kinds and the Python API."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

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


@pytest.mark.slow  # the README's example as written: two 200-step runs
def test_readme_python_api_example_runs(tmp_path, mnist_root, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EBM_BENCH_DATA", str(mnist_root))
    exec(code_block("import ebm_bench"), {})
    lines = [line.split() for line in capsys.readouterr().out.splitlines()]
    assert [(words[0], words[1]) for words in lines] == [("ebgan", "finished"), ("began", "finished")]
    assert (tmp_path / "runs-api").is_dir()


TINY = ["--steps", "6", "--batch-size", "16", "--size-g", "32", "--size-d", "32", "--log-every", "3",
        "--holdout", "100", "--eval-n", "100", "--quiet", "--json"]


def run_plugin(tmp_path, name, args, capsys):
    plugin = tmp_path / name
    plugin.write_text(code_block(f"# {name}"))
    code = main(["run", "--plugin", str(plugin), "--out", str(tmp_path / "runs"), *args, *TINY])
    out = capsys.readouterr().out
    assert code == 0, out
    return json.loads(out), plugin


def test_readme_dataset_example_runs_through_the_cli(tmp_path, mnist_root, capsys, monkeypatch):
    from ebm_bench.datasets.mnist import load_mnist

    monkeypatch.setenv("EBM_BENCH_DATA", str(mnist_root))  # where the MNIST reference set is found
    assert "ebm-bench run --plugin my_dataset.py --dataset npz-digits --data-root my_data --methods ebgan " \
           "--margin 10" in README
    data = tmp_path / "my_data"
    data.mkdir()
    np.savez(data / "digits.npz", images=load_mnist(mnist_root, "test").images[:1000].numpy())
    results, plugin = run_plugin(tmp_path, "my_dataset.py", ["--dataset", "npz-digits", "--data-root", str(data),
                                                             "--methods", "ebgan", "--margin", "10"], capsys)
    assert results[0]["dataset"] == "npz-digits" and results[0]["status"] == "finished"
    assert 0 <= results[0]["evaluation"]["classes_covered"] <= 10  # the classifier metrics applied
    assert main(["list", "--plugin", str(plugin)]) == 0
    assert re.search(r"npz-digits +Digits from <data-root>/digits\.npz", capsys.readouterr().out)


def test_readme_architecture_example_runs_through_the_cli(tmp_path, mnist_root, capsys):
    assert "ebm-bench run --plugin my_nets.py --arch tiny --methods gan,ebgan --steps 500" in README
    results, _ = run_plugin(tmp_path, "my_nets.py", ["--arch", "tiny", "--methods", "gan,ebgan",
                                                     "--data-root", str(mnist_root)], capsys)
    assert [r["status"] for r in results] == ["finished", "finished"]
    expected_g = 100 * 128 + 128 + 128 * 32 * 32 + 32 * 32
    assert all(r["params_g"] == expected_g for r in results)  # the tiny G, not the paper's MLP


def test_readme_metric_example_is_evaluated_and_ranked(tmp_path, mnist_root, capsys):
    assert "ebm-bench leaderboard runs/ --rank-by confidence" in README
    results, plugin = run_plugin(tmp_path, "my_metrics.py", ["--methods", "ebgan,began",
                                                             "--data-root", str(mnist_root)], capsys)
    assert all(0.1 <= r["evaluation"]["confidence"] <= 1.0 for r in results)  # a mean max-probability over 10
    code = main(["leaderboard", str(tmp_path / "runs"), "--plugin", str(plugin), "--rank-by", "confidence",
                 "--reference", "none", "--format", "csv"])
    table = capsys.readouterr().out
    assert code == 0 and "confidence_mean" in table.splitlines()[0]


def test_readme_quality_over_training_example_runs(tmp_path, mnist_root, capsys):
    assert "ebm-bench run --methods ebgan,began --steps 2000 --eval-every 500" in README
    example = ("ebm-bench leaderboard runs/ --rank-by fid_mnist.last_k_mean "
               "--metrics fid_mnist,fid_mnist.last_k_mean,fid_mnist.drop")
    assert example in README
    runs = str(tmp_path / "runs")
    assert main(["run", "--methods", "ebgan,began", "--eval-every", "3", "--eval-every-n", "64",
                 "--data-root", str(mnist_root), "--out", runs, *TINY]) == 0
    capsys.readouterr()
    assert main(["leaderboard", runs, *example.split()[3:], "--format", "csv"]) == 0
    table = capsys.readouterr().out
    assert table.splitlines()[0].startswith("rank,dataset,budget,method") and "fid_mnist.last_k_mean_mean" in table
