"""Executors: where a sweep's runs train. In this process, in N local processes, or on a Ray cluster.

Each run is keyed by the hash of its resolved config (its run folder name), so a sweep is idempotent: running it
again skips finished runs, resumes interrupted ones from their last checkpoint, and a diverged run stays recorded
as diverged. A run that raises is recorded as failed and the others go on.

The unit of work is a pack: runs that train together (ebm_bench.pack); a pack of one trains solo. On Ray a pack
trains on its worker, in a temporary folder of that node (or in --storage, a filesystem every node mounts), and
its runs' records (every file but the checkpoint) come back to the driver, which writes them under --out.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from rich.console import Console

from ebm_bench.config import RunConfig
from ebm_bench.errors import ConfigError
from ebm_bench.files import CHECKPOINT, CONFIG, LOCK, RESULT, atomic_write_bytes, write_json
from ebm_bench.runs import RunLocked, existing_result, run_lock, train_one, train_pack
from ebm_bench.summary import PlainProgress
from ebm_bench.train import RunResult, prepare


@dataclass
class Outcome:
    """What the sweep knows of one run after executing it."""

    config: RunConfig
    status: str  # finished / diverged / failed / locked (another process is writing it)
    run_id: str | None = None
    run_dir: str | None = None
    error: str | None = None
    node: str | None = None  # the Ray node that trained it (None: this machine)
    trained_in: str | None = None  # its folder on that node: a temporary one (removed since), or in --storage
    files: dict[str, bytes] | None = None  # its record on the way from a Ray worker; None once written home


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


def run_pack_safely(configs: list[RunConfig]) -> list[Outcome]:
    """Train one pack (ebm_bench.pack; a pack of one trains alone); one outcome per config, in order. An
    exception fails the pack's unfinished runs, and the sweep goes on."""
    if len(configs) == 1:
        return [run_safely(configs[0])]
    console = Console(stderr=True)

    def progress(i):
        plain = PlainProgress(console)
        return plain.on_log, plain.on_start
    try:
        results = train_pack(list(configs), progress=progress)
    except Exception as err:  # noqa: BLE001 (one broken pack must not stop the sweep)
        error = f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=3)}"
        return [Outcome(config, "failed", error=error) for config in configs]
    return [Outcome(config, "locked", r.run_id, error=str(r)) if isinstance(r, RunLocked)
            else Outcome(config, r.status, r.run_id, r.run_dir) for config, r in zip(configs, results)]


PARENT_POLL_S = 1.0


def _worker_init(threads: int) -> None:
    import threading

    import torch

    torch.set_num_threads(threads)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A sweep killed outright (kill -9, a lost terminal) leaves its pool workers orphaned, training on and holding
    their runs' locks, so a restarted sweep would skip those runs as 'being written'. A worker ends when its parent
    does: its runs are resumable from their last checkpoint, as after any kill."""
    import time

    while os.getppid() == parent:
        time.sleep(PARENT_POLL_S)
    os._exit(1)


def execute_local(packs: Sequence[Sequence[RunConfig]], workers: int = 1,
                  on_done: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Sequentially in this process, or in `workers` processes sharing the CPU cores between them."""
    outcomes: list[Outcome] = []

    def record(pack_outcomes: list[Outcome]) -> None:
        for outcome in pack_outcomes:
            outcomes.append(outcome)
            if on_done:
                on_done(outcome)

    if workers <= 1:
        for pack in packs:
            record(run_pack_safely(list(pack)))
        return outcomes
    threads = max(1, (os.cpu_count() or 1) // workers)
    import multiprocessing

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
                             initargs=(threads,)) as pool:
        futures = [pool.submit(run_pack_safely, list(pack)) for pack in packs]
        for future in as_completed(futures):
            record(future.result())
    return outcomes


# -- Ray ---------------------------------------------------------------------------------------------------------
def _record_files(run_dir: Path) -> dict[str, bytes]:
    """A run folder's record: every file but the checkpoint (large; it stays where the run trained), the lock and
    an atomic write's leftover."""
    return {str(path.relative_to(run_dir)): path.read_bytes() for path in sorted(run_dir.rglob("*"))
            if path.is_file() and path.name not in (CHECKPOINT, LOCK) and not path.name.endswith(".tmp")}


def _train_away(configs: list[RunConfig], storage: str | None) -> list[Outcome]:
    """A Ray task: train a pack in --storage, or else in a temporary folder of this node, and return its records.

    The outcomes keep the driver's configs (their --out): the run id does not depend on `out`."""
    import ray

    scratch = None if storage else tempfile.mkdtemp(prefix="ebm-bench-")  # under this node's TMPDIR
    try:
        outcomes = run_pack_safely([dataclasses.replace(c, out=storage or scratch) for c in configs])
        node = ray.get_runtime_context().get_node_id()
        for outcome, config in zip(outcomes, configs):
            outcome.config, outcome.node, outcome.trained_in = config, node, outcome.run_dir
            if outcome.run_dir:
                outcome.files = _record_files(Path(outcome.run_dir))
        return outcomes
    finally:
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)


def _ended(run_dir: Path) -> RunResult | None:
    try:
        return existing_result(run_dir)
    except ConfigError:  # a corrupt result.json: the run trains again and its new record replaces it
        return None


def _ended_at_home(config: RunConfig, names: set[str]) -> RunResult | None:
    """The ended record of `config` under its --out. Its folder name hashes the resolved config, which only
    `prepare` gives (it loads the data), so only runs whose method and seed have a folder there are prepared."""
    if not any(name.startswith(f"{config.method}-{config.dataset}-seed{config.seed}-") for name in names):
        return None
    try:
        run_id = prepare(dataclasses.replace(config, download=False)).run_id  # never a download just for an id
    except Exception:  # noqa: BLE001 (no data or no GPU on the driver: the task decides, see _bring_home)
        return None
    return _ended(Path(config.out) / run_id)


def _bring_home(outcome: Outcome) -> Outcome:
    """Write a record that came back from a worker under its --out, result.json last (it says the run ended)."""
    files = outcome.files
    if files is None or outcome.run_id is None:
        return outcome
    home = Path(outcome.config.out) / outcome.run_id
    outcome = dataclasses.replace(outcome, run_dir=str(home), files=None)
    try:
        with run_lock(home, outcome.run_id):
            if (stored := _ended(home)) is not None:  # ended here meanwhile, or the driver could not tell: kept
                return dataclasses.replace(outcome, status=stored.status)
            for name in sorted(files, key=lambda name: name == RESULT):
                data = files[name]
                if name in (CONFIG, RESULT):  # they name the worker's folder; the record lives here now
                    fix = {"out": outcome.config.out} if name == CONFIG else {"run_dir": str(home)}
                    write_json(home / name, json.loads(data) | fix)
                else:
                    atomic_write_bytes(home / name, data)
    except RunLocked as err:  # a process here is writing the same run: its record will do
        return dataclasses.replace(outcome, status="locked", error=str(err))
    return outcome


def execute_ray(packs: Sequence[Sequence[RunConfig]], address: str | None = None, cpus_per_run: float = 1.0,
                gpus_per_run: float = 0.0, on_done: Callable[[Outcome], None] | None = None,
                local_mode: bool = False, storage: str | None = None) -> list[Outcome]:
    """One Ray task per pack (asking for the resources of one run) on an existing cluster (`address`) or a local
    one. Runs already ended under --out are skipped here: a worker cannot see --out.

    Fractional `gpus_per_run` lets several small MNIST runs share a GPU. The cluster's GPUs are checked first: a
    Ray task asking for a GPU the cluster does not have waits forever. `storage`: where the workers train, on a
    filesystem every node mounts at that path, so that a task retried after a lost node resumes from its
    checkpoint; without it each task trains in a temporary folder of its node.
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
    # The device named: a run id hashes it, and the driver, which resolves ids to skip ended runs, is no worker
    # (a Ray task that asks for no GPU sees none).
    packs = [[dataclasses.replace(c, device="cuda" if gpus_per_run > 0 else "cpu" if c.device == "auto"
                                  else c.device) for c in pack] for pack in packs]
    outcomes: list[Outcome] = []

    def record(outcome: Outcome) -> None:
        outcomes.append(outcome)
        if on_done:
            on_done(outcome)

    homes = {out: {p.parent.name for p in Path(out).glob(f"*/{RESULT}")} for out in {c.out for p in packs for c in p}}
    todo = []
    for pack in packs:
        left = []
        for config in pack:
            if (stored := _ended_at_home(config, homes[config.out])) is not None:
                record(Outcome(config, stored.status, stored.run_id, str(Path(config.out) / stored.run_id)))
            else:
                left.append(config)
        if left:
            todo.append(left)
    remote = ray.remote(num_cpus=cpus_per_run, num_gpus=gpus_per_run)(_train_away)
    storage = os.path.abspath(storage) if storage else None  # the workers' working folder is not this one
    pending = {remote.remote(pack, storage): pack for pack in todo}
    while pending:
        done, _ = ray.wait(list(pending), num_returns=1)
        for ref in done:
            pack = pending.pop(ref)
            try:
                pack_outcomes = ray.get(ref)
            except Exception as err:  # noqa: BLE001 (a lost worker fails its pack; the others go on)
                pack_outcomes = [Outcome(config, "failed", error=f"{type(err).__name__}: {err}") for config in pack]
            for outcome in pack_outcomes:
                record(_bring_home(outcome))
    return outcomes
