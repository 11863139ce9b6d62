"""Plug-ins that break their contract fail in one line naming the item and what is wrong, never a traceback: at
registration where it can be known (a method without a loss, a name taken by another source), else at first use
(a dataset's or an architecture's return values, a metric's value). Each row writes a small plug-in file and
runs `ebm-bench` on it with tiny settings."""

from __future__ import annotations

import json

import pytest

from ebm_bench.cli import main
from ebm_bench.datasets import DATASETS
from ebm_bench.methods import METHODS
from ebm_bench.metrics import METRICS
from ebm_bench.nets import NETS

TINY = ["--steps", "2", "--batch-size", "16", "--size-g", "16", "--size-d", "16", "--holdout", "100",
        "--eval-n", "50", "--quiet"]

HEAD = "import abc\n\nimport numpy as np\nimport torch\nfrom torch import nn\n\nimport ebm_bench\n" \
       "from ebm_bench.datasets import TensorBatches\nfrom ebm_bench.nets.mlp import build_mlp\n\n\n"

NO_LOSS = '''@ebm_bench.register_method("bad-no-loss")
class NoLoss(ebm_bench.Method):
    energy_model = "classifier"

    def energy(self, images, out):
        return -out.logit

    def loss_d(self, real, fake):
        return real.energy.mean()
'''
ABSTRACT = '''class Base(ebm_bench.Method, abc.ABC):
    @abc.abstractmethod
    def loss_g(self, fake): ...


@ebm_bench.register_method("bad-abstract")
class Abstract(Base):
    energy_model = "classifier"

    def energy(self, images, out):
        return -out.logit

    def loss_d(self, real, fake):
        return real.energy.mean()
'''
METRIC_RAISES = '''@ebm_bench.register_metric("bad-raises", "higher", "samples")
def raises(inputs):
    return 1 / 0
'''
METRIC_WORD = '''@ebm_bench.register_metric("bad-word", "higher", "samples")
def word(inputs):
    return "sharp"
'''
DATASET_TUPLE = '''@ebm_bench.register_dataset("bad-tuple", image_sizes=(32,), channels=1)
def load(root, image_size, batch_size, seed, holdout, device, download=True):
    images = torch.zeros(64, 1, 32, 32)
    return images, torch.zeros(64)
'''
DATASET_NUMPY = '''@ebm_bench.register_dataset("bad-numpy", image_sizes=(32,), channels=1)
def load(root, image_size, batch_size, seed, holdout, device, download=True):
    images = torch.randint(0, 256, (256, 1, 32, 32), dtype=torch.uint8)
    return ebm_bench.TrainingData(batches=TensorBatches(images, batch_size, seed, device),
                                  holdout=np.zeros((16, 1, 32, 32), dtype=np.float32), image_shape=(1, 32, 32),
                                  n_train=256, sha256="none")
'''
NET_ONE = '''@ebm_bench.register_net("bad-one")
def build(energy_model, image_shape, z_dim, mlp):
    return nn.Sequential(nn.Linear(z_dim, 32 * 32), nn.Tanh())
'''
NET_TENSOR = '''class TensorD(nn.Module):
    def __init__(self):
        super().__init__()
        self.linear = nn.Linear(32 * 32, 1)

    def forward(self, images):
        return self.linear(images.flatten(1)).squeeze(1)


@ebm_bench.register_net("bad-tensor-d")
def build(energy_model, image_shape, z_dim, mlp):
    generator, _ = build_mlp(energy_model, image_shape, z_dim, mlp)
    return generator, TensorD()
'''
NET_SHAPE = '''class SmallG(nn.Module):
    def __init__(self, z_dim):
        super().__init__()
        self.linear = nn.Linear(z_dim, 28 * 28)

    def forward(self, z):
        return torch.tanh(self.linear(z)).view(-1, 1, 28, 28)


@ebm_bench.register_net("bad-shape")
def build(energy_model, image_shape, z_dim, mlp):
    _, discriminator = build_mlp(energy_model, image_shape, z_dim, mlp)
    return SmallG(z_dim), discriminator
'''
SHADOW_GAN = '''@ebm_bench.register_method("gan")
class Mine(ebm_bench.get_method("ebgan")):
    """An EBGAN under GAN's name."""
'''
SHARP = '''@ebm_bench.register_metric("sharp", "higher", "samples")
def sharp(inputs):
    return 1.0
'''

# name: (plug-in files' texts, argv after the --plugin flags, phrase the one line holds; {0}, {1}: the files)
ROWS = {
    "a method without loss_g": ([NO_LOSS], ["run", "--methods", "bad-no-loss"],
                                "method 'bad-no-loss' (NoLoss in {0}) does not define loss_g(fake)"),
    "a method whose loss_g is abstract": ([ABSTRACT], ["run", "--methods", "bad-abstract"],
                                          "method 'bad-abstract' (Abstract in {0}) does not define loss_g() "
                                          "(abstract)"),
    "a metric that raises": ([METRIC_RAISES], ["run", "--methods", "gan", "--metrics", "i_prime,bad-raises"],
                             "metric 'bad-raises' (raises in {0}) raised ZeroDivisionError: division by zero"),
    "a metric that returns a string": ([METRIC_WORD], ["run", "--methods", "gan", "--metrics", "bad-word"],
                                       "metric 'bad-word' (word in {0}) returned str 'sharp'; a metric returns one "
                                       "number"),
    "a dataset that returns a tuple": ([DATASET_TUPLE], ["run", "--methods", "gan", "--dataset", "bad-tuple"],
                                       "dataset 'bad-tuple' (load in {0}): its loader returned tuple, not "
                                       "TrainingData"),
    "a dataset whose holdout is an array": ([DATASET_NUMPY], ["run", "--methods", "gan", "--dataset", "bad-numpy"],
                                            "dataset 'bad-numpy' (load in {0}): its loader returned holdout as "
                                            "ndarray, not float images"),
    "an architecture that returns one network": ([NET_ONE], ["run", "--methods", "gan", "--arch", "bad-one"],
                                                 "architecture 'bad-one' (build in {0}): the builder returned "
                                                 "Sequential, not the pair (G, D)"),
    "an architecture whose D returns a tensor": ([NET_TENSOR], ["run", "--methods", "gan", "--arch",
                                                                "bad-tensor-d"],
                                                 "architecture 'bad-tensor-d' (build in {0}): D returned Tensor, "
                                                 "not an ebm_bench.DOutput"),
    "an architecture whose G draws other sizes": ([NET_SHAPE], ["run", "--methods", "gan", "--arch", "bad-shape"],
                                                  "G returned (2, 1, 28, 28) for 2 noise vectors, expected images "
                                                  "of shape (2, 1, 32, 32)"),
    "a plug-in that replaces a built-in": ([SHADOW_GAN], ["list"],
                                           "method 'gan' is registered twice: by GAN in "),
    "two plug-ins that register one metric": ([SHARP, SHARP], ["list"],
                                              "metric 'sharp' is registered twice: by sharp in {0} and by sharp "
                                              "in {1}; give one another name, or pass replace=True"),
}


@pytest.fixture(autouse=True)
def isolated_registries(monkeypatch):
    """What the plug-ins register (a metric that fails only when used) is gone after each test."""
    for registry in (METHODS, DATASETS, NETS, METRICS):
        monkeypatch.setattr(registry, "_items", dict(registry._items))


def write_plugins(tmp_path, texts: list[str]) -> list:
    paths = []
    for k, text in enumerate(texts):
        path = tmp_path / f"plugin{k}" / "bad_plugin.py"  # one file name: the sources differ by folder only
        path.parent.mkdir()
        path.write_text(HEAD + text)
        paths.append(path)
    return paths


@pytest.mark.parametrize("name", list(ROWS))
def test_a_broken_plugin_is_one_line_naming_it(name, tmp_path, mnist_root, capsys):
    texts, argv, phrase = ROWS[name]
    paths = write_plugins(tmp_path, texts)
    plugins = [arg for path in paths for arg in ("--plugin", str(path))]
    settings = [*TINY, "--data-root", str(mnist_root), "--out", str(tmp_path / "runs")] if argv[0] == "run" else []
    code = main([*argv, *plugins, *settings])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert phrase.format(*paths) in err, err


def test_the_same_plugin_file_twice_is_no_second_registration(tmp_path, capsys):
    path, = write_plugins(tmp_path, [SHARP])
    assert main(["list", "--plugin", str(path), "--plugin", str(path)]) == 0
    assert main(["list", "--plugin", str(path)]) == 0  # again in the same process
    assert "sharp" in capsys.readouterr().out


def test_replace_true_replaces_a_builtin_metric(tmp_path, mnist_root, capsys):
    path, = write_plugins(tmp_path, ['@ebm_bench.register_metric("fid_mnist", "lower", "samples", replace=True)\n'
                                     'def constant(inputs):\n    return 7.0\n'])
    assert main(["run", "--plugin", str(path), "--methods", "gan", "--metrics", "fid_mnist", "--json", *TINY,
                 "--data-root", str(mnist_root), "--out", str(tmp_path / "runs")]) == 0
    assert json.loads(capsys.readouterr().out)[0]["evaluation"]["fid_mnist"] == 7.0
