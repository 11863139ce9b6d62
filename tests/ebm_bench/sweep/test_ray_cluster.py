"""A Ray sweep on a two-node cluster: each node trains in a temporary folder of its own, and every run's record
comes back under the driver's --out (checkpoints stay behind, or in --storage)."""

import json
from pathlib import Path

import pytest

from ebm_bench import Budget, MLPConfig, RunConfig
from ebm_bench.sweep import execute_ray, expand

pytestmark = pytest.mark.slow  # a Ray cluster of several nodes

ray = pytest.importorskip("ray")

RECORD = {"config.json", "manifest.json", "trajectory.csv", "samples.png", "result.json"}


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A head node and a second node, one CPU each, each with its own TMPDIR (where its workers make folders)."""
    from ray.cluster_utils import Cluster

    temp = {"head": tmp_path_factory.mktemp("head-tmp"), "node": tmp_path_factory.mktemp("node-tmp")}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "env_vars": {"TMPDIR": str(temp["head"])}})
    node = cluster.add_node(num_cpus=1, env_vars={"TMPDIR": str(temp["node"])})
    ray.init(address=cluster.address, include_dashboard=False, log_to_driver=False)
    try:
        yield {"head": cluster.head_node.node_id, "node": node.node_id}, temp
    finally:
        ray.shutdown()
        cluster.shutdown()


def configs(mnist_root, out: Path) -> list[list[RunConfig]]:
    base = RunConfig(budget=Budget("steps", 4), batch_size=16, mlp=MLPConfig(n_layer_g=2, size_g=32, size_d=32),
                     z_dim=8, holdout=64, data_root=str(mnist_root), out=str(out), log_every=2, checkpoint_every=2,
                     n_samples=4, download=False, eval_n=0, metrics=["energy_auroc"])
    return [[config] for config in expand(["ebgan"], [0, 1], {}, base)]  # two packs of one: one task per node


def records(out: Path) -> dict[str, dict[str, bytes]]:
    return {d.name: {p.name: p.read_bytes() for p in d.iterdir() if p.is_file()} for d in out.iterdir() if d.is_dir()}


def test_records_come_home_from_every_node_and_a_rerun_trains_nothing(mnist_root, tmp_path, cluster):
    nodes, temp = cluster
    out = tmp_path / "runs"
    outcomes = execute_ray(configs(mnist_root, out))
    assert sorted((o.config.seed, o.status) for o in outcomes) == [(0, "finished"), (1, "finished")]
    assert {o.node for o in outcomes} == set(nodes.values())  # one run trained on the second node
    for outcome in outcomes:
        where = "node" if outcome.node == nodes["node"] else "head"
        assert Path(outcome.trained_in).is_relative_to(temp[where])  # in that node's own temporary folder ...
        assert outcome.run_dir == str(out / outcome.run_id) and outcome.files is None
    assert not list(temp["node"].glob("ebm-bench-*")) and not list(temp["head"].glob("ebm-bench-*"))  # ... removed
    home = records(out)
    assert set(home) == {o.run_id for o in outcomes}
    for run_id, files in home.items():
        assert RECORD <= set(files) and "checkpoint.pt" not in files  # the checkpoint stayed on its worker
        result = json.loads(files["result.json"])
        assert result["status"] == "finished" and result["run_dir"] == str(out / run_id)
        assert json.loads(files["config.json"])["out"] == str(out)
        assert files["trajectory.csv"].decode().splitlines()[-1].startswith("4,")

    again = execute_ray(configs(mnist_root, out))  # every run ended under --out: nothing is submitted
    assert sorted(o.status for o in again) == ["finished", "finished"] and {o.node for o in again} == {None}
    assert records(out) == home


def test_storage_keeps_the_checkpoints_and_a_later_sweep_reuses_them(mnist_root, tmp_path, cluster):
    storage, out = tmp_path / "storage", tmp_path / "runs"
    outcomes = execute_ray(configs(mnist_root, out), storage=str(storage))
    assert sorted(o.status for o in outcomes) == ["finished", "finished"]
    for outcome in outcomes:
        assert outcome.trained_in == str(storage / outcome.run_id)
        assert (storage / outcome.run_id / "checkpoint.pt").is_file()
        assert RECORD <= {p.name for p in (out / outcome.run_id).iterdir()}
        assert not (out / outcome.run_id / "checkpoint.pt").exists()
    elsewhere = tmp_path / "elsewhere"  # a new --out: the ended runs in storage come back without training
    again = execute_ray(configs(mnist_root, elsewhere), storage=str(storage))
    assert {o.run_id: json.loads((elsewhere / o.run_id / "result.json").read_text())["wall_s"] for o in again} == {
        o.run_id: json.loads((out / o.run_id / "result.json").read_text())["wall_s"] for o in outcomes}
