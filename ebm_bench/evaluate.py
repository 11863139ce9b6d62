"""End-of-run evaluation of a trained run: its sample grid, D's energies, and every metric that applies.

Which metrics: the run's `metrics` list, or by default every registered metric whose inputs the run can supply:
classifier metrics where the dataset's DatasetSpec says the MNIST classifier applies and `eval_n` > 0, Inception
metrics where `inception_n` > 0, energy diagnostics where there are held-out images, sample metrics where
`eval_n` > 0. The reference set (FID-type metrics) is the DatasetSpec's: a named set (MNIST's test split) or the
run's held-out real images. A metric registered by a plugin is evaluated with no other edit.

Energies are computed the way training computes them: batches of one kind (real or generated) of the training
batch size, BatchNorm normalising with the batch's own statistics, no gradient, and the running statistics left
untouched. In eval mode BatchNorm would use running statistics accumulated over real AND generated batches,
which is not the energy D was trained with (on one BatchNorm D the AUROC was 0.334 in training-mode batches and
0.004 in eval mode). Dropout is off: its eval mode is its expectation, which batch statistics are not.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any, Iterator

import torch
from torch import nn

from .device import set_matmul_precision
from .metrics import METRICS, score_images_with_provenance
from .metrics.inception import resolve_weights_path
from .files import SAMPLES, atomic_write_bytes
from .train import EVAL_BATCH, Energies, PreparedRun

SAMPLE_SEED = 2016  # the sample grid uses the same z for every run, so grids compare across methods and seeds
N_EVAL_FAKE = 5000  # generated samples for the end-of-run energy diagnostics


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
                 "classifier": spec.classifier and cfg.eval_n > 0, "inception": bool(cfg.inception_n)}
    return [name for name, metric in METRICS.items() if available[metric.needs]]


def check_ready(run: PreparedRun) -> None:
    """Fail before training, not after it, when the end-of-run scores need a file that cannot be had: the
    Inception weights (fetched now if they are to be downloaded)."""
    if any(METRICS[name].needs == "inception" for name in chosen_metrics(run)):
        resolve_weights_path(run.config.inception_weights, download=run.config.download)


def evaluate(run: PreparedRun) -> tuple[dict[str, Any], dict[str, Any]]:
    """(evaluation, provenance) of a trained run; writes its sample grid."""
    cfg, device = run.config, run.device
    set_matmul_precision(cfg.matmul)  # as the run trained
    write_samples(run)
    names = chosen_metrics(run)
    by_need: dict[str, list[str]] = {}
    for name in names:
        by_need.setdefault(METRICS[name].needs, []).append(name)
    evaluation: dict[str, Any] = {}
    provenance: dict[str, Any] = {}
    reference = run.spec.reference if run.spec.reference != "holdout" else run.data.holdout
    data_root = run.resolved["data_root"]
    if by_need.get("energies"):
        real = energies(run, run.data.holdout)
        fake = energies(run, sample(run.generator, min(N_EVAL_FAKE, len(run.data.holdout)), cfg.z_dim,
                                    SAMPLE_SEED + 1, device))
        scores, _ = score_images_with_provenance(None, by_need["energies"], None, device=device,
                                                 energy_real=real, energy_fake=fake)
        evaluation |= scores | {"n_heldout": len(real), "n_generated": len(fake)}
    sample_metrics = by_need.get("classifier", []) + by_need.get("samples", [])
    if sample_metrics:
        samples = sample(run.generator, cfg.eval_n, cfg.z_dim, SAMPLE_SEED + 2, device)
        scores, provenance = score_images_with_provenance(samples, sample_metrics, reference, device=device,
                                                          data_root=data_root)
        evaluation |= scores | {"n": len(samples)}
    if by_need.get("inception"):
        samples = sample(run.generator, cfg.inception_n, cfg.z_dim, SAMPLE_SEED + 3, device)
        scores, record = score_images_with_provenance(samples, by_need["inception"], reference, device=device,
                                                      data_root=data_root, inception_weights=cfg.inception_weights)
        evaluation |= scores | {"inception_n": len(samples)}
        provenance |= {k: v for k, v in record.items() if v is not None and k not in ("n", "classifier_sha256")}
    return evaluation, provenance
