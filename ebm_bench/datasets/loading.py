"""Feeding a run: seeded, resumable batches from memory (TensorBatches) or from DataLoader workers (LoaderBatches).

Both draw one permutation per epoch from a torch.Generator seeded by the run seed, so every method of a comparison
sees the same batches, and both drop the last incomplete batch (BatchNorm wants a constant batch size).

LoaderBatches keeps a GPU fed: `EBM_BENCH_WORKERS` worker processes (default min(8, CPUs)), persistent across
epochs, pinned memory and non-blocking copies on CUDA. Resume is exact: the checkpoint holds the generator state
at the start of the epoch and the position in it; the permutation is drawn again and loading continues at the
next batch (batches prefetched but not consumed before the checkpoint are simply decoded again).
"""

from __future__ import annotations

import dataclasses
import os
import weakref
from dataclasses import dataclass
from typing import Iterator, Sequence

import torch
from torch.utils.data import DataLoader, Sampler

from ebm_bench.errors import ConfigError

from .images import HOLDOUT_EPOCH, IMAGE_SIZE, CorruptImageError, ImageSource
from .spec import TrainingData, to_unit_range

WORKERS_ENV = "EBM_BENCH_WORKERS"
MAX_WORKERS = 8
PREFETCH_FACTOR = 4  # batches each worker keeps ready
HOLDOUT_BATCH = 256


_DEVICE_COPIES: dict[tuple[int, str], tuple[weakref.ref, torch.Tensor]] = {}


def _on_device(images: torch.Tensor, device: torch.device) -> torch.Tensor:
    """One device copy of a (cached, never modified) image set for all the runs of a process, not one each."""
    if images.device == device:
        return images
    key = (id(images), str(device))
    source, copy = _DEVICE_COPIES.get(key, (None, None))
    if source is None or source() is not images:
        for stale in [k for k, (ref, _) in _DEVICE_COPIES.items() if ref() is None]:
            del _DEVICE_COPIES[stale]
        copy = images.to(device)
        _DEVICE_COPIES[key] = (weakref.ref(images), copy)
    return copy


class TensorBatches:
    """Batches drawn without replacement from a uint8 tensor that lives on the training device.

    The order comes from its own seeded generator, so every method given the same seed sees the same batches.
    The last incomplete batch of an epoch is dropped (BatchNorm wants a constant batch size).
    """

    def __init__(self, images: torch.Tensor, batch_size: int, seed: int, device: torch.device):
        if batch_size > len(images):
            raise ConfigError(f"batch size {batch_size} is larger than the training set ({len(images)} images)")
        self.images = _on_device(images, device)
        self.batch_size = batch_size
        self.device = device
        self.generator = torch.Generator().manual_seed(seed)
        self.batches_per_epoch = len(images) // batch_size
        self.epoch = 0
        self.position = 0
        self._new_epoch()

    def _new_epoch(self) -> None:
        order = torch.randperm(len(self.images), generator=self.generator)
        self.order = order[: self.batches_per_epoch * self.batch_size].view(self.batches_per_epoch, -1)
        self._order_on_device = self._to_device(self.order)

    def _to_device(self, order: torch.Tensor) -> torch.Tensor:
        if self.device.type != "cuda":
            return order
        self._pinned = order.pin_memory()  # kept alive until the asynchronous copy has run
        return self._pinned.to(self.device, non_blocking=True)

    def next_index(self) -> torch.Tensor:
        """The indices of the next batch into `images` (packed training gathers K runs' batches at once)."""
        if self.position == self.batches_per_epoch:
            self.epoch += 1
            self.position = 0
            self._new_epoch()
        index = self._order_on_device[self.position]
        self.position += 1
        return index

    def next(self) -> torch.Tensor:
        return to_unit_range(self.images[self.next_index()])

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "order": self.order, "epoch": self.epoch,
                "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"].cpu())
        self.order = state["order"].cpu()
        self._order_on_device = self._to_device(self.order)
        self.epoch = state["epoch"]
        self.position = state["position"]


@dataclass
class LabelledBatch:
    """A semi-supervised training batch: images (float in [-1, 1]) and one class per image, -1 where unlabelled."""

    images: torch.Tensor
    labels: torch.Tensor


UNLABELLED = -1


def labelled_subset_seed(seed: int) -> int:
    """The seed of a run's labelled subset: a stream of its own, derived from the run seed (a fixed affine map, so
    that the subset depends on nothing else a run draws)."""
    return (seed * 6364136223846793005 + 1442695040888963407) % 2**63


def balanced_subset(labels: torch.Tensor, n: int, seed: int) -> torch.Tensor:
    """Indices (sorted) of n images, n / C of each of the C classes in `labels`, drawn by `seed`."""
    classes = torch.unique(labels.cpu())
    if n % len(classes):
        raise ConfigError(f"--labels {n} is not a multiple of the {len(classes)} classes: the labelled subset is "
                          f"balanced; use e.g. --labels {max(len(classes), n - n % len(classes))}")
    per_class = n // len(classes)
    generator = torch.Generator().manual_seed(labelled_subset_seed(seed))
    chosen = []
    for c in classes.tolist():
        members = (labels.cpu() == c).nonzero().flatten()
        if per_class > len(members):
            raise ConfigError(f"--labels {n} asks for {per_class} images of class {c}, but the training set has "
                              f"{len(members)}; use --labels {len(classes) * len(members)} or fewer")
        chosen.append(members[torch.randperm(len(members), generator=generator)[:per_class]])
    return torch.cat(chosen).sort().values


class SemiSupervisedBatches:
    """Batches of `batch_size` labelled images followed by `batch_size` unlabelled ones (labels -1).

    The unlabelled stream is the whole training set, in the order an unsupervised run of the same seed sees it; the
    labelled stream cycles through the balanced subset (`balanced_subset`) in its own seeded order. An epoch is
    one pass of the unlabelled stream."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, n_labelled: int, batch_size: int, seed: int,
                 device: torch.device):
        if len(labels) != len(images):
            raise ConfigError(f"the dataset gave {len(labels)} labels for {len(images)} training images")
        if n_labelled > len(images):
            raise ConfigError(f"--labels {n_labelled} exceeds the training set ({len(images)} images); use "
                              f"--labels {len(images)} or fewer")
        if n_labelled < batch_size:
            raise ConfigError(f"--labels {n_labelled} is below the batch size {batch_size}: each step takes a batch "
                              f"of labelled images; use --labels {batch_size} or more, or a smaller --batch-size")
        self.images = images  # every training image, uint8 (the unlabelled stream, and D's calibration set)
        self.subset = balanced_subset(labels, n_labelled, seed)
        self.unlabelled = TensorBatches(images, batch_size, seed, device)
        self.labelled = TensorBatches(images[self.subset], batch_size, labelled_subset_seed(seed), device)
        self.subset_labels = labels.cpu()[self.subset].long().to(device)
        self.batches_per_epoch = self.unlabelled.batches_per_epoch
        self.no_labels = torch.full((batch_size,), UNLABELLED, dtype=torch.long, device=device)

    def next(self) -> LabelledBatch:
        index = self.labelled.next_index()
        labelled = to_unit_range(self.labelled.images[index])
        return LabelledBatch(images=torch.cat([labelled, self.unlabelled.next()]),
                             labels=torch.cat([self.subset_labels[index], self.no_labels]))

    def state_dict(self) -> dict:
        return {"labelled": self.labelled.state_dict(), "unlabelled": self.unlabelled.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.labelled.load_state_dict(state["labelled"])
        self.unlabelled.load_state_dict(state["unlabelled"])


def semi_supervised(data: TrainingData, dataset: str, n_labelled: int, batch_size: int, seed: int,
                    device: torch.device) -> TrainingData:
    """`data` with its batches made semi-supervised (`SemiSupervisedBatches`): what --labels N trains on."""
    if data.labels is None or not isinstance(data.batches, TensorBatches):
        raise ConfigError(f"dataset {dataset!r} has no labelled training images, so --labels does not apply; use "
                          "--dataset pi-mnist, or leave --labels out")
    batches = SemiSupervisedBatches(data.batches.images, data.labels, n_labelled, batch_size, seed, device)
    return dataclasses.replace(data, batches=batches)


def num_workers() -> int:
    """`EBM_BENCH_WORKERS` if set (0 decodes in the main process), else min(8, CPU count)."""
    value = os.environ.get(WORKERS_ENV)
    if value is None or value == "":
        return min(MAX_WORKERS, os.cpu_count() or 1)
    try:
        workers = int(value)
    except ValueError:
        workers = -1
    if workers < 0:
        raise ConfigError(f"{WORKERS_ENV}={value!r} is not a worker count; set it to 0 (decode in the main "
                          "process) or a positive number of loader processes")
    return workers


class _EpochBatches(Sampler):
    """Yields the batches of one epoch's permutation from `start` on, as lists of (index, epoch) items."""

    def __init__(self, batch_size: int):
        self.batch_size = batch_size
        self.order: list[int] = []
        self.epoch = 0
        self.start = 0

    def __len__(self) -> int:
        return len(self.order) // self.batch_size - self.start

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        size = self.batch_size
        for b in range(self.start, len(self.order) // size):
            yield [(i, self.epoch) for i in self.order[b * size:(b + 1) * size]]


def _raise_first_error(errors: Sequence[str]) -> None:
    bad = [e for e in errors if e]
    if bad:
        more = f" ({len(bad) - 1} more in the same batch)" if len(bad) > 1 else ""
        raise CorruptImageError(bad[0] + more)


class LoaderBatches:
    """Seeded, resumable batches decoded by DataLoader workers; the interface of TensorBatches.

    Each epoch is a permutation from a generator seeded by the run seed; the last incomplete batch is dropped.
    """

    def __init__(self, dataset: ImageSource, batch_size: int, seed: int, device: torch.device, workers: int):
        if batch_size > len(dataset):
            raise ConfigError(f"batch size {batch_size} is larger than the training set ({len(dataset)} images)")
        self.dataset, self.batch_size, self.device = dataset, batch_size, device
        self.generator = torch.Generator().manual_seed(seed)
        self.batches_per_epoch = len(dataset) // batch_size
        self.sampler = _EpochBatches(batch_size)
        self.loader = DataLoader(
            dataset, batch_sampler=self.sampler, num_workers=workers, pin_memory=device.type == "cuda",
            persistent_workers=workers > 0, prefetch_factor=PREFETCH_FACTOR if workers > 0 else None,
            generator=torch.Generator().manual_seed(seed))
        self.epoch = 0
        self.position = 0
        self._iterator: Iterator | None = None
        self._new_epoch()

    def _new_epoch(self) -> None:
        self._epoch_start_state = self.generator.get_state()
        self.sampler.order = torch.randperm(len(self.dataset), generator=self.generator).tolist()
        self.sampler.epoch = self.epoch
        self._iterator = None

    def next(self) -> torch.Tensor:
        if self.position == self.batches_per_epoch:
            self.epoch += 1
            self.position = 0
            self._new_epoch()
        if self._iterator is None:
            self.sampler.start = self.position
            self._iterator = iter(self.loader)  # persistent workers are reused, prefetched leftovers dropped
        images, errors = next(self._iterator)
        _raise_first_error(errors)
        self.position += 1
        return to_unit_range(images.to(self.device, non_blocking=True))

    def state_dict(self) -> dict:
        return {"epoch_start_generator": self._epoch_start_state, "epoch": self.epoch, "position": self.position}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["epoch_start_generator"].cpu())
        self.epoch = state["epoch"]
        self._new_epoch()  # draws the same permutation again and leaves the generator where it was
        self.position = state["position"]


def load_all(dataset: ImageSource, device: torch.device, workers: int) -> torch.Tensor:
    """Every image of `dataset`, in order, as float in [-1, 1] on `device` (the held-out set)."""
    if len(dataset) == 0:
        return torch.empty(0, 3, IMAGE_SIZE, IMAGE_SIZE, device=device)
    items = [(i, HOLDOUT_EPOCH) for i in range(len(dataset))]
    chunks = [items[i:i + HOLDOUT_BATCH] for i in range(0, len(items), HOLDOUT_BATCH)]
    loader = DataLoader(dataset, batch_sampler=chunks, num_workers=min(workers, len(chunks)))
    images = []
    for batch, errors in loader:
        _raise_first_error(errors)
        images.append(batch)
    return to_unit_range(torch.cat(images).to(device))


def training_data(train: ImageSource, held: ImageSource, batch_size: int, seed: int, device: torch.device,
                   sha256: str) -> TrainingData:
    workers = num_workers()
    return TrainingData(batches=LoaderBatches(train, batch_size, seed, device, workers),
                        holdout=load_all(held, device, workers), image_shape=(3, IMAGE_SIZE, IMAGE_SIZE),
                        n_train=len(train), sha256=sha256)
