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


# -- a name registered twice --------------------------------------------------------------------------------------
SECOND = {  # registers a built-in name of each kind again (replace: what the registration passes)
    "method": 'import ebm_bench\n\n\n@ebm_bench.register_method("gan"{replace})\nclass Mine(ebm_bench.get_method('
              '"ebgan")):\n    """Another GAN."""\n',
    "dataset": 'import ebm_bench\n\n\n@ebm_bench.register_dataset("mnist", image_sizes=(32,), channels=1{replace})\n'
               'def load(root, image_size, batch_size, seed, holdout, device, download=True):\n    """Mine."""\n',
    "net": 'import ebm_bench\nfrom ebm_bench.nets.mlp import build_mlp\n\n\n@ebm_bench.register_net("mlp"{replace})\n'
           'def build(energy_model, image_shape, z_dim, mlp):\n    """Mine."""\n'
           '    return build_mlp(energy_model, image_shape, z_dim, mlp)\n',
    "metric": 'import ebm_bench\n\n\n@ebm_bench.register_metric("fid", "lower", "samples"{replace})\n'
              'def fid(inputs):\n    """Mine."""\n    return 0.0\n',
}
BUILTIN = {"method": "gan", "dataset": "mnist", "net": "mlp", "metric": "fid"}


@pytest.mark.parametrize("kind", list(REGISTRIES))
def test_a_plugin_replacing_a_builtin_needs_replace_true(kind, isolated, tmp_path):
    name, registry = BUILTIN[kind], isolated[kind]
    builtin = registry[name]
    path = tmp_path / f"shadow_{kind}.py"
    path.write_text(SECOND[kind].format(replace=""))
    with pytest.raises(ConfigError) as error:
        load_plugin(path)
    message = str(error.value)
    label = "architecture" if kind == "net" else kind
    assert message.startswith(f"{label} {name!r} is registered twice: by ")
    assert str(path) in message and "replace=True" in message and "\n" not in message
    assert registry[name] is builtin  # untouched
    path.write_text(SECOND[kind].format(replace=", replace=True"))
    load_plugin(path)
    assert registry[name] is not builtin and str(path) in registry_module.describe(
        registry_module.source(registry._origin(registry[name])))


def test_the_same_plugin_file_loaded_twice_replaces_its_own_entries(isolated, tmp_path):
    path = tmp_path / "twice.py"
    path.write_text(PLUGIN)
    load_plugin(path)
    first = {kind: registry[f"ep-{kind}"] for kind, registry in isolated.items()}
    load_plugin(path)  # `ebm-bench run --plugin twice.py` then `list --plugin twice.py` in one process
    assert all(isolated[kind][f"ep-{kind}"] is not first[kind] for kind in isolated)  # the newer definitions


def test_a_file_executed_under_a_second_module_name_is_the_same_source(isolated, tmp_path):
    """A test module run again by importlib under another name (tests/ebm_bench/test_quality.py does this)."""
    import importlib.util

    path = tmp_path / "shared_module.py"
    path.write_text(PLUGIN)
    for module_name in ("first_name", "second_name"):
        spec = importlib.util.spec_from_file_location(module_name, path)
        spec.loader.exec_module(importlib.util.module_from_spec(spec))  # not in sys.modules
    assert "ep-method" in isolated["method"]


def test_two_files_registering_one_metric_name_are_refused_naming_both(isolated, tmp_path):
    first, second = tmp_path / "a" / "sharp.py", tmp_path / "b" / "sharp.py"
    for path in (first, second):
        path.parent.mkdir()
        path.write_text(SECOND["metric"].replace('"fid"', '"sharp"').format(replace=""))
    load_plugin(first)
    with pytest.raises(ConfigError, match="metric 'sharp' is registered twice") as error:
        load_plugin(second)
    assert f"fid in {first}" in str(error.value) and f"fid in {second}" in str(error.value)


def test_what_counts_as_the_same_definition():
    same = registry_module.same_source
    # a notebook cell run again, edited or not (its file name changes with the cell's text)
    assert same(("__main__", "/tmp/ipykernel_1/a.py", "LSGAN"), ("__main__", "/tmp/ipykernel_1/b.py", "LSGAN"))
    assert not same(("__main__", None, "LSGAN"), ("__main__", None, "Other"))
    assert same(("a", "/x/a.py", "f"), ("b", "/x/a.py", "f"))  # one file under two module names
    assert not same(("p", "/x/sharp.py", "f"), ("p", "/y/sharp.py", "f"))  # two plug-in files of one name
    assert same(("m", None, "f"), ("m", None, "f")) and not same(("m", None, "f"), ("n", None, "f"))


def test_an_entry_point_already_registered_by_its_module_is_not_a_second_registration(isolated, tmp_path,
                                                                                      monkeypatch):
    """Two entry points naming one module: loading the first registers both names through the decorators."""
    (tmp_path / "ep_two_names.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    entries = [EntryPoint(name=name, value="ep_two_names", group="ebm_bench.metrics") for name in ("ep-metric", "x")]
    monkeypatch.setattr(registry_module, "entry_points", lambda group: entries if group == "ebm_bench.metrics" else [])
    assert "ep-metric" in isolated["metric"].all()
    sys.modules.pop("ep_two_names", None)
