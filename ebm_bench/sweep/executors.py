"""Executors: where a sweep's runs train. In this process, in N local processes, or on a Ray cluster.

Each run is keyed by the hash of its resolved config (its run folder name), so a sweep is idempotent: running it
again skips finished runs, resumes interrupted ones from their last checkpoint, and a diverged run stays recorded
as diverged. A run that raises is recorded as failed and the others go on.
"""

from __future__ import annotations

import dataclasses
import os
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from typing import Callable, Sequence

from rich.console import Console

from ebm_bench.config import RunConfig
from ebm_bench.errors import ConfigError
from ebm_bench.runs import RunLocked, train_one
from ebm_bench.summary import PlainProgress


@dataclass
class Outcome:
    """What the sweep knows of one run after executing it."""

    config: RunConfig
    status: str  # finished / diverged / failed / locked (another process is writing it)
    run_id: str | None = None
    run_dir: str | None = None
    error: str | None = None


def run_safely(config: RunConfig) -> Outcome:
    """Train one run; an exception becomes a `failed` outcome so the sweep goes on."""
    progress = PlainProgress(Console(stderr=True))  # a sweep's log file shows each run's progress too
    try:
        result = train_one(config, on_log=progress.on_log, on_start=progress.on_start)
        return Outcome(config, result.status, result.run_id, result.run_dir)
    except RunLocked as err:  # another live process is writing it: its run, not a failure of this sweep
        return Outcome(config, "locked", err.run_id, error=str(err))
    except Exception as err:  # noqa: BLE001 (one broken run must not stop the sweep)
        return Outcome(config, "failed", error=f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=3)}")


def _worker_init(threads: int) -> None:
    import torch

    torch.set_num_threads(threads)


def execute_local(configs: Sequence[RunConfig], workers: int = 1,
                  on_done: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Sequentially in this process, or in `workers` processes sharing the CPU cores between them."""
    outcomes = []
    if workers <= 1:
        for config in configs:
            outcomes.append(run_safely(config))
            if on_done:
                on_done(outcomes[-1])
        return outcomes
    threads = max(1, (os.cpu_count() or 1) // workers)
    import multiprocessing

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
                             initargs=(threads,)) as pool:
        futures = [pool.submit(run_safely, config) for config in configs]
        for future in as_completed(futures):
            outcomes.append(future.result())
            if on_done:
                on_done(outcomes[-1])
    return outcomes


def execute_ray(configs: Sequence[RunConfig], address: str | None = None, cpus_per_run: float = 1.0,
                gpus_per_run: float = 0.0, on_done: Callable[[Outcome], None] | None = None,
                local_mode: bool = False) -> list[Outcome]:
    """One Ray task per run on an existing cluster (`address`) or a local one.

    Fractional `gpus_per_run` lets several small MNIST runs share a GPU. The cluster's GPUs are checked first: a
    Ray task asking for a GPU the cluster does not have waits forever.
    """
    try:
        import ray
    except ImportError:
        raise ConfigError('the Ray executor needs Ray: pip install "ebm-bench[ray]"') from None
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 **({"num_cpus": max(1, int(cpus_per_run))} if local_mode else {}))
    available_gpus = ray.cluster_resources().get("GPU", 0)
    if gpus_per_run > 0 and available_gpus < gpus_per_run:
        raise ConfigError(f"--gpus-per-run {gpus_per_run} asked for, but the Ray cluster has {available_gpus:g} "
                          "GPUs; its tasks would wait forever. Use --gpus-per-run 0 or a cluster with GPUs.")
    if gpus_per_run > 0:
        configs = [dataclasses.replace(c, device="cuda") for c in configs]
    remote = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run)(run_safely)
    pending = {remote.remote(config): config for config in configs}
    outcomes = []
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            config = pending.pop(ref)
            try:
                outcome = ray.get(ref)
            except Exception as err:  # noqa: BLE001 (a lost worker is one failed run)
                outcome = Outcome(config, "failed", error=f"{type(err).__name__}: {err}")
            outcomes.append(outcome)
            if on_done:
                on_done(outcome)
    return outcomes
