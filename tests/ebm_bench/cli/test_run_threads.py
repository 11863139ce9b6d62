"""`--threads N|auto`: torch threads of each training process, recorded in the manifest, not in the run's identity."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import torch

from ebm_bench.cli import main
from ebm_bench.sweep import thread_count

SMALL = ["--steps", "2", "--batch-size", "16", "--size-g", "16", "--size-d", "16", "--holdout", "100", "--eval-n",
         "50", "--no-download"]


@pytest.fixture
def restore_threads():
    """`run` sets this process's torch threads: the tests after this one get theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_threads_reach_the_manifest_and_leave_the_run_id_alone(mnist_root, tmp_path, capsys, restore_threads):
    argv = ["run", "--methods", "gan", *SMALL, "--data-root", str(mnist_root), "--out", str(tmp_path), "--json",
            "--quiet"]
    assert main([*argv, "--threads", "3"]) == 0
    (first,) = json.loads(capsys.readouterr().out)
    assert json.loads((Path(first["run_dir"]) / "manifest.json").read_text())["torch_threads"] == 3
    assert main([*argv, "--threads", "1"]) == 0
    (again,) = json.loads(capsys.readouterr().out)
    assert again["run_id"] == first["run_id"] and again["wall_s"] == first["wall_s"]  # the same run: not trained again
    assert torch.get_num_threads() == 1


def test_auto_shares_this_process_cpus_between_its_workers(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(12)), raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert [thread_count("auto", workers) for workers in (1, 2, 5, 24)] == [8, 6, 2, 1]  # at most 8, at least 1
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # someone's choice for this machine: a cap
    assert [thread_count("auto", 1), thread_count("auto", 12), thread_count("4", 12)] == [2, 1, 4]


@pytest.mark.slow
def test_worker_processes_train_with_the_threads_given(mnist_root, tmp_path):
    assert main(["sweep", "--methods", "gan", "--seeds", "0,1", "--workers", "2", "--threads", "3", *SMALL,
                 "--data-root", str(mnist_root), "--out", str(tmp_path), "--no-plots", "--pack", "1"]) == 0
    manifests = [json.loads(path.read_text()) for path in tmp_path.glob("*/manifest.json")]
    assert [m["torch_threads"] for m in manifests] == [3, 3]
