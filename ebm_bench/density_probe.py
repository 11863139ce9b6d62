"""Does a trained D's energy track -log P, an energy of the data, or log Q/P, the critique's optimum for GAN's loss?

The critique of EBGAN (issue 23) argues that a GAN discriminator at its optimum for the current G computes log Q/P
as an energy (its logit is log P/Q), a difference of energies relative to the generator, and that EBGAN's hinge
gives no known function of P and Q. A D would be "more energy-based" if its energy tracked -log P whatever Q is.
On `gaussians-2d` P is known exactly, and so is Q for a run whose G was frozen at a known density
(`--arch toy-fixed-q`), so both can be set against D's energy on two sets of points, the same for every run:

- "data": N fresh samples of P (drawn from PROBE_SEED, not the training points): inside the data's mass;
- "plane": a G x G grid over [-1, 1]^2: mostly away from the mass (about 2% of it lies within 3 std of a mode).

On each, Spearman's rho of the energy with -log P and with log Q/P, with a percentile bootstrap interval over the
points (ebm_bench.stats); log Q/P is NaN for a run whose G was trained (its density is not known). Ranks only: an
energy is defined up to a monotone map (EBGAN's L2 norm, GAN's -logit, clf-hinge's -log sigmoid).

Reading it (FROZEN_Q, ebm_bench.nets.toy): inside the mass the two targets disagree, since Q covers half of P's
modes and log Q/P differs between modes where -log P does not; away from the mass log Q/P ~ -log P for any Q
broader than P, and rho there says whether an energy rises off the data at all. Across seeds, `summarise` gives the
mean rho with a t interval on Fisher's z scale (stats.bounded_interval on [-1, 1]: logit((rho + 1) / 2) = 2 atanh
rho), which stays inside [-1, 1].
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd
import torch

from .datasets.gaussians import DATA, NAME, GaussianMixture, to_images
from .errors import ConfigError
from .evaluate import energies
from .nets.toy import FrozenGenerator
from .probe import load_trained
from .record import CONFIG, read_json_object
from .stats import bootstrap_ci, bounded_interval, spearman
from .table import TextTable, markdown_document
from .train import PreparedRun

PROBE_SEED = 20161205  # the "data" points and the bootstrap's resamples: the same for every run
TARGETS = {"neg_log_p": "-log P", "log_q_over_p": "log Q/P"}
POINT_SETS = ("data", "plane")
PLANE_EDGE = 1.0  # the grid spans [-1, 1]^2, the harness's range


def probe_points(n: int, grid: int) -> dict[str, torch.Tensor]:
    """{"data": n samples of P, "plane": a grid x grid lattice over [-1, 1]^2}, as N x 2 points."""
    if n < 2 or grid < 2:
        raise ConfigError(f"the density probe needs at least 2 data points and a grid of 2 x 2 or more, got --n {n} "
                          f"and --grid {grid}")
    axis = torch.linspace(-PLANE_EDGE, PLANE_EDGE, grid)
    return {"data": DATA.sample(n, torch.Generator().manual_seed(PROBE_SEED)),
            "plane": torch.cartesian_prod(axis, axis)}


def density_targets(points: torch.Tensor, q: GaussianMixture | None) -> dict[str, np.ndarray]:
    """-log P and log Q/P at the points (float64); log Q/P is NaN when Q is not known."""
    log_p = DATA.log_density(points).numpy()
    log_q = q.log_density(points).numpy() if q is not None else np.full_like(log_p, np.nan)
    return {"neg_log_p": -log_p, "log_q_over_p": log_q - log_p}


def correlations(energy: np.ndarray, targets: dict[str, np.ndarray], n_boot: int, seed: int = PROBE_SEED
                 ) -> list[dict[str, float]]:
    """Per target: Spearman's rho with `energy` and its percentile bootstrap interval, the points resampled in
    pairs. NaN where the target is unknown or an energy is not finite (a D that diverged ranks nothing)."""
    energy = np.asarray(energy, dtype=float)
    rows = []
    for name, target in targets.items():
        rho = low = high = float("nan")
        if np.isfinite(energy).all() and np.isfinite(target).all():
            rho = spearman(energy, target)

            def resampled(index: np.ndarray, target=target) -> float:
                index = index.astype(int)  # bootstrap_ci hands the resampled values over as floats
                return spearman(energy[index], target[index])

            low, high = bootstrap_ci(np.arange(len(energy)), resampled, n_boot=n_boot, seed=seed)
        rows.append({"target": name, "n": len(energy), "rho": rho, "ci_low": low, "ci_high": high})
    return rows


def probe_energy(energy_of: Callable[[torch.Tensor], torch.Tensor], q: GaussianMixture | None, n: int = 2000,
                 grid: int = 64, n_boot: int = 2000) -> pd.DataFrame:
    """One row per point set and target: rho of the energy with the target, its interval, and the mean energy.
    `energy_of` maps gaussians-2d images (N x 3 x 1 x 1) to N energies; `q` is G's density, None if not known."""
    rows = []
    for points_name, points in probe_points(n, grid).items():
        energy = energy_of(to_images(points)).detach().double().cpu().numpy()
        for row in correlations(energy, density_targets(points, q), n_boot):
            rows.append({"points": points_name, **row, "energy_mean": float(energy.mean())})
    return pd.DataFrame(rows)


def run_energy(run: PreparedRun) -> Callable[[torch.Tensor], torch.Tensor]:
    """D's energy of every image, as evaluation computes it (whole training-size batches); the last partial batch
    is scored inside the batch of the last `batch_size` images."""
    batch = run.config.batch_size

    def energy_of(images: torch.Tensor) -> torch.Tensor:
        if len(images) < batch:
            raise ConfigError(f"the density probe scores {len(images)} points, fewer than {run.run_id}'s batch of "
                              f"{batch}; raise --n or --grid")
        scored = energies(run, images)
        rest = len(images) - len(scored)
        return torch.cat([scored, energies(run, images[-batch:])[batch - rest:]]) if rest else scored

    return energy_of


def generator_density(run: PreparedRun) -> GaussianMixture | None:
    """Q's density when G was frozen at a known one (`--arch toy-fixed-q`), else None."""
    return run.generator.density if isinstance(run.generator, FrozenGenerator) else None


def density_probe_runs(run_dirs, n: int = 2000, grid: int = 64, n_boot: int = 2000,
                       data_root: str | None = None) -> pd.DataFrame:
    """`probe_energy` for each run folder (trained on gaussians-2d, with its checkpoint), with its run id, method,
    seed, architecture and whether its G was frozen at a known Q."""
    tables = []
    for run_dir in map(Path, run_dirs):
        dataset = read_json_object(run_dir / CONFIG).get("dataset")
        if dataset != NAME:  # before loading the run: its dataset may be large, or not here
            raise ConfigError(f"the density probe needs runs on {NAME}, whose density is known; {run_dir.name} "
                              f"trained on {dataset}")
        run = load_trained(run_dir, data_root)
        q = generator_density(run)
        table = probe_energy(run_energy(run), q, n, grid, n_boot)
        for column, value in (("generator", "frozen Q" if q is not None else "trained"), ("arch", run.config.arch),
                              ("seed", run.config.seed), ("method", run.config.method), ("run_id", run.run_id)):
            table.insert(0, column, value)
        tables.append(table)
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()


def summarise(table: pd.DataFrame) -> pd.DataFrame:
    """Per method, generator, point set and target: the runs with a rho, their mean rho and its 95% interval on
    Fisher's z scale (NaN under two runs), and the mean of the runs' own bootstrap intervals."""
    rows = []
    keys = ["method", "generator", "points", "target"]
    for key, group in table.groupby(keys, sort=False):
        values = group["rho"].dropna().to_numpy()
        low, high = bounded_interval(values, -1.0, 1.0) if len(values) else (float("nan"), float("nan"))
        rows.append(dict(zip(keys, key)) | {
            "runs": len(values), "rho": float(values.mean()) if len(values) else float("nan"),
            "ci_low": low, "ci_high": high, "point_ci_low": float(group["ci_low"].mean()),
            "point_ci_high": float(group["ci_high"].mean())})
    return pd.DataFrame(rows)


def summary_markdown(summary: pd.DataFrame) -> str:
    """Per point set, a row per method and generator: rho with -log P and with log Q/P, mean [95% interval]."""

    def cell(row: pd.Series | None) -> str:
        if row is None or row["rho"] != row["rho"]:
            return "n/a"
        interval = "" if row["ci_low"] != row["ci_low"] else f" [{row['ci_low']:.2f}, {row['ci_high']:.2f}]"
        return f"{row['rho']:.2f}{interval}"

    titles = {"data": "inside the data's mass (samples of P)", "plane": "over the plane (a grid over [-1, 1]^2)"}
    tables = []
    for points in POINT_SETS:
        rows = summary[summary["points"] == points]
        if rows.empty:
            continue
        cells = []
        for (method, generator), group in rows.groupby(["method", "generator"], sort=False):
            by = {row["target"]: row for _, row in group.iterrows()}
            cells.append([method, generator, str(int(group["runs"].max())), *(cell(by.get(t)) for t in TARGETS)])
        tables.append(TextTable(["method", "G", "runs", *(f"rho with {label}" for label in TARGETS.values())], cells,
                                title=titles[points], text_columns=2))
    return markdown_document(tables, "Spearman's rho of D's energy with each target; mean over runs [95% t interval "
                                     "on Fisher's z scale]. log Q/P is known only for a G frozen at Q (--arch "
                                     "toy-fixed-q).")
