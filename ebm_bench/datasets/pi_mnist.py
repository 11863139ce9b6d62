"""pi-mnist: permutation-invariant MNIST for the semi-supervised task (EBGAN paper section 4.2, appendix D).

All 60,000 training digits at 28x28, unpadded, as the ladder papers train on them (Rasmus et al. 2015, Pezeshki et
al. 2015), with their labels, from which --labels N draws a balanced labelled subset (ebm_bench.datasets.loading).
The test split is the 10,000 official test digits with their labels: the `test_error` metric classifies all of
them. The held-out real images of the energy diagnostics (--holdout) are the first of those test digits, so that
no training digit is set aside. "Permutation invariant" is the networks' side: the ladder D flattens each image
to a 784-vector and knows nothing of its layout.

Images are in [-1, 1] like every dataset's (G, the sample grid and the classifier scores rely on it); the ladder
net works in the ladder papers' [0, 1] units internally (ebm_bench.nets.ladder).
"""

from __future__ import annotations

from pathlib import Path

import torch

from ebm_bench.errors import ConfigError

from .loading import TensorBatches
from .mnist import load_mnist
from .spec import DatasetSpec, ImageArrays, TrainingData, to_unit_range

IMAGE_SIZE = 28
N_TEST = 10000


def load_pi_mnist(root: Path, image_size: int, batch_size: int, seed: int, holdout: int, device: torch.device,
                  download: bool = True) -> TrainingData:
    """MNIST's 60,000 training digits (28x28, labelled) and its 10,000 test digits; the first `holdout` test digits
    are the held-out real images."""
    train = load_mnist(root, "train", IMAGE_SIZE, download)
    test = load_mnist(root, "test", IMAGE_SIZE, download)
    if batch_size > len(train.images) // 2:
        raise ConfigError(f"--batch-size {batch_size} is too large for pi-mnist; use {len(train.images) // 2} or "
                          "less (100 is the ladder papers')")
    if not 0 <= holdout <= len(test.images):
        raise ConfigError(f"--holdout {holdout} is out of range for pi-mnist, whose held-out images are its "
                          f"{len(test.images)} test digits; use 0..{len(test.images)}")
    return TrainingData(
        batches=TensorBatches(train.images, batch_size, seed, device),
        holdout=to_unit_range(test.images[:holdout].to(device)),
        image_shape=tuple(train.images.shape[1:]),
        n_train=len(train.images),
        sha256=ImageArrays(torch.cat([train.images, test.images]), torch.cat([train.labels, test.labels])).sha256(),
        labels=train.labels,
        test=test,
    )


SPEC = DatasetSpec(
    name="pi-mnist", description="permutation-invariant MNIST, 1x28x28 unpadded, 60k labelled train (--labels N for "
    "semi-supervised runs) + 10k test digits", load=load_pi_mnist, image_sizes=(IMAGE_SIZE,), channels=1,
    default_arch="ladder", reference="mnist-test", classifier=True, preset="pi-mnist",
    option_defaults={"margin": 10.0})  # MNIST's, for EBGAN's L2 energy; EBGAN-LN's own margin (16) is in its units
