"""`sweep --time-limit`: costs timed on the device and kept beside the sweep, only packs predicted to end inside the
limit start, a summary line says what is left, and the same command again continues; `gpu.sh campaign` (slow)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ebm_bench import Budget, MLPConfig, RunConfig
from ebm_bench.api import train_one
from ebm_bench.cli import main
from ebm_bench.errors import ConfigError
from ebm_bench.cli.sweep import _window_plan
from ebm_bench.sweep import cost, executors, expand, pack_works, parse_time_limit
from ebm_bench.sweep.cost import Calibration, CostBook, Left, PackWork, ShapeCost, predict
from ebm_bench.sweep.executors import Outcome, execute_window

REPO = Path(__file__).resolve().parents[3]
TINY = ["--batch-size", "16", "--n-layer-g", "2", "--size-g", "16", "--size-d", "16", "--z-dim", "8",
        "--log-every", "10", "--holdout", "100", "--eval-n", "50", "--threads", "1", "--no-download", "--no-plots"]


def tiny(mnist_root, out, *extra):
    return [*TINY, "--data-root", str(mnist_root), "--out", str(out), *extra]


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def timed_shapes(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("timing ")]


# -- the limit ---------------------------------------------------------------------------------------------------
def test_a_time_limit_is_a_duration_or_a_deadline():
    assert parse_time_limit("9m", now=100) == 640
    assert parse_time_limit("90s", now=0) == 90 and parse_time_limit("45", now=0) == 45
    assert parse_time_limit("1.5h", now=0) == 5400 and parse_time_limit(" 2 min ", now=0) == 120
    assert parse_time_limit("@1700000000", now=0) == 1700000000
    for bad in ("", "soon", "0", "0s", "-5m", "9x", "inf", "nan", "@", "@soon", "@inf", "1e3"):
        with pytest.raises(ConfigError, match="is not a time limit; give a duration"):
            parse_time_limit(bad)


def test_a_bad_time_limit_is_one_line(tmp_path, capsys):
    assert main(["sweep", "--methods", "ebgan", "--out", str(tmp_path), "--time-limit", "soon"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --time-limit 'soon' is not a time limit") and len(err.strip().splitlines()) == 1
    assert main(["sweep", "--methods", "ebgan", "--out", str(tmp_path), "--time-limit", "9m", "--executor", "ray"]) == 2
    err = capsys.readouterr().err
    assert "--time-limit works with the local executor" in err and len(err.strip().splitlines()) == 1


# -- the model ---------------------------------------------------------------------------------------------------
def config(steps=100, **changes):
    return RunConfig(budget=Budget("steps", steps), **changes)


def test_a_pack_is_predicted_from_what_it_has_left():
    shape = ShapeCost(steps_per_s=10.0, start_s=1.0, score_s=0.5, checkpoint_s=0.2)
    run = config(eval_every=25, checkpoint_every=50)
    work = PackWork([run, run], left=[Left(run), Left(run, steps_done=50)])
    # from step 0: 1 + 100/10 + 4 scores + 2 checkpoints; from 50 (its own pack): 1 + 50/10 + 2 + 1; 2 evaluations
    assert predict(work, shape, end_s=2.0) == pytest.approx(1 + 10 + 2 + 0.4 + 1 + 5 + 1 + 0.2 + 2 * 2)
    resumed = PackWork([run], left=[Left(run, steps_done=90)])
    assert predict(resumed, shape, end_s=0.0) == pytest.approx(1 + 1 + 0.5 + 0.2)  # step 100 scores and checkpoints
    seconds = config(eval_every=0)
    seconds.budget = Budget("seconds", 30)
    # 18 s left at 10 steps/s: 180 steps, one checkpoint (the last; every 1000)
    assert predict(PackWork([seconds], left=[Left(seconds, 0, 12.0)]), shape, 0.0) == pytest.approx(1 + 18 + 0.2)


def test_timings_come_from_steady_rows():
    # rows every 10 steps; a score at step 30 (and the last step), the warm-up in the first row, a checkpoint at 60
    marks = [(0, 0.0), (10, 1.5), (20, 2.5), (30, 4.0), (40, 5.0), (50, 6.0), (60, 8.0)]
    shape, last = cost._fit(marks, score_every=30, began=-0.5)
    assert shape.steps_per_s == pytest.approx(10.0) and shape.score_s == pytest.approx(0.5)
    assert shape.start_s == pytest.approx(0.5 + 0.5) and shape.checkpoint_s == pytest.approx(0.5) and last == 8.0


def test_the_shape_leaves_out_what_does_not_change_a_step():
    base = config(mlp=MLPConfig(n_layer_g=2, size_g=64))
    same = [RunConfig(seed=3, budget=Budget("steps", 5000), mlp=MLPConfig(n_layer_g=2, size_g=64, dropout_d=True),
                      method_options={"margin": 2.0}, eval_n=500)]
    assert cost.shape_of([base], 1)[0] == cost.shape_of(same, 1)[0]
    for other in ([config(mlp=MLPConfig(n_layer_g=2, size_g=128))], [config(batch_size=32)], [base, base],
                  [config(method="gan")]):
        assert cost.shape_of(other, 1)[0] != cost.shape_of([base], 1)[0]
    assert cost.shape_of([base], 2)[0] != cost.shape_of([base], 1)[0]  # threads
    assert cost.evaluation_of(base, 1)[0] != cost.evaluation_of(config(eval_n=500), 1)[0]


# -- the executor, on a clock of its own --------------------------------------------------------------------------
class FakeClock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def works_of(predictions, steps=100):
    works = []
    for seed, predicted in enumerate(predictions):
        run = config(steps=steps, seed=seed)
        works.append(PackWork([run], left=[Left(run)], predicted_s=predicted))
    return works


def test_packs_start_in_order_while_they_fit_and_an_overrun_finishes(monkeypatch):
    clock = FakeClock()
    took = {0: 3.0, 1: 9.0, 2: 1.0, 3: 2.0, 4: 1.0}  # pack 1 overruns its prediction: it is let finish

    def train(pack):
        clock.now += took[pack[0].seed]
        return [Outcome(c, "finished", f"run-{c.seed}") for c in pack]

    monkeypatch.setattr(executors, "run_pack_safely", train)
    works = works_of([3.0, 4.0, 50.0, 2.0, 1.0])
    window = execute_window(works, deadline=clock.now + 20, margin_s=2.0, clock=clock)
    # 0 at +0, 1 at +3 (predicted 4 s, took 9), 2 never fits (50 s), 3 at +12 (ends by +14 <= 18), 4 at +14 (+15)
    assert [w.pack[0].seed for w, _, _ in window.ran] == [0, 1, 3, 4]
    assert [w.pack[0].seed for w in window.left] == [2]
    assert [o.status for o in window.outcomes] == ["finished"] * 4
    clock.now = 1000.0
    window = execute_window(works_of([3.0, 4.0, 1.0]), deadline=clock.now + 9, margin_s=1.0, clock=clock)
    # 1 starts at +3 (+7 <= 8) and overruns past the deadline, to +12: it finishes, and nothing starts after it
    assert [w.pack[0].seed for w, _, _ in window.ran] == [0, 1] and clock.now == 1012.0
    assert [w.pack[0].seed for w in window.left] == [2] and [t for _, _, t in window.ran] == [3.0, 9.0]


def test_ended_runs_are_reported_and_untimed_packs_wait():
    run = config()
    ended = PackWork([run], ended=[(run, _result(run))])
    untimed = PackWork([config(seed=1)], left=[Left(config(seed=1))], predicted_s=None)
    window = execute_window([ended, untimed], deadline=1e12, margin_s=0.0)
    assert [(o.status, o.run_id) for o in window.outcomes] == [("finished", "done-0")]
    assert window.left == [untimed] and not window.ran


def _result(run):
    from ebm_bench.train import RunResult

    return RunResult(run_id=f"done-{run.seed}", run_dir=f"runs/done-{run.seed}", method=run.method,
                     dataset=run.dataset, seed=run.seed, status="finished", budget={})


def test_a_dry_run_plans_workers_as_slots_and_slows_them_until_measured():
    assert CostBook().slowdown(config(out="/nonexistent"), 4) == 4.0  # as if they took turns
    assert CostBook().slowdown(config(out="/nonexistent"), 1) == 1.0
    plan = _window_plan(works_of([3.0, 3.0, 3.0]), now=0.0, deadline=10.0, margin_s=1.0, limit_s=10.0, workers=2,
                        slowdown=2.0)
    # two at once, each 6 s with the slowdown: the third would end at 12 > 9
    assert "pack 1: 1 run(s) to train, predicted 6.0 s: starts at +0.0 s" in plan
    assert "pack 2: 1 run(s) to train, predicted 6.0 s: starts at +0.0 s" in plan
    assert "pack 3: 1 run(s) to train, predicted 6.0 s: does not fit" in plan
    assert last_line(plan).startswith("--time-limit: 2 of 3 pack(s) with runs to train fit (2 runs)")


# -- what is left under --out --------------------------------------------------------------------------------------
def base(mnist_root, tmp_path, steps=6):
    return RunConfig(budget=Budget("steps", steps), batch_size=16, mlp=MLPConfig(n_layer_g=2, size_g=16, size_d=16),
                     z_dim=8, holdout=100, data_root=str(mnist_root), out=str(tmp_path / "runs"), log_every=2,
                     checkpoint_every=2, n_samples=4, download=False, eval_n=50)


def test_a_resumed_run_counts_only_the_steps_it_has_left(mnist_root, tmp_path):
    configs = expand(["ebgan"], [0, 1, 2], {}, base(mnist_root, tmp_path))
    train_one(configs[0])

    def interrupt(row):
        if row["step"] >= 4:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_one(configs[1], on_log=interrupt)  # checkpointed at step 4, then killed
    works = pack_works([[c] for c in configs])
    assert [r.status for _, r in works[0].ended] == ["finished"] and not works[0].left
    assert [(left.steps_done, left.wall_done > 0) for left in works[1].left] == [(4, True)]
    assert [left.steps_done for left in works[2].left] == [0]


# -- the command -------------------------------------------------------------------------------------------------
def fake_calibration(calls):
    """A calibration of 1 step/s with no overhead: a pack of N steps is predicted to take N seconds."""
    def calibrate(pack, scratch, end_eval, clock=None):
        calls.append(len(pack))
        return Calibration(ShapeCost(steps_per_s=1.0, start_s=0.0), 0.0 if end_eval else None, 60, 0.0)
    return calibrate


def test_a_window_trains_what_fits_and_the_same_command_continues(mnist_root, tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(cost, "calibrate", fake_calibration(calls))
    out = tmp_path / "runs"
    sweep = ["sweep", "--methods", "ebgan", "--seeds", "0,1", "--grid", "steps=20,60", "--name", "w",
             *tiny(mnist_root, out)]
    # usable: 45 s of 50; the 20-step packs one after the other (20 + 20 s), the 60-step ones never
    assert main([*sweep, "--dry-run", "--time-limit", "50s"]) == 0
    dry = capsys.readouterr().out
    assert "pack 1: 1 run(s) to train, predicted 20 s: starts at +0.0 s" in dry
    assert "pack 2: 1 run(s) to train, predicted 20 s: starts at +20 s" in dry
    assert "pack 3: 1 run(s) to train, predicted 60 s: does not fit" in dry
    assert last_line(dry).startswith("--time-limit: 2 of 4 pack(s) with runs to train fit (2 runs), predicted to end "
                                     "40 s after the start, inside 45 s (50 s less a 10% margin); the rest need about "
                                     "2 min here")
    assert calls == [1] and not list(out.glob("ebgan-*"))  # timed once, and kept; nothing trained

    assert main([*sweep, "--time-limit", "50s"]) == 0
    captured = capsys.readouterr()
    assert last_line(captured.out) == ("2 of 4 runs done; the rest need about 2 min here; run the same command "
                                       "again to continue")
    assert calls == [1] and not timed_shapes(captured.err)  # the dry run's timing is reused
    ended = [json.loads(p.read_text()) for p in out.glob("*/result.json")]
    assert sorted((r["steps"], r["status"]) for r in ended) == [(20, "finished"), (20, "finished")]
    assert len(list(out.glob("ebgan-*"))) == 2  # the 60-step runs never started: nothing half-trained
    summary = json.loads((out / "sweep-w.json").read_text())
    assert summary["counts"]["left"] == 2 and summary["time_limit"]["rest_s"] == 120.0
    assert [p["predicted_s"] for p in summary["time_limit"]["packs"]] == [20.0, 20.0]

    assert main([*sweep, "--time-limit", "2m"]) == 0  # 60 s each now fit in 108 s
    assert last_line(capsys.readouterr().out) == "4 of 4 runs done"
    assert calls == [1]
    assert sorted(json.loads(p.read_text())["steps"] for p in out.glob("*/result.json")) == [20, 20, 60, 60]


def test_an_unreadable_cost_file_is_timed_again(mnist_root, tmp_path, capsys, monkeypatch):
    calls = []
    monkeypatch.setattr(cost, "calibrate", fake_calibration(calls))
    out = tmp_path / "runs"
    out.mkdir()
    (out / ".cost-cpu.json").write_text("{garbage")
    assert main(["sweep", "--methods", "ebgan", "--steps", "20", *tiny(mnist_root, out), "--time-limit", "1m",
                 "--dry-run"]) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and ".cost-cpu.json is unreadable" in err and calls == [1]
    assert json.loads((out / ".cost-cpu.json").read_text())["format"] == cost.FORMAT


def test_a_pack_whose_timing_fails_is_not_started(mnist_root, tmp_path, capsys, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("boom\nand more")

    monkeypatch.setattr(cost, "calibrate", broken)
    out = tmp_path / "runs"
    assert main(["sweep", "--methods", "ebgan", "--steps", "20", *tiny(mnist_root, out), "--time-limit", "1m"]) == 0
    captured = capsys.readouterr()
    assert "warning: its timing failed: RuntimeError: boom; not started" in captured.err
    assert last_line(captured.out) == ("0 of 1 runs done; the rest need more time (1 pack(s) of shapes not timed here "
                                       "yet); run the same command again to continue")
    assert not list(out.glob("ebgan-*"))


def test_real_timing_on_tiny_shapes_is_kept_and_reused(mnist_root, tmp_path, capsys, monkeypatch):
    out = tmp_path / "runs"
    # one shape: 2 runs of 40 steps fit; 2 of a million steps (predicted hours) never start
    sweep = ["sweep", "--methods", "ebgan", "--seeds", "0,1", "--grid", "steps=40,1000000", "--eval-every", "20",
             "--eval-every-n", "16", "--name", "real", *tiny(mnist_root, out), "--time-limit", "2m"]
    assert main(sweep) == 0
    captured = capsys.readouterr()
    timing = ("timing ebgan G 2x16 D 2x16 batch 16, pack of 1, 1 thread(s), float32 on cpu, and its evaluation "
              "(eval_n 50, inception_n default, metrics all)")
    assert timed_shapes(captured.err) == [timing]
    line = last_line(captured.out)
    assert line.startswith("2 of 4 runs done; the rest need about ") and line.endswith(
        " h here; run the same command again to continue")
    costs = json.loads((out / ".cost-cpu.json").read_text())
    [shape] = costs["shapes"].values()
    [evaluation] = costs["evaluations"].values()
    assert shape["steps_per_s"] > 1 and shape["start_s"] > 0 and shape["score_s"] >= 0
    assert evaluation["per_run_s"] > 0 and not list(out.glob(".calibration-*"))
    packs = json.loads((out / "sweep-real.json").read_text())["time_limit"]["packs"]
    assert len(packs) == 2 and all(0.1 < p["took_s"] / p["predicted_s"] < 10 for p in packs)

    def no_timing(*args, **kwargs):
        raise AssertionError("timed again")

    monkeypatch.setattr(cost, "calibrate", no_timing)
    assert main(sweep) == 0
    captured = capsys.readouterr()
    assert last_line(captured.out) == line and not timed_shapes(captured.err)


# -- the GPU campaign, on the CPU --------------------------------------------------------------------------------
EXPERIMENT = """#!/usr/bin/env bash
set -euo pipefail
runs=${RUNS:-/tmp/ebm-bench-tiny}
if [[ "${1:-}" == "--campaign" ]]; then
    tiny=(--batch-size 16 --n-layer-g 2 --size-g 16 --size-d 16 --z-dim 8 --log-every 10 --holdout 100 --eval-n 50
          --threads 1 --no-download --out "$runs")
    ebm-bench sweep --methods ebgan --seeds 0,1,2 --steps 20 --name short "${tiny[@]}" "${@:2}"
    ebm-bench sweep --methods ebgan --seeds 0 --steps 1000000 --name long "${tiny[@]}" "${@:2}"
    exit 0
fi
"""


def campaign(experiment, out, mnist_root, tmp_path, limit="60s"):
    env = {**os.environ, "EBM_BENCH_DATA": str(mnist_root), "CAMPAIGN_WORK": str(tmp_path / "work"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    return subprocess.run(["bash", str(REPO / "benchmarks" / "gpu.sh"), "campaign", str(experiment), "--device", "cpu",
                           "--time-limit", limit, "--out", str(out)], env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_a_campaign_runs_a_window_and_writes_the_archives(mnist_root, tmp_path):
    experiment = tmp_path / "leaderboards" / "tiny"
    experiment.mkdir(parents=True)
    (experiment / "make.sh").write_text(EXPERIMENT)
    first = tmp_path / "out1"
    done = campaign(experiment, first, mnist_root, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sweep: 3 of 3 runs done" in done.stdout and "sweep: 0 of 1 runs done; the rest need about" in done.stdout
    names = sorted(p.name for p in first.iterdir())
    assert names == ["campaign-tiny.tar.gz", "records-1-of-1.tar.gz"]
    assert main(["records", "import", str(first / "records-1-of-1.tar.gz"), "--into", str(experiment / "records")]) == 0
    (experiment / "campaign").mkdir()
    subprocess.run(["tar", "-xzf", str(first / "campaign-tiny.tar.gz"), "-C", str(experiment / "campaign")],
                   check=True)
    assert len(list((experiment / "records").glob("*/result.json"))) == 3
    assert (experiment / "campaign" / ".cost-cpu.json").is_file()
    [window] = (experiment / "campaign").glob("window-*")
    assert "this window: 3 runs ended" in (window / "campaign-figures.txt").read_text()

    second = tmp_path / "out2"  # the next window starts from the committed records and timings
    again = campaign(experiment, second, mnist_root, tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "3 runs already recorded" in again.stdout and "no run ended in this window" in again.stdout
    assert sorted(p.name for p in second.iterdir()) == ["campaign-tiny.tar.gz"]
    log = (next((tmp_path / "work").glob("tiny-logs/window-*")) / "campaign.log").read_text()
    assert not timed_shapes(log)


def test_a_campaign_refuses_what_it_cannot_run_in_one_line(tmp_path):
    experiment = tmp_path / "old"
    experiment.mkdir()
    (experiment / "make.sh").write_text("#!/usr/bin/env bash\necho render\n")
    for args, message in ((["campaign"], "campaign needs the experiment's name"),
                          (["campaign", str(experiment)], "has no --campaign mode"),
                          (["campaign", str(tmp_path / "none")], "make.sh not found"),
                          (["campaign", str(experiment), "--time-limit", "soon"], "is not a duration"),
                          (["campaign", str(experiment), "--fast"], "unknown campaign option --fast")):
        done = subprocess.run(["bash", str(REPO / "benchmarks" / "gpu.sh"), *args], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 2 and done.stderr.startswith("error: ") and message in done.stderr
        assert len(done.stderr.strip().splitlines()) == 1
    assert shutil.which("bash")
