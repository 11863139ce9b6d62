"""The pinned MNIST classifier behind I', MNIST-IS, class coverage and FID-MNIST.

Classifier-based scores (the EBGAN paper's I', section 4.1 and appendix C) depend on the classifier, so
ebm-bench ships exactly one set of weights, pins their sha256 here and refuses to score with anything else
unless the caller says so explicitly.

Architecture ("a regular 3-layer ConvNet trained on MNIST", EBGAN paper), input 1 x 32 x 32 in [-1, 1]:

    conv 5x5, 32  + BatchNorm + ReLU + max-pool 2   -> 32 x 16 x 16
    conv 5x5, 64  + BatchNorm + ReLU + max-pool 2   -> 64 x  8 x  8
    conv 3x3, 128 + BatchNorm + ReLU + global mean  -> 128          (the penultimate features, used by FID-MNIST)
    linear 128 -> 10                                 -> logits

It is trained at 32 x 32, the project's default MNIST size (28 x 28 digits zero-padded, i.e. a border of -1).
28 x 28 inputs are padded with -1 to 32 x 32 before the first layer, which reproduces that padding exactly, so
both sizes see the same network and the same numbers.
"""

from __future__ import annotations

import hashlib
import io
import time
from functools import lru_cache
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ebm_bench.errors import ConfigError, EbmBenchError
from ebm_bench.files import atomic_write_bytes, sha256_file

WEIGHTS_PATH = Path(__file__).resolve().parent / "weights" / "mnist_classifier.pt"

# The shipped weights, made by CLASSIFIER_TRAINING["command"] (torch 2.14.1, CPU, 2 threads; ~8 min on 2 idle cores).
CLASSIFIER_SHA256 = "6dc4876efdd105cf3ad827dde037b130d58464e64065c5d669c4af46c7833d2d"
CLASSIFIER_TEST_ACCURACY = 0.9926  # on the full 10k MNIST test set (32 x 32): 74 errors
CLASSIFIER_TRAINING = {
    "command": "ebm-bench classifier train --epochs 6 --seed 0 --device cpu --out metrics/weights/mnist_classifier.pt",
    "epochs": 6,
    "seed": 0,
    "batch_size": 128,
    "optimizer": "Adam(lr=2e-3), cosine decay to 0 per step",
    "augmentation": "none",
    "train_images": 60000,
}

DEFAULT_EPOCHS = CLASSIFIER_TRAINING["epochs"]
DEFAULT_SEED = CLASSIFIER_TRAINING["seed"]
BATCH_SIZE = CLASSIFIER_TRAINING["batch_size"]
LEARNING_RATE = 2e-3
INPUT_SIZE = 32
FEATURE_DIM = 128


class WeightsMismatchError(EbmBenchError):
    """Classifier weights whose sha256 is not the pinned one: scores would not be comparable."""


class MnistClassifier(nn.Module):
    """3 conv layers + a linear head; `features` gives the 128-d penultimate layer."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = _conv_block(1, 32, kernel_size=5)
        self.conv2 = _conv_block(32, 64, kernel_size=5)
        self.conv3 = _conv_block(64, FEATURE_DIM, kernel_size=3)
        self.head = nn.Linear(FEATURE_DIM, 10)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate features (N x 128) of images in [-1, 1], 1 x 32 x 32 or 1 x 28 x 28."""
        x = pad_to_input_size(images)
        x = F.max_pool2d(self.conv1(x), 2)
        x = F.max_pool2d(self.conv2(x), 2)
        return self.conv3(x).mean(dim=(2, 3))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits (N x 10)."""
        return self.head(self.features(images))


def _conv_block(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def pad_to_input_size(images: torch.Tensor) -> torch.Tensor:
    """28 x 28 -> 32 x 32 with a border of -1 (black), exactly what `load_mnist(image_size=32)` does."""
    _check_images(images)
    size = images.shape[-1]
    if size == INPUT_SIZE:
        return images
    pad = (INPUT_SIZE - size) // 2
    return F.pad(images, (pad, pad, pad, pad), value=-1.0)


def _check_images(images: torch.Tensor) -> None:
    if images.dim() != 4 or images.shape[1] != 1 or tuple(images.shape[2:]) not in ((32, 32), (28, 28)):
        raise ConfigError(
            f"the MNIST classifier takes N x 1 x 32 x 32 or N x 1 x 28 x 28 images in [-1, 1], "
            f"got shape {tuple(images.shape)}"
        )
    if not images.is_floating_point():
        raise ConfigError(f"the MNIST classifier takes float images in [-1, 1], got dtype {images.dtype}; "
                          "convert uint8 with ebm_bench.datasets.to_unit_range")


# ----------------------------------------------------------------------------------------------------------------
# Weights: stable bytes, pinned hash


def state_dict_bytes(model: nn.Module) -> bytes:
    """The state dict serialised in memory.

    `torch.save` to a file names the records inside the zip after the file's stem, so the same weights saved
    under two names hash differently; saving to a buffer always uses the same record names, which keeps the
    sha256 a property of the weights alone.
    """
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def load_classifier(path: str | Path | None = None, device: str | torch.device = "cpu",
                    expected_sha256: str | None = CLASSIFIER_SHA256) -> MnistClassifier:
    """The classifier in eval mode, after checking that its weights file has the expected sha256.

    Without `path` this is the shipped classifier (cached per device). Other weights need an explicit path and
    `expected_sha256=None` (or their own hash): the check exists so that no score is silently computed with a
    different classifier.
    """
    if path is None and expected_sha256 == CLASSIFIER_SHA256:
        return _shipped_classifier(str(device))
    return _load(Path(path) if path is not None else WEIGHTS_PATH, torch.device(device), expected_sha256)


@lru_cache(maxsize=4)
def _shipped_classifier(device: str) -> MnistClassifier:
    return _load(WEIGHTS_PATH, torch.device(device), CLASSIFIER_SHA256)


def _load(path: Path, device: torch.device, expected_sha256: str | None) -> MnistClassifier:
    if not path.is_file():
        raise ConfigError(f"MNIST classifier weights not found at {path}; "
                          "reinstall ebm-bench or run `ebm-bench classifier train --out FILE`")
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise WeightsMismatchError(
                f"MNIST classifier weights {path} have sha256 {actual}, expected {expected_sha256}. "
                "Scores from other weights are not comparable with ebm-bench's. Fix: use the shipped weights "
                "(reinstall ebm-bench), or pass expected_sha256=None with an explicit path to use your own."
            )
    model = MnistClassifier()
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.to(device).eval()


# ----------------------------------------------------------------------------------------------------------------
# Inference


@torch.no_grad()
def classifier_log_probs(images: torch.Tensor, classifier: MnistClassifier | None = None,
                         batch_size: int = 1000) -> torch.Tensor:
    """log p(y|x) (N x 10, float64, on the CPU) for float images in [-1, 1]."""
    return _batched(images, classifier, batch_size, lambda model, x: F.log_softmax(model(x).double(), dim=1))


@torch.no_grad()
def classifier_features(images: torch.Tensor, classifier: MnistClassifier | None = None,
                        batch_size: int = 1000) -> torch.Tensor:
    """Penultimate features (N x 128, float64, on the CPU) for float images in [-1, 1]."""
    return _batched(images, classifier, batch_size, lambda model, x: model.features(x).double(), width=FEATURE_DIM)


@torch.no_grad()
def classifier_outputs(images: torch.Tensor, classifier: MnistClassifier | None = None,
                       batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """(log p(y|x), features) in one pass: what `classifier_log_probs` and `classifier_features` return, bit for
    bit, for half the cost of calling both (the head is one linear layer on the features)."""
    def both(model, x):
        features = model.features(x)
        return torch.cat([F.log_softmax(model.head(features).double(), dim=1), features.double()], dim=1)

    rows = _batched(images, classifier, batch_size, both, width=10 + FEATURE_DIM)
    return rows[:, :10], rows[:, 10:]


def _batched(images: torch.Tensor, classifier: MnistClassifier | None, batch_size: int, fn,
             width: int = 10) -> torch.Tensor:
    _check_images(images)
    model = classifier if classifier is not None else load_classifier()
    device = next(model.parameters()).device
    outputs = [fn(model, images[i:i + batch_size].to(device).float()).cpu()
               for i in range(0, len(images), batch_size)]
    return torch.cat(outputs) if outputs else torch.empty(0, width, dtype=torch.float64)


@torch.no_grad()
def accuracy(classifier: MnistClassifier, images: torch.Tensor, labels: torch.Tensor,
             batch_size: int = 1000) -> float:
    """Share of correctly classified images (0..1)."""
    predicted = classifier_log_probs(images, classifier, batch_size).argmax(dim=1)
    return (predicted == labels.cpu()).double().mean().item()


# ----------------------------------------------------------------------------------------------------------------
# Training


def train_classifier(data_root: str | Path, out_path: str | Path, epochs: int = DEFAULT_EPOCHS,
                     seed: int = DEFAULT_SEED, device: str | torch.device = "cpu", log=print,
                     train_images: int | None = None) -> dict:
    """Train the classifier on the MNIST training set (60k, 32 x 32), save it, return its test accuracy.

    Reproducible: the seed fixes the initialisation and the batch order (deterministic algorithms are switched on
    for CUDA). Bit-identical weights additionally need the same torch version, hardware kind and thread count
    (floating-point sums are not associative); elsewhere the accuracy is reproducible to within a few test images.
    `train_images` trains on the first N training images only (a quick check of the command; the shipped weights
    use all 60000).
    """
    from ebm_bench.datasets import to_unit_range
    from ebm_bench.datasets.mnist import load_mnist

    if epochs < 1:
        raise ConfigError(f"--epochs must be at least 1, got {epochs}")
    if train_images is not None and train_images < BATCH_SIZE:
        raise ConfigError(f"--train-images must be at least one batch ({BATCH_SIZE}), got {train_images}")
    device = torch.device(device)
    started = time.perf_counter()
    train = load_mnist(data_root, "train", image_size=INPUT_SIZE)
    test = load_mnist(data_root, "test", image_size=INPUT_SIZE)
    images, labels = train.images[:train_images], train.labels[:train_images]
    model = _fit(to_unit_range(images), labels, epochs, seed, device, log)
    model.eval()
    test_accuracy = accuracy(model, to_unit_range(test.images), test.labels)
    payload = state_dict_bytes(model)
    out_path = Path(out_path).expanduser()
    if out_path.is_dir():
        raise ConfigError(f"--out {out_path} is a directory; name the weights file, e.g. {out_path / 'classifier.pt'}")
    atomic_write_bytes(out_path, payload)
    return {
        "test_accuracy": test_accuracy,
        "sha256": hashlib.sha256(payload).hexdigest(),
        "path": str(out_path),
        "epochs": epochs,
        "seed": seed,
        "train_images": len(images),
        "device": str(device),
        "torch_version": torch.__version__,
        "num_threads": torch.get_num_threads(),
        "wall_seconds": time.perf_counter() - started,
    }


def _fit(images: torch.Tensor, labels: torch.Tensor, epochs: int, seed: int, device: torch.device,
         log) -> MnistClassifier:
    torch.manual_seed(seed)
    deterministic_before = torch.are_deterministic_algorithms_enabled()
    # CPU kernels are already run-to-run deterministic for a fixed thread count (checked: bit-identical weights),
    # and the deterministic-algorithms switch makes CPU training ~2.4x slower; CUDA needs it.
    torch.use_deterministic_algorithms(device.type == "cuda", warn_only=True)
    try:
        model = MnistClassifier().to(device).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
        steps_per_epoch = len(images) // BATCH_SIZE
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
        order_rng = torch.Generator().manual_seed(seed)
        for epoch in range(epochs):
            loss_sum = 0.0
            order = torch.randperm(len(images), generator=order_rng)
            for step in range(steps_per_epoch):
                index = order[step * BATCH_SIZE:(step + 1) * BATCH_SIZE]
                loss = F.cross_entropy(model(images[index].to(device)), labels[index].to(device))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                loss_sum += loss.item()
            log(f"epoch {epoch + 1}/{epochs}: mean training loss {loss_sum / steps_per_epoch:.4f}")
        return model
    finally:
        torch.use_deterministic_algorithms(deterministic_before)
