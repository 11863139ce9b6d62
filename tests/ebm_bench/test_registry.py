"""The four registries take plug-ins the same ways: decorators, --plugin files and entry points."""

from __future__ import annotations

import sys
from importlib.metadata import EntryPoint

import pytest

import ebm_bench.registry as registry_module
from ebm_bench.datasets import DATASETS
from ebm_bench.errors import ConfigError
from ebm_bench.methods import METHODS
from ebm_bench.metrics import METRICS
from ebm_bench.nets import NETS
from ebm_bench.registry import load_plugin

PLUGIN = '''
import dataclasses
import ebm_bench
from ebm_bench.nets.mlp import build_mlp


@ebm_bench.register_method("ep-method")
@dataclasses.dataclass
class EpMethod(ebm_bench.get_method("gan")):
    """A GAN under another name."""


@ebm_bench.register_dataset("ep-dataset", image_sizes=(32,), channels=1)
def load(root, image_size, batch_size, seed, holdout, device, download=True):
    """Nothing to load."""


@ebm_bench.register_net("ep-net")
def build(energy_model, image_shape, z_dim, mlp):
    """The paper's MLPs again."""
    return build_mlp(energy_model, image_shape, z_dim, mlp)


@ebm_bench.register_metric("ep-metric", "higher", "samples")
def metric(inputs):
    """A constant."""
    return 1.0
'''
REGISTRIES = {"method": METHODS, "dataset": DATASETS, "net": NETS, "metric": METRICS}


@pytest.fixture
def isolated(monkeypatch):
    """Each registry as it is now, restored after the test."""
    for registry in REGISTRIES.values():
        monkeypatch.setattr(registry, "_items", dict(registry._items))
        monkeypatch.setattr(registry, "_entry_points_loaded", False)
    return REGISTRIES


@pytest.mark.parametrize("kind", list(REGISTRIES))
def test_a_plugin_file_registers_in_every_registry(kind, isolated, tmp_path):
    path = tmp_path / f"plugin_{kind}.py"
    path.write_text(PLUGIN)
    load_plugin(path)
    assert f"ep-{kind}" in isolated[kind]


@pytest.mark.parametrize("kind", list(REGISTRIES))
def test_an_entry_point_module_registers_on_first_lookup(kind, isolated, tmp_path, monkeypatch):
    (tmp_path / f"ep_package_{kind}.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    group = f"ebm_bench.{kind}s"
    entry = EntryPoint(name=f"ep-{kind}", value=f"ep_package_{kind}", group=group)
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [entry] if group == entry.group else [])
    assert f"ep-{kind}" in isolated[kind].all()
    sys.modules.pop(f"ep_package_{kind}", None)


def test_a_broken_entry_point_names_itself(isolated, monkeypatch):
    entry = EntryPoint(name="broken", value="no_such_package_xyz:Thing", group="ebm_bench.metrics")
    monkeypatch.setattr(registry_module, "entry_points", lambda group: [entry] if group == entry.group else [])
    with pytest.raises(ConfigError, match="entry point 'broken'.*failed to load"):
        METRICS.all()


@pytest.mark.parametrize("text, message", [
    ("def oops(:\n", "syntax error at line 1"),
    ("raise RuntimeError('no GPU here')\n", "raised RuntimeError while loading: no GPU here"),
    ("import ebm_bench\nebm_bench.register_net('x')(42)\n", "must be a builder function"),
    ("import ebm_bench\nebm_bench.register_metric('x', 'up', 'samples')(len)\n", "direction must be"),
])
def test_a_broken_plugin_is_one_line_naming_the_file(text, message, isolated, tmp_path):
    path = tmp_path / "bad_plugin.py"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message) as error:
        load_plugin(path)
    assert "bad_plugin.py" in str(error.value) or message in str(error.value)


def test_unknown_names_list_the_known_ones():
    with pytest.raises(ConfigError, match="unknown dataset 'cifar'; known datasets: celeba, folder"):
        DATASETS.get("cifar")
    with pytest.raises(ConfigError, match="unknown architecture 'resnet'.*mlp"):
        NETS.get("resnet")
