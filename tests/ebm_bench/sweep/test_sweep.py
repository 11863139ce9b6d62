"""Sweeps: grid expansion and presets, resume after interruption, divergence, executors (local, Ray), plots."""

import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import ebm_bench
from ebm_bench import Budget, MLPConfig, RunConfig
from ebm_bench.api import train_one
from ebm_bench.cli import main
from ebm_bench.errors import ConfigError
from ebm_bench.plots import plot_all, plot_histograms
from ebm_bench.record import load_records
from ebm_bench.config import config_file, load_preset
from ebm_bench.sweep import (
    execute_local,
    execute_ray,
    expand,
    parse_grid,
    plan_runs,
    run_safely,
)


def base(mnist_root, tmp_path, steps=6):
    return RunConfig(budget=Budget("steps", steps), batch_size=16, mlp=MLPConfig(n_layer_g=2, size_g=32, size_d=32),
                     z_dim=8, holdout=64, data_root=str(mnist_root), out=str(tmp_path / "runs"), log_every=2,
                     checkpoint_every=2, n_samples=4, download=False, eval_n=100)


def solo(configs):
    """One pack per run: each trains alone."""
    return [[config] for config in configs]


def sweep(preset=None, methods=(), grid=(), settings=(), seeds=(0,), options=None, sample=None, config=None):
    """The configs of a sweep: the preset's settings, the method options, --set, then the grid (as the CLI does)."""
    fixed = {name: values[0] for name, values in parse_grid(settings).items()}
    file = config_file(load_preset(preset), preset) if preset else None
    return plan_runs(file, methods, seeds, options=options or {}, fixed=fixed, grid=parse_grid(grid), sample=sample,
                     base=config or RunConfig()).configs


def test_presets_have_the_paper_counts():
    assert len(sweep("ebgan-paper-grid")) == 512
    gan = sweep("gan-paper-grid")
    assert len(gan) == 6144 and {c.method for c in gan} == {"gan"}
    assert {(c.optim.lr_g, c.optim.lr_d) for c in gan} == {(0.01, 0.01), (0.001, 0.001), (0.0001, 0.0001)}
    margins = sweep("margin-sensitivity", seeds=(0, 1))
    assert len(margins) == 16 and sorted({c.method_options["margin"] for c in margins}) == [1, 2, 4, 6, 8, 12, 16, 32]
    assert {(c.mlp.n_layer_g, c.mlp.n_layer_d, c.mlp.size_g, c.mlp.size_d) for c in margins} == {(5, 2, 1600, 1024)}


def test_set_overrides_a_preset_and_grid_adds_axes():
    configs = sweep("margin-sensitivity", grid=["batch_size=32,64"], settings=["size_g=800"])
    assert len(configs) == 16 and {c.mlp.size_g for c in configs} == {800}
    assert {c.batch_size for c in configs} == {32, 64}


def test_grid_over_method_options_goes_to_the_methods_that_have_them():
    configs = sweep(methods=["gan", "began"], grid=["gamma=0.3,0.7"], seeds=(0, 1))
    assert len(configs) == 8
    assert [c.method_options for c in configs if c.method == "gan"] == [{}] * 4
    assert sorted(c.method_options["gamma"] for c in configs if c.method == "began") == [0.3, 0.3, 0.7, 0.7]


def test_sample_is_a_seeded_subset_of_grid_points():
    first = sweep("gan-paper-grid", sample=10)
    assert len(first) == 10 and first == sweep("gan-paper-grid", sample=10)
    assert len({json.dumps(dataclasses.asdict(c), sort_keys=True) for c in first}) == 10


def test_another_sample_seed_draws_other_points(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "400")  # one line per run

    def points(*extra):
        assert main(["sweep", "--preset", "gan-paper-grid", "--sample", "16", "--dry-run", *extra]) == 0
        return [line.split("seed 0")[1] for line in capsys.readouterr().out.splitlines() if "seed 0" in line]

    default, again, other = points(), points("--sample-seed", "0"), points("--sample-seed", "3")
    assert len(default) == len(other) == 16 and default == again
    assert len(set(default) & set(other)) <= 1  # 16 of 6,144 points twice: almost surely disjoint


def test_a_dry_run_fits_the_terminal(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    assert main(["sweep", "--preset", "gan-paper-grid", "--sample", "16", "--dry-run"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 17 and max(map(len, lines)) <= 80  # wrapped, not cut: every setting is still there
    assert sum("optimizer_d=" in line for line in lines) == 16


def test_bad_grids_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown sweep field 'marginn'"):
        sweep(methods=["ebgan"], grid=["marginn=1,2"])
    with pytest.raises(ConfigError, match="NAME=V1,V2"):
        parse_grid(["margin"])
    with pytest.raises(ConfigError, match="known presets"):
        sweep("figure-9")
    with pytest.raises(ConfigError, match="margin is given twice: --grid margin=1 and --grid margin=2"):
        parse_grid(["margin=1", "margin=2"])
    with pytest.raises(ConfigError, match="names method ebgan twice"):
        sweep(methods=["ebgan", "ebgan"])
    with pytest.raises(ConfigError, match="names seed 3 twice"):
        sweep(methods=["ebgan"], seeds=(3, 3))
    with pytest.raises(ConfigError, match="--workers must be >= 1"):
        execute_local([], workers=0)
    with pytest.raises(ConfigError, match="--gpus-per-run must be 0 or more"):
        execute_ray([], gpus_per_run=-1)


def test_an_interrupted_sweep_reruns_only_what_is_missing(mnist_root, tmp_path):
    configs = expand(["ebgan"], [0], {"margin": [2, 8, 32]}, base(mnist_root, tmp_path))
    done = train_one(configs[0])

    def interrupt(row):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_one(configs[1], on_log=interrupt)  # checkpointed at step 2, then killed
    outcomes = execute_local(solo(configs))
    assert [o.status for o in outcomes] == ["finished"] * 3
    records = load_records([tmp_path / "runs"]).set_index("config.method_options.margin")
    assert records.loc[2, "wall_s"] == done.wall_s  # not trained again
    assert records.loc[8, "steps"] == 6 and records.loc[32, "steps"] == 6


@ebm_bench.register_method("test-sweep-explodes")
@dataclasses.dataclass
class ExplodesAtHighMargin(ebm_bench.Method):
    """Diverges (infinite D loss) when its margin is above 10."""

    margin: float = 1.0
    energy_model = "classifier"

    def energy(self, images, out):
        return -out.logit

    def loss_d(self, real, fake):
        return real.energy.mean() * (float("inf") if self.margin > 10 else 1.0) + fake.energy.mean()

    def loss_g(self, fake):
        return fake.energy.mean()


def test_a_diverged_run_is_recorded_and_the_sweep_goes_on(mnist_root, tmp_path):
    configs = expand(["test-sweep-explodes"], [0], {"margin": [32, 1]}, base(mnist_root, tmp_path))
    with pytest.raises(Exception):  # the contract check catches an infinite loss on the first step ...
        train_one(configs[0])
    outcomes = execute_local(solo(configs))  # ... and the sweep records that run and goes on
    assert [o.status for o in outcomes] == ["failed", "finished"]
    assert "not finite" in outcomes[0].error


@pytest.mark.slow  # worker processes
def test_local_worker_processes(mnist_root, tmp_path):
    configs = expand(["gan", "ebgan"], [0], {}, base(mnist_root, tmp_path, steps=4))
    outcomes = execute_local(solo(configs), workers=2)
    assert sorted((o.config.method, o.status) for o in outcomes) == [("ebgan", "finished"), ("gan", "finished")]


@pytest.mark.slow  # a local Ray cluster
def test_ray_executor_on_a_local_cpu_cluster(mnist_root, tmp_path):
    ray = pytest.importorskip("ray")
    configs = expand(["ebgan"], [0, 1], {}, base(mnist_root, tmp_path, steps=4))
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with pytest.raises(ConfigError, match="has 0 GPUs"):
            execute_ray(solo(configs), gpus_per_run=0.25)
        outcomes = execute_ray(solo(configs), cpus_per_run=1)
    finally:
        ray.shutdown()
    assert sorted((o.config.seed, o.status) for o in outcomes) == [(0, "finished"), (1, "finished")]
    assert all((tmp_path / "runs" / o.run_id / "result.json").exists() for o in outcomes)


@pytest.mark.slow  # a sweep's every figure
def test_each_plot_renders(mnist_root, tmp_path):
    configs = expand(["ebgan", "began"], [0, 1], {}, base(mnist_root, tmp_path))
    configs += expand(["ebgan"], [0, 1], {"margin": [4, 16]}, base(mnist_root, tmp_path))
    execute_local(solo(configs))
    written = plot_all([tmp_path / "runs"], tmp_path / "plots", metrics=["evaluation.energy_auroc"])
    names = {p.name for p in written}
    assert {"energy.png", "energy.svg", "samples.png", "margin_sensitivity.png",
            "margin_sensitivity.svg", "histogram_energy_auroc.png"} <= names
    assert all(p.stat().st_size > 1000 for p in written)
    assert (tmp_path / "plots" / "margin_sensitivity.svg").read_text().startswith("<?xml")
    with pytest.raises(ConfigError, match="no run holds the metric"):
        plot_histograms(load_records([tmp_path / "runs"]), tmp_path / "plots", "evaluation.nope")


def test_sweep_command_writes_a_summary_and_plots(mnist_root, tmp_path, capsys):
    small = ["--steps", "4", "--batch-size", "16", "--n-layer-g", "2", "--size-g", "32", "--size-d", "32",
             "--z-dim", "8", "--log-every", "2", "--holdout", "64", "--no-download", "--data-root", str(mnist_root),
             "--eval-n", "100",
             "--out", str(tmp_path)]
    assert main(["sweep", "--methods", "ebgan", "--grid", "margin=2,8", "--dry-run", *small]) == 0
    assert "2 runs (2 grid points x 1 method(s) x 1 seed(s))" in capsys.readouterr().out
    assert main(["sweep", "--methods", "ebgan", "--grid", "margin=2,8", "--name", "m", *small]) == 0
    summary = json.loads((tmp_path / "sweep-m.json").read_text())
    assert summary["counts"] == {"finished": 2, "diverged": 0, "failed": 0}
    assert sorted(run["margin"] for run in summary["runs"]) == [2, 8]
    assert (tmp_path / "plots-m" / "margin_sensitivity.png").exists()
    assert main(["sweep", "--methods", "ebgan", "--storage", str(tmp_path / "shared"), *small]) == 2
    assert "is where Ray workers train; add --executor ray" in capsys.readouterr().err


def test_settings_apply_in_layers_file_then_flags_then_set_then_grid():
    from ebm_bench.config import config_file
    from ebm_bench.sweep import plan_runs

    file = config_file({"methods": ["ebgan"], "seeds": [3], "lr": 0.5, "optim": {"lr_g": 0.25}, "steps": 100,
                        "set": {"size_g": 64}, "method_options": {"margin": 2}}, "f.toml")
    plan = plan_runs(file, settings={"lr": 0.1, "images": 640}, fixed={"size_g": 128}, grid={"margin": ["4", 8]})
    assert [(c.method, c.seed) for c in plan.configs] == [("ebgan", 3), ("ebgan", 3)]
    first = plan.configs[0]
    assert (first.optim.lr_g, first.optim.lr_d) == (0.1, 0.1)  # a flag's lr overrides the file's lr_g too
    assert (first.budget.kind, first.budget.amount, first.mlp.size_g) == ("images", 640, 128)
    assert [c.method_options for c in plan.configs] == [{"margin": 4.0}, {"margin": 8.0}]  # typed by the method
    with pytest.raises(ConfigError, match="unknown key 'margin' in \\[method_options\\] of f.toml"):
        plan_runs(file, ["gan"])  # the command line's methods replace the file's; gan has no margin


def test_grid_values_are_typed_and_checked_before_any_run():
    with pytest.raises(ConfigError, match="margin must be a number, got 'a'"):
        sweep(methods=["ebgan"], grid=["margin=a"])
    with pytest.raises(ConfigError, match="must be a whole number"):
        sweep(methods=["ebgan"], grid=["steps=10,2.5"])
    with pytest.raises(ConfigError, match="image sizes"):
        sweep(methods=["ebgan"], grid=["image_size=28,30"])
    configs = sweep(methods=["ebgan"], grid=["steps=10,20", "dropout_d=true,false"])
    assert [(c.budget.amount, c.mlp.dropout_d) for c in configs] == [(10, True), (10, False), (20, True), (20, False)]


def test_an_optimiser_flag_starts_from_the_datasets_optimiser():
    from ebm_bench.sweep.grid import apply_setting

    celeba = apply_setting(RunConfig(dataset="celeba"), "lr", 1e-3, ["ebgan"]).optim
    assert (celeba.lr_g, celeba.lr_d, celeba.beta1) == (1e-3, 1e-3, 0.5)  # DCGAN's beta1 kept
    assert apply_setting(RunConfig(), "beta1", 0.5, ["ebgan"]).optim.lr_g == 1e-3


def test_a_sweep_run_prints_plain_progress_lines(mnist_root, tmp_path, capsys):
    outcome = run_safely(dataclasses.replace(base(mnist_root, tmp_path), method="gan", log_every=2))
    err = capsys.readouterr().err
    assert outcome.status == "finished"
    assert re.search(r"gan-mnist-seed0-\w+ +step 2/6 .*steps/s .*ETA", err)  # the first interval; later ones wait 30 s


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.slow  # kills worker processes
@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads processes from /proc (Linux)")
def test_a_sweep_killed_outright_takes_its_worker_processes_with_it(mnist_root, tmp_path):
    args = ["sweep", "--methods", "ebgan", "--seeds", "0,1", "--workers", "2", "--steps", "100000", "--batch-size",
            "16", "--n-layer-g", "2", "--size-g", "32", "--size-d", "32", "--z-dim", "8", "--holdout", "64",
            "--no-download", "--data-root", str(mnist_root), "--out", str(tmp_path / "runs"), "--no-plots"]
    sweep = subprocess.Popen([sys.executable, "-c", "import sys; from ebm_bench.cli import main; sys.exit(main())",
                              *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:  # the two training workers are up once both runs write a trajectory
            if len(list((tmp_path / "runs").glob("*/trajectory.csv"))) == 2:
                break
            time.sleep(0.5)
        workers = {pid for pid in _children(sweep.pid) if _alive(pid)}
        assert len(workers) >= 2 and sweep.poll() is None
        sweep.send_signal(signal.SIGKILL)
        sweep.wait()
        deadline = time.monotonic() + 30
        while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(pid) for pid in workers)
    finally:  # nothing outlives the test, whatever failed
        for pid in {sweep.pid} | workers | _children(sweep.pid):
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_run_and_sweep_share_one_execute_and_only_run_stops_on_a_users_mistake(mnist_root, tmp_path):
    """`execute` trains packs for `ebm-bench run` and `ebm-bench sweep` alike: each outcome carries the run's
    record, a Progress hears each run and each outcome; a user's mistake (no data here) fails that run in a sweep
    and stops `run` (raise_errors) with its one line."""
    from ebm_bench.errors import DataNotFoundError
    from ebm_bench.sweep import Local, Progress, execute

    class Heard(Progress):
        def __init__(self):
            super().__init__()
            self.started, self.done_runs = [], []

        def run_callbacks(self, config):
            self.started.append(config.seed)
            return super().run_callbacks(config)

        def done(self, outcome):
            self.done_runs.append((outcome.config.seed, outcome.status))

    configs = expand(["ebgan"], [0, 1], {}, base(mnist_root, tmp_path, steps=4))
    heard = Heard()
    outcomes = execute([configs], Local(), heard)  # one pack of two
    assert heard.started == [0, 1] and heard.done_runs == [(0, "finished"), (1, "finished")]
    assert [o.result.steps for o in outcomes] == [4, 4] and outcomes[0].result.run_dir == outcomes[0].run_dir
    missing = dataclasses.replace(configs[0], data_root=str(tmp_path / "nowhere"), seed=5)
    (failed,) = execute([[missing]], Local())
    assert failed.status == "failed" and failed.result is None and "DataNotFoundError" in failed.error
    with pytest.raises(DataNotFoundError):
        execute([[missing]], Local(), raise_errors=True)
