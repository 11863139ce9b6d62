"""`sweep --executor ray --address`: an address that cannot be reached fails in one line within a minute (Ray's own
ray.init retries it for many minutes), and a reachable cluster is joined through the same path."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest

from ebm_bench import Budget, MLPConfig, RunConfig
from ebm_bench.cli import main
from ebm_bench.sweep import execute_ray, expand

ray = pytest.importorskip("ray")

SMALL = ["--steps", "2", "--batch-size", "16", "--size-g", "16", "--size-d", "16", "--holdout", "100", "--eval-n",
         "50", "--no-plots"]


def closed_port() -> int:
    with socket.socket() as sock:  # bound, then closed: nothing listens there now
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_an_address_at_a_closed_port_fails_at_once(tmp_path, capsys):
    address = f"127.0.0.1:{closed_port()}"
    began = time.monotonic()
    assert main(["sweep", "--methods", "ebgan", "--executor", "ray", "--address", address, *SMALL,
                 "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert time.monotonic() - began < 60 and not ray.is_initialized()
    assert f"the Ray cluster at --address {address} could not be reached" in err and len(err.splitlines()) == 1


@pytest.mark.slow
def test_an_address_that_never_answers_fails_within_the_deadline(tmp_path):
    """A port that accepts connections but is no Ray: ray.init would wait on it for many minutes. In a process of
    its own, since the abandoned connection attempt goes on in a thread until that process ends."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        address = f"127.0.0.1:{listener.getsockname()[1]}"
        script = ("import sys; import ebm_bench.sweep.executors as executors; executors.RAY_CONNECT_S = 5.0; "
                  "from ebm_bench.cli import main; sys.exit(main(sys.argv[1:]))")
        began = time.monotonic()
        done = subprocess.run([sys.executable, "-c", script, "sweep", "--methods", "ebgan", "--executor", "ray",
                               "--address", address, *SMALL, "--out", str(tmp_path)], capture_output=True,
                              text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert time.monotonic() - began < 60  # the process ended too: the connecting thread does not hold it
    assert f"the Ray cluster at --address {address} could not be reached: no answer within 5 s" in done.stderr
    assert "not the main thread" not in done.stderr  # Ray's warning about connecting from a thread is ours to hide


@pytest.mark.slow
def test_a_reachable_cluster_is_joined_by_its_address(mnist_root, tmp_path):
    from ray.cluster_utils import Cluster

    assert not ray.is_initialized()
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        base = RunConfig(budget=Budget("steps", 2), batch_size=16, mlp=MLPConfig(n_layer_g=2, size_g=16, size_d=16),
                         z_dim=8, holdout=64, data_root=str(mnist_root), out=str(tmp_path / "runs"), n_samples=4,
                         download=False, eval_n=0, metrics=["energy_auroc"])
        outcomes = execute_ray([[config] for config in expand(["ebgan"], [0], {}, base)], address=cluster.address)
        assert [o.status for o in outcomes] == ["finished"]
    finally:
        ray.shutdown()
        cluster.shutdown()
