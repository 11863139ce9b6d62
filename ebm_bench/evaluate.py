"""End-of-run evaluation of a trained run: its sample grid, D's energies, and every metric that applies.

Which metrics: the run's `metrics` list, or by default every registered metric whose inputs the run can supply:
classifier metrics where the dataset's DatasetSpec says the MNIST classifier applies and `eval_n` > 0, Inception
metrics where `inception_n` > 0, energy diagnostics where there are held-out images, sample metrics where
`eval_n` > 0. The reference set (FID-type metrics) is the DatasetSpec's: a named set (MNIST's test split) or the
run's held-out real images. A metric registered by a plugin is evaluated with no other edit.

Provenance keeps each family's own N and reference: the flat keys of `evaluation_provenance` (n, reference,
n_reference, image_shape, classifier_sha256, ...) describe the classifier and sample metrics, scored on `eval_n`
samples, as records always did; the Inception metrics, scored on `inception_n` samples against as many reference
images, are described by the sub-dict `inception` (with KID's subset size, and why kid_std is NaN when it is).
The Inception weights' sha256 is also flat, and so are the reference set's name and the torch-fidelity version
when only the Inception family ran, so that readers of the flat keys (report, leaderboard) keep working.

Energies are computed the way training computes them: batches of one kind (real or generated) of the training
batch size, BatchNorm normalising with the batch's own statistics, no gradient, and the running statistics left
untouched. In eval mode BatchNorm would use running statistics accumulated over real AND generated batches,
which is not the energy D was trained with (on one BatchNorm D the AUROC was 0.334 in training-mode batches and
0.004 in eval mode). Dropout is off: its eval mode is its expectation, which batch statistics are not.
"""

from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn

from .device import set_matmul_precision
from .errors import ConfigError
from .files import atomic_write_bytes
from .datasets import to_unit_range
from .metrics import METRICS, Reference, auroc, over_training_metrics, score
from .metrics.inception import resolve_weights_path
from .record import EVALUATION, SAMPLES, quality_from_evaluation
from .train import EVAL_BATCH, Energies, PreparedRun
from .trajectory import TrajectoryWriter

SAMPLE_SEED = 2016  # the sample grid uses the same z for every run, so grids compare across methods and seeds
N_EVAL_FAKE = 5000  # generated samples for the end-of-run energy diagnostics
QUALITY_SEED = SAMPLE_SEED + 4  # the noise of the evaluations over training: the same for every run
ENERGY_COLUMNS = ["energy_heldout", "energy_generated", "energy_auroc"]  # evaluation.csv's D diagnostics


def quality_columns(metrics: list[str] | None = None) -> list[str]:
    """evaluation.csv's columns: the clock, N, the metrics scored over training (default: every registered metric
    marked `over_training`) and D's energy diagnostics."""
    return ["step", "wall_s", "eval_s", "n", *(over_training_metrics() if metrics is None else metrics),
            *ENERGY_COLUMNS]


@torch.no_grad()
def sample(generator: nn.Module, n: int, z_dim: int, seed: int, device: torch.device) -> torch.Tensor:
    """n images from G in eval mode (BatchNorm running statistics), from a fixed noise seed."""
    generator.eval()
    z = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))
    return torch.cat([generator(chunk.to(device)) for chunk in z.split(EVAL_BATCH)])


@contextlib.contextmanager
def training_batchnorm(module: nn.Module) -> Iterator[None]:
    """Every BatchNorm layer normalises with batch statistics; running statistics are restored on exit."""
    saved = {name: buffer.clone() for name, buffer in module.named_buffers()}
    was_training = module.training
    module.eval()
    for layer in module.modules():
        if isinstance(layer, nn.modules.batchnorm._BatchNorm):
            layer.train()
    try:
        yield
    finally:
        with torch.no_grad():
            for name, buffer in module.named_buffers():
                buffer.copy_(saved[name])
        module.train(was_training)


@torch.no_grad()
def energies(run: PreparedRun, images: torch.Tensor) -> torch.Tensor:
    """Per-image energies of `images` (one kind only), in whole training-size batches (a remainder is dropped:
    a smaller batch would have other BatchNorm statistics)."""
    batch = run.config.batch_size
    usable = len(images) - len(images) % batch
    with training_batchnorm(run.discriminator):
        out = []
        for chunk in images[:usable].split(batch):
            d_out = run.discriminator(chunk)
            out.append(Energies(chunk, d_out, run.method.energy(chunk, d_out)).energy)
    return torch.cat(out) if out else images.new_empty(0)


def write_samples(run: PreparedRun) -> None:
    from torchvision.utils import save_image

    cfg, buffer = run.config, io.BytesIO()
    save_image(sample(run.generator, cfg.n_samples, cfg.z_dim, SAMPLE_SEED, run.device), buffer, format="png",
               nrow=int(cfg.n_samples ** 0.5), normalize=True, value_range=(-1, 1))
    atomic_write_bytes(run.run_dir / SAMPLES, buffer.getvalue())


def chosen_metrics(run: PreparedRun) -> list[str]:
    """The run's `metrics`, else every registered metric the run can supply inputs for."""
    cfg, spec = run.config, run.spec
    if cfg.metrics is not None:
        return list(cfg.metrics)
    available = {"energies": len(run.data.holdout) >= cfg.batch_size, "samples": cfg.eval_n > 0,
                 "classifier": spec.classifier and cfg.eval_n > 0, "inception": bool(cfg.inception_n),
                 "classes": classifies(run)}
    return [name for name, metric in METRICS.items() if available[metric.needs]]


def check_ready(run: PreparedRun) -> None:
    """Fail before training, not after it, when the end-of-run scores need a file that cannot be had: the
    Inception weights (fetched now if they are to be downloaded)."""
    if any(METRICS[name].needs == "inception" for name in chosen_metrics(run)):
        resolve_weights_path(run.config.inception_weights, download=run.config.download)


def evaluate_runs(runs: list[PreparedRun]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(evaluation, provenance) of each trained run, and its sample grid written. Runs that score the same metrics
    on the same number of samples against the same reference (a pack) share one classifier pass, and the
    reference's features are computed once. Scores equal each run's scored alone within float32 round-off (the
    classifier sees other batch compositions)."""
    out: list[tuple[dict[str, Any], dict[str, Any]]] = []
    sample_groups: dict[tuple, list[int]] = {}
    for i, run in enumerate(runs):
        set_matmul_precision(run.config.matmul)  # as the run trained
        write_samples(run)
        by_need = _by_need(run)
        evaluation: dict[str, Any] = {}
        if by_need.get("energies"):
            evaluation |= _energy_scores(run, by_need["energies"])
        if by_need.get("classes"):
            evaluation |= _class_scores(run, by_need["classes"])
        out.append((evaluation, {}))
        if _sample_metrics(by_need):
            sample_groups.setdefault(_sharing_key(run, by_need), []).append(i)
    for members in sample_groups.values():
        first = runs[members[0]]
        names, cfg = _sample_metrics(_by_need(first)), first.config
        set_matmul_precision(cfg.matmul)
        sets = [sample(runs[i].generator, cfg.eval_n, cfg.z_dim, SAMPLE_SEED + 2, runs[i].device) for i in members]
        scored = score(names, sets, _reference(first), device=first.device, data_root=first.resolved["data_root"])
        for i, (scores, provenance) in zip(members, scored):
            out[i][0].update(scores | {"n": cfg.eval_n})
            out[i][1].update(provenance)
    for run, (evaluation, provenance) in zip(runs, out):
        if names := _by_need(run).get("inception"):
            set_matmul_precision(run.config.matmul)
            evaluation_part, record = _inception_scores(run, names)
            evaluation |= evaluation_part
            provenance["inception"] = {k: v for k, v in record.items() if v is not None and k not in CLASSIFIER_KEYS}
            for key in FLAT_WHEN_ALONE:
                if provenance.get(key) is None and record.get(key) is not None:
                    provenance[key] = record[key]
    return out


# Provenance keys only the classifier family has; keys the Inception family also sets flat when no classifier or
# sample metric set them (the report and the leaderboard read these flat keys)
CLASSIFIER_KEYS = ("classifier_sha256", "classifier_test_accuracy", "classes_covered_min_share")
FLAT_WHEN_ALONE = ("reference", "inception_weights_sha256", "torch_fidelity_version")


def _by_need(run: PreparedRun) -> dict[str, list[str]]:
    by_need: dict[str, list[str]] = {}
    for name in chosen_metrics(run):
        by_need.setdefault(METRICS[name].needs, []).append(name)
    return by_need


def _sample_metrics(by_need: dict[str, list[str]]) -> list[str]:
    return by_need.get("classifier", []) + by_need.get("samples", [])


def _reference(run: PreparedRun):
    return run.spec.reference if run.spec.reference != "holdout" else run.data.holdout


def _sharing_key(run: PreparedRun, by_need: dict[str, list[str]]) -> tuple:
    reference = _reference(run)  # a named set, or the held-out tensor itself (one object when runs share data)
    return (tuple(_sample_metrics(by_need)), run.config.eval_n, run.config.z_dim, str(run.device),
            run.config.matmul, run.resolved["data_root"], reference if isinstance(reference, str) else id(reference))


def _energy_scores(run: PreparedRun, names: list[str]) -> dict[str, Any]:
    cfg = run.config
    real = energies(run, run.data.holdout)
    fake = energies(run, sample(run.generator, min(N_EVAL_FAKE, len(run.data.holdout)), cfg.z_dim,
                                SAMPLE_SEED + 1, run.device))
    ((scores, _),) = score(names, None, None, device=run.device, energy_real=real, energy_fake=fake)
    return scores | {"n_heldout": len(real), "n_generated": len(fake)}


CALIBRATION_N = 10000  # training images whose clean path sets a classifying D's BatchNorm statistics (test_error)


def classifies(run: PreparedRun) -> bool:
    """Whether the run's D classifies a labelled test set (the ladder D on pi-mnist): metrics that need "classes"."""
    return (run.data.test is not None and hasattr(run.data.batches, "images")
            and callable(getattr(run.discriminator, "classify", None)))


def _class_scores(run: PreparedRun, names: list[str]) -> dict[str, Any]:
    """D's class logits of the dataset's test split (its clean path, BatchNorm statistics from the first
    CALIBRATION_N training images), scored by the "classes" metrics."""
    test = run.data.test
    logits = run.discriminator.classify(to_unit_range(test.images.to(run.device)),
                                        to_unit_range(run.data.batches.images[:CALIBRATION_N]))
    ((scores, _),) = score(names, None, None, device=run.device, class_logits=logits, class_labels=test.labels)
    return scores | {"n_test": len(test.labels)}


def _inception_scores(run: PreparedRun, names: list[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    cfg = run.config
    samples = sample(run.generator, cfg.inception_n, cfg.z_dim, SAMPLE_SEED + 3, run.device)
    ((scores, record),) = score(names, samples, _reference(run), device=run.device,
                                data_root=run.resolved["data_root"], inception_weights=cfg.inception_weights)
    return scores | {"inception_n": len(samples)}, record


# -- quality over training ---------------------------------------------------------------------------------------
class QualityLog:
    """Scores over training (`eval_every`): every N steps, `eval_every_n` samples from fixed noise, the same for
    every run, scored with the cheap classifier metrics, and D's mean energy of held-out real and of generated
    images with their AUROC; one row per evaluation in each run's evaluation.csv.

    A trainer calls it between steps (the host syncs here, never inside a step) and before a checkpoint, so a
    resumed run evaluates again what its killed predecessor evaluated after its last checkpoint: the first call
    drops rows from that step on. A pack's runs share one classifier pass and one reference."""

    def __init__(self, runs: list[PreparedRun]):
        self.runs, cfg = runs, runs[0].config
        self.n = cfg.eval_every_n
        self.metrics = [name for name in over_training_metrics()
                        if METRICS[name].needs != "classes"
                        and (METRICS[name].needs != "classifier" or runs[0].spec.classifier)]
        self.classes = [name for name in over_training_metrics()
                        if METRICS[name].needs == "classes" and classifies(runs[0])]
        self.energy = len(runs[0].data.holdout) >= cfg.batch_size
        if not self.metrics and not self.energy and not self.classes:
            raise ConfigError(f"--eval-every needs the MNIST classifier (dataset {cfg.dataset} has none) or a held-out "
                              f"set of at least one batch (--holdout >= {cfg.batch_size})")
        self.writers = [TrajectoryWriter(run.run_dir / EVALUATION, quality_columns(self.metrics + self.classes))
                        for run in runs]
        self.started = False
        self.reference: Reference | None = None
        self.noise = torch.randn(self.n, cfg.z_dim, generator=torch.Generator().manual_seed(QUALITY_SEED))

    def __call__(self, step: int, wall_s: float, members: list[int]) -> None:
        began = time.perf_counter()
        if not self.started:
            for writer in self.writers:
                writer.start(resume_after_step=step - 1)
            self.started = True
        runs = [self.runs[k] for k in members]
        samples = [self._sample(run) for run in runs]
        rows = [{"step": step, "wall_s": round(wall_s, 3), "n": self.n} for _ in runs]
        if self.metrics:
            first = runs[0]
            if self.reference is None:
                reference = _reference(first)
                self.reference = Reference.build(reference, samples[0], first.resolved["data_root"])
            scored = score(self.metrics, samples, self.reference, device=first.device,
                           data_root=first.resolved["data_root"])
            for row, (scores, _) in zip(rows, scored):
                row.update(scores)
        if self.energy:
            for run, images, row in zip(runs, samples, rows):
                real, fake = energies(run, run.data.holdout[:self.n]), energies(run, images)
                row |= {"energy_heldout": real.double().mean().item(), "energy_generated": fake.double().mean().item(),
                        "energy_auroc": auroc(real, fake)}
        if self.classes:
            for run, row in zip(runs, rows):
                row |= {name: value for name, value in _class_scores(run, self.classes).items() if name in self.classes}
        cost = round(time.perf_counter() - began, 3)
        for k, row in zip(members, rows):
            self.writers[k].append(row | {"eval_s": cost / len(members)})

    @torch.no_grad()
    def _sample(self, run: PreparedRun) -> torch.Tensor:
        was_training = run.generator.training
        run.generator.eval()
        images = torch.cat([run.generator(chunk.to(run.device)) for chunk in self.noise.split(EVAL_BATCH)])
        run.generator.train(was_training)
        return images


def quality_summary(run_dir: str | Path) -> dict[str, dict[str, float]]:
    """Per metric of a run's evaluation.csv: the best score and its step, the final score, the drop from best to
    final (>= 0; in the metric's bad direction), the mean of the last three evaluations, the area under the curve
    over the step span (the curve's time-average) and the share of evaluations within 10% of the best
    (`stats.quality_statistics`, read through `record.quality_from_evaluation`)."""
    return quality_from_evaluation(run_dir)
