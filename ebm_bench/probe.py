"""Is a trained discriminator's energy an energy of the data? Rank held-out test digits against corrupted ones.

A critique of the EBGAN paper argues that an auto-encoder D "is not an energy of any meaningful distribution".
If D's energy were one, it would be low on real digits and rise as a digit is corrupted away from the data. This
module measures that on the same footing for every method (a GAN's energy is its -logit):

- for each corruption and severity, the AUROC of clean against corrupted test digits (P(E_corrupted > E_clean),
  1 = every corrupted digit above every clean one, 0.5 = no separation, below 0.5 = inverted);
- for each corruption, Spearman's correlation between severity (0 = clean) and energy over all images:
  +1 when the energy rises monotonically with severity.

A baseline that learned nothing but the mean training digit rides along (method `baseline-mean-digit`: the L2
distance to that mean, an auto-encoder whose reconstruction is always the mean): a trained D that does no better
than it ranks corruptions by pixel statistics, not by what it learned of the digits.

Images are in [-1, 1] with a background of -1, as the runs train on them.
"""

from __future__ import annotations

from pathlib import Path

from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from torch import nn

from .config import RunConfig
from .errors import ConfigError
from .evaluate import energies
from .metrics import auroc
from .record import (CHECKPOINT, CONFIG, RESULT, checkpoint_mismatch_error, load_checkpoint, read_json_object,
                     read_result)
from .stats import spearman
from .table import TextTable, markdown_document
from .train import PreparedRun, prepare

BACKGROUND = -1.0
PROBE_SEED = 20161203  # the noise and masks of every corruption: the same for every run

# Severities, mildest first. noise: std of Gaussian noise (the image range is 2); mask: share of pixels set to the
# background; rotate: degrees; invert: a in x -> (1 - 2a) x, from the digit (0) through grey (0.5) to its negative (1)
CORRUPTIONS: dict[str, tuple[float, ...]] = {
    "noise": (0.1, 0.2, 0.4, 0.8),
    "mask": (0.1, 0.25, 0.5, 0.75),
    "rotate": (15.0, 45.0, 90.0, 180.0),
    "invert": (0.25, 0.5, 0.75, 1.0),
}


def corrupt(images: torch.Tensor, kind: str, severity: float, generator: torch.Generator) -> torch.Tensor:
    """`images` (N x C x H x W in [-1, 1]) corrupted by `kind` at `severity`; the result stays in [-1, 1]."""
    if kind == "noise":
        noise = torch.randn(images.shape, generator=generator, device=images.device)
        return (images + severity * noise).clamp(-1.0, 1.0)
    if kind == "mask":
        hidden = torch.rand(images.shape[0], 1, *images.shape[2:], generator=generator, device=images.device)
        return images.masked_fill(hidden < severity, BACKGROUND)
    if kind == "rotate":
        import torchvision.transforms.functional as TF  # here: importing torchvision costs every CLI command 2 s

        return TF.rotate(images, severity, interpolation=TF.InterpolationMode.BILINEAR, fill=BACKGROUND)
    if kind == "invert":
        return (1.0 - 2.0 * severity) * images
    raise ConfigError(f"unknown corruption {kind!r}; use one of {', '.join(CORRUPTIONS)}")


def load_trained(run_dir: str | Path, data_root: str | None = None) -> PreparedRun:
    """A finished run's networks as trained, from its folder's config and checkpoint (on the CPU)."""
    run_dir = Path(run_dir)
    if not (run_dir / CHECKPOINT).exists():
        raise ConfigError(f"{run_dir} has no {CHECKPOINT}: probing needs the trained networks, which committed "
                          "records leave out; train the run again (its make.sh) or point at its scratch folder")
    state = load_checkpoint(run_dir / CHECKPOINT, "cpu")  # before the data loads: a bad file fails at once
    config = RunConfig.from_dict(read_json_object(run_dir / CONFIG))
    changes = {"out": str(run_dir.parent), "device": "cpu", "download": False}
    if data_root:
        changes["data_root"] = data_root
    run = prepare(RunConfig.from_dict(config.to_dict() | changes))
    try:
        run.generator.load_state_dict(state["generator"])
        run.discriminator.load_state_dict(state["discriminator"])
        run.method.load_state_dict(state["method"])
    except (RuntimeError, ValueError, KeyError, TypeError) as err:
        raise checkpoint_mismatch_error(run_dir / CHECKPOINT, err) from None
    return run


def probe(run: PreparedRun, clean: torch.Tensor) -> pd.DataFrame:
    """One row per corruption and severity: AUROC against the clean images, mean energies, and the corruption's
    Spearman correlation of energy with severity (repeated on its rows)."""
    generator = torch.Generator().manual_seed(PROBE_SEED)
    energy_clean = energies(run, clean).double().numpy()
    clean = clean[: len(energy_clean)]  # energies() drops a remainder smaller than a batch
    rows = []
    for kind, severities in CORRUPTIONS.items():
        levels, values = [np.zeros(len(energy_clean))], [energy_clean]
        for severity in severities:
            energy = energies(run, corrupt(clean, kind, severity, generator)).double().numpy()
            levels.append(np.full(len(energy), severity))
            values.append(energy)
            rows.append({"corruption": kind, "severity": severity, "auroc": auroc(energy_clean, energy),
                         "energy_clean": float(energy_clean.mean()), "energy_corrupted": float(energy.mean())})
        rho = spearman(np.concatenate(levels), np.concatenate(values))
        for row in rows[-len(severities):]:
            row["spearman"] = rho
    return pd.DataFrame(rows)


BASELINE = "baseline-mean-digit"


class _MeanDigit(nn.Module):
    """Reconstructs every image as the mean training digit."""

    def __init__(self, mean: torch.Tensor):
        super().__init__()
        self.register_buffer("mean", mean)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mean.expand_as(x)


def baseline(mean: torch.Tensor, batch_size: int) -> SimpleNamespace:
    """What `probe` needs of a run, for the distance to the mean digit (`mean`: C x H x W in [-1, 1])."""
    method = SimpleNamespace(energy=lambda images, out: (images - out).flatten(1).norm(dim=1))
    return SimpleNamespace(config=SimpleNamespace(batch_size=batch_size), discriminator=_MeanDigit(mean),
                           method=method)


def _mean_training_digit(run: PreparedRun) -> torch.Tensor:
    from .datasets.mnist import load_mnist

    arrays = load_mnist(run.resolved["data_root"], "train", run.config.image_size, download=False)
    kept = arrays.images[: len(arrays.images) - run.config.holdout]  # the images the runs trained on
    return kept.float().div(127.5).sub(1.0).mean(dim=0)


def test_digits(run: PreparedRun, n: int) -> torch.Tensor:
    """The first `n` MNIST test digits at the run's image size, in [-1, 1]: never trained on by any run."""
    from .datasets.mnist import load_mnist

    if run.config.dataset != "mnist":
        raise ConfigError(f"the energy probe corrupts MNIST test digits; {run.run_id} trained on {run.config.dataset}")
    arrays = load_mnist(run.resolved["data_root"], "test", run.config.image_size, download=False)
    images = arrays.images[:n].float().div(127.5).sub(1.0)
    return images if images.dim() == 4 else images.unsqueeze(1)


def probe_runs(run_dirs, n: int = 2000, data_root: str | None = None) -> pd.DataFrame:
    """`probe` for each run folder, with its run id, method and seed; the real-vs-generated AUROC at the end of
    training (result.json) rides along for the third question. Then the mean-digit baseline, once."""
    tables, run = [], None
    for run_dir in map(Path, run_dirs):
        run = load_trained(run_dir, data_root)
        result = read_result(run_dir / RESULT)
        table = probe(run, test_digits(run, n))
        table.insert(0, "seed", run.config.seed)
        table.insert(0, "method", run.config.method)
        table.insert(0, "run_id", run.run_id)
        table["energy_auroc_generated"] = (result.get("evaluation") or {}).get("energy_auroc")
        tables.append(table)
    if run is None:
        return pd.DataFrame()
    table = probe(baseline(_mean_training_digit(run), run.config.batch_size), test_digits(run, n))
    for column, value in (("seed", 0), ("method", BASELINE), ("run_id", BASELINE)):
        table.insert(0, column, value)
    tables.append(table.assign(energy_auroc_generated=float("nan")))
    return pd.concat(tables, ignore_index=True)


def summarise_probe(table: pd.DataFrame) -> pd.DataFrame:
    """Per method, corruption and severity: mean AUROC over runs with its 95% t-interval half-width, the mean
    Spearman rho of the corruption (and its half-width), and the runs' real-vs-generated energy AUROC."""
    from .stats import ci95_half_width

    def half(values: pd.Series) -> float:
        return ci95_half_width(float(values.std()), int(values.count()))

    grouped = table.groupby(["method", "corruption", "severity"], sort=False)
    out = grouped.agg(runs=("auroc", "count"), auroc=("auroc", "mean"), auroc_ci=("auroc", half),
                      spearman=("spearman", "mean"), spearman_ci=("spearman", half),
                      energy_auroc_generated=("energy_auroc_generated", "mean"),
                      energy_auroc_generated_ci=("energy_auroc_generated", half))
    return out.reset_index()


def probe_markdown(summary: pd.DataFrame) -> str:
    """Per corruption: a row per method, AUROC mean +- 95% half-width per severity, and rho; then real against
    generated at the end of training."""

    def cell(mean: float, ci: float) -> str:
        return f"{mean:.2f}" if ci != ci else f"{mean:.2f} ± {ci:.2f}"

    tables = []
    for kind in CORRUPTIONS:
        rows = summary[summary["corruption"] == kind]
        if rows.empty:
            continue
        severities = sorted(rows["severity"].unique())
        cells = []
        for method, group in rows.groupby("method", sort=False):
            by = group.set_index("severity")
            cells.append([method, str(int(by["runs"].iloc[0])),
                          *(cell(by.loc[s, "auroc"], by.loc[s, "auroc_ci"]) for s in severities),
                          cell(by["spearman"].iloc[0], by["spearman_ci"].iloc[0])])
        tables.append(TextTable(["method", "runs", *(f"AUROC @ {s:g}" for s in severities), "Spearman rho"], cells,
                                title=kind))
    final = summary.groupby("method", sort=False).first()
    tables.append(TextTable(["method", "energy AUROC"],
                            [[m, cell(r.energy_auroc_generated, r.energy_auroc_generated_ci)]
                             for m, r in final.iterrows()],
                            title="real (held-out) against generated, end of training"))
    return markdown_document(tables, "AUROC: P(energy of a corrupted digit > energy of a clean one), 0.5 = no "
                                     "separation; mean ± 95% t half-width over seeds. Spearman: energy against "
                                     "severity (0 = clean) over all images of a corruption.")
