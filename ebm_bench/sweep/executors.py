"""Executors: where runs train, for `ebm-bench run`, `ebm-bench sweep` and the API alike (`execute`). In this
process, in N local processes, or on a Ray cluster.

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
import logging
import math
import os
import shutil
import socket
import tempfile
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, as_completed, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from rich.console import Console

from ebm_bench.config import RunConfig
from ebm_bench.errors import ConfigError
from ebm_bench.files import atomic_write_bytes, read_json, write_json
from ebm_bench.record import CHECKPOINT, CONFIG, LOCK, RESULT, run_lock, RunLocked
from ebm_bench.runs import existing_result, train_one, train_pack
from ebm_bench.train import RunResult, prepare

from .cost import Left, PackWork
from .progress import MAX_AUTO_THREADS, RunLines, thread_count, use_threads


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
    result: RunResult | None = None  # what it recorded, where it ended (finished or diverged)


class Progress:
    """What a caller hears of its runs: callbacks for a run while it trains in this process (`run_callbacks`; by
    default each run's lines for a log file on stderr) and each outcome as its pack ends (`done`). Runs that train in
    other processes or on Ray report there, in their own lines."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self._lines: dict[int, RunLines] = {}

    def run_callbacks(self, config: RunConfig) -> tuple[Callable[[dict], None] | None, Callable | None]:
        lines = self._lines.setdefault(id(config), RunLines(self.console, config))
        return lines.on_log, lines.on_start

    def ended(self, config: RunConfig, result: RunResult) -> None:
        """A run trained here has ended and been evaluated (before its pack's outcomes are `done`)."""
        if (lines := self._lines.pop(id(config), None)) is not None:
            lines.ended(result)

    def done(self, outcome: Outcome) -> None:
        pass


def run_pack_safely(configs: list[RunConfig], progress: Progress | None = None, raise_errors: bool = False,
                    restart: bool = False) -> list[Outcome]:
    """Train one pack (ebm_bench.pack; a pack of one trains alone); one outcome per config, in order. An
    exception fails the pack's unfinished runs, and the sweep goes on; with `raise_errors` (`ebm-bench run`, the
    API) it propagates instead: a user's mistake as its one line, anything else as the bug it is."""
    progress = progress or Progress()
    try:
        if len(configs) == 1:
            on_log, on_start = progress.run_callbacks(configs[0])
            results: list = [train_one(configs[0], restart, on_log=on_log, on_start=on_start)]
        else:
            results = train_pack(list(configs), restart, progress=lambda i: progress.run_callbacks(configs[i]))
    except RunLocked as err:  # another live process is writing it: its run, not a failure of this sweep
        return [Outcome(configs[0], "locked", err.run_id, error=str(err))]
    except Exception as err:  # noqa: BLE001 (one broken pack must not stop the sweep)
        if raise_errors:
            raise
        error = f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=3)}"
        return [Outcome(config, "failed", error=error) for config in configs]
    for config, result in zip(configs, results):
        if not isinstance(result, RunLocked):
            progress.ended(config, result)
    return [Outcome(config, "locked", r.run_id, error=str(r)) if isinstance(r, RunLocked)
            else Outcome(config, r.status, r.run_id, r.run_dir, result=r) for config, r in zip(configs, results)]


def run_safely(config: RunConfig) -> Outcome:
    """Train one run; an exception becomes a `failed` outcome so the sweep goes on."""
    return run_pack_safely([config])[0]


@dataclass
class Local:
    """Train in this process (`workers` 1) or in `workers` local processes sharing the CPU cores (or one GPU)."""

    workers: int = 1
    threads: int | None = None  # torch threads per process (None: this process keeps its own; see thread_count)
    restart: bool = False  # runs start over (`ebm-bench run --restart`): their folders are cleared first


@dataclass
class Ray:
    """One Ray task per pack, on a cluster (`address`) or a local Ray (see `execute_ray`)."""

    address: str | None = None
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0
    storage: str | None = None
    threads: int | None = None


def execute(packs: Sequence[Sequence[RunConfig]], executor: Local | Ray | None = None,
            progress: Progress | None = None, raise_errors: bool = False) -> list[Outcome]:
    """The one way runs train: each pack (a list of configs, `ebm_bench.pack.plan_packs`) on `executor` (default:
    in this process), `progress` hearing of each run; one outcome per run, in the order the packs end. A run that
    ended before is returned as recorded; one another process is writing is `locked`; one that raises is `failed`
    and the others go on, unless `raise_errors` (the error then stops everything: a user's mistake in one line)."""
    executor, progress = executor or Local(), progress or Progress()
    if isinstance(executor, Ray):
        return execute_ray(packs, executor.address, executor.cpus_per_run, executor.gpus_per_run,
                           on_done=progress.done, storage=executor.storage, threads=executor.threads)
    return execute_local(packs, executor.workers, on_done=progress.done, threads=executor.threads,
                         progress=progress, raise_errors=raise_errors, restart=executor.restart)


PARENT_POLL_S = 1.0


def _worker_init(threads: int) -> None:
    use_threads(threads)
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
                  on_done: Callable[[Outcome], None] | None = None, threads: int | None = None,
                  progress: Progress | None = None, raise_errors: bool = False, restart: bool = False
                  ) -> list[Outcome]:
    """Sequentially in this process, or in `workers` processes sharing the CPU cores between them. `threads`:
    torch threads of each (None: this process keeps its own; workers share the CPUs, see `thread_count`)."""
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1 (1: train in this process), got {workers}")
    outcomes: list[Outcome] = []

    def record(pack_outcomes: list[Outcome]) -> None:
        for outcome in pack_outcomes:
            outcomes.append(outcome)
            if on_done:
                on_done(outcome)

    if workers == 1:
        use_threads(threads)
        for pack in packs:
            record(run_pack_safely(list(pack), progress, raise_errors, restart))
        return outcomes
    threads = threads or thread_count("auto", workers)
    import multiprocessing

    with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
                             initargs=(threads,)) as pool:
        futures = [pool.submit(run_pack_safely, list(pack), None, raise_errors, restart) for pack in packs]
        for future in as_completed(futures):
            record(future.result())
    return outcomes


# -- in a time limit (sweep --time-limit) ---------------------------------------------------------------------
def pack_works(packs: Sequence[Sequence[RunConfig]]) -> list[PackWork]:
    """Each pack and what is left of it under --out: runs that ended, and the others with the step each resumes
    from (a run never started: 0)."""
    names = {out: {p.name for p in Path(out).iterdir()} if Path(out).is_dir() else set()
             for out in {c.out for pack in packs for c in pack}}
    works = []
    for pack in packs:
        work = PackWork(list(pack))
        for config in pack:
            state = _progress(config, _home(config, names[config.out]))
            if isinstance(state, RunResult):
                work.ended.append((config, state))
            else:
                work.left.append(state)
        works.append(work)
    return works


def _progress(config: RunConfig, home: Path | None) -> RunResult | Left:
    """A run's ended record, or where it would resume: its last checkpoint's step, which the record of its last
    trajectory row (result.json, status running) bounds: checkpoints come every checkpoint_every steps."""
    if home is None:
        return Left(config)
    if (ended := _ended(home)) is not None:
        return ended
    try:
        stored = read_json(home / RESULT)
        steps, wall = int(stored["steps"]), float(stored["wall_s"])
    except (OSError, ValueError, KeyError, TypeError):  # none yet, or unreadable: the trainer will say which
        return Left(config)
    if not (home / CHECKPOINT).exists() or steps <= 0:
        return Left(config)
    at = steps // config.checkpoint_every * config.checkpoint_every
    return Left(config, at, wall * at / steps)


_LOADED: set[tuple] = set()  # the datasets this worker process has loaded


def _timed_pack(configs: list[RunConfig]) -> tuple[list[Outcome], float]:
    """A pack trained in a worker process, and the seconds it took there. A worker loads its dataset before its
    first pack, untimed, as the sweep's own process does: what the time measures is how much the workers slow
    each other down (`Window.slowdown`), not a worker's start."""
    first = configs[0]
    if (key := (first.dataset, first.data_root, first.device, first.image_size)) not in _LOADED:
        _LOADED.add(key)
        try:
            prepare(first)
        except Exception:  # noqa: BLE001 (the pack itself fails the same way, and is recorded)
            pass
    began = time.perf_counter()
    outcomes = run_pack_safely(configs)
    return outcomes, time.perf_counter() - began


@dataclass
class Window:
    """What a sweep did inside its time limit."""

    outcomes: list[Outcome] = field(default_factory=list)
    ran: list[tuple[PackWork, float, float]] = field(default_factory=list)  # (pack, predicted s alone, took s)
    left: list[PackWork] = field(default_factory=list)  # packs with work left that did not start
    slowdown: float = 1.0  # what predictions were multiplied by at the end (several workers share the device)


def execute_window(works: Sequence[PackWork], deadline: float, margin_s: float, workers: int = 1,
                   slowdown: float = 1.0, on_done: Callable[[Outcome], None] | None = None,
                   threads: int | None = None, clock: Callable[[], float] = time.time) -> Window:
    """Train, in the sweep's order, each pack predicted (`PackWork.predicted_s` x `slowdown`) to end `margin_s`
    before `deadline`; a pack that does not fit is passed over for a later, shorter one. A pack that overruns its
    prediction is let finish: a pack cannot be stopped between checkpoints without losing what it trained, so the
    limit is kept by never starting what would not end. Untimed packs (predicted None) do not start.

    With `workers` processes sharing the device a pack takes longer than its calibration alone: `slowdown` says
    how much, and is measured again from the packs that finish (never below 1)."""
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1 (1: train in this process), got {workers}")
    window = Window(slowdown=slowdown)
    queue = [work for work in works if work.left]
    usable = deadline - margin_s

    def record(outcome: Outcome) -> None:
        window.outcomes.append(outcome)
        if on_done:
            on_done(outcome)

    def stored(work: PackWork) -> None:
        for config, result in work.ended:
            record(Outcome(config, result.status, result.run_id, result.run_dir))

    def next_pack() -> PackWork | None:
        now = clock()
        for work in queue:
            if work.predicted_s is not None and now + work.predicted_s * window.slowdown <= usable:
                queue.remove(work)
                return work
        return None

    def ended(work: PackWork, took: float, outcomes: list[Outcome]) -> None:
        for outcome in outcomes:
            record(outcome)
        window.ran.append((work, work.predicted_s or 0.0, took))
        predicted = sum(p for _, p, _ in window.ran)
        if workers > 1 and predicted > 0:
            window.slowdown = max(1.0, sum(t for _, _, t in window.ran) / predicted)

    for work in works:
        if not work.left:
            stored(work)
    if workers == 1:
        use_threads(threads)
        while (work := next_pack()) is not None:
            began = clock()
            outcomes = run_pack_safely(work.pack)
            ended(work, clock() - began, outcomes)
    elif queue:
        import multiprocessing

        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"), initializer=_worker_init,
                                 initargs=(threads or thread_count("auto", workers),)) as pool:
            running: dict = {}
            while True:
                while len(running) < workers and (work := next_pack()) is not None:
                    running[pool.submit(_timed_pack, list(work.pack))] = work
                if not running:
                    break
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    outcomes, took = future.result()
                    ended(running.pop(future), took, outcomes)
    window.left = queue
    for work in queue:  # its finished runs are done all the same
        stored(work)
    return window


# -- Ray ---------------------------------------------------------------------------------------------------------
def _record_files(run_dir: Path) -> dict[str, bytes]:
    """A run folder's record: every file but the checkpoint (large; it stays where the run trained), the lock and
    an atomic write's leftover."""
    return {str(path.relative_to(run_dir)): path.read_bytes() for path in sorted(run_dir.rglob("*"))
            if path.is_file() and path.name not in (CHECKPOINT, LOCK) and not path.name.endswith(".tmp")}


def _train_away(configs: list[RunConfig], storage: str | None, threads: int | None = None) -> list[Outcome]:
    """A Ray task: train a pack in --storage, or else in a temporary folder of this node, and return its records.

    The outcomes keep the driver's configs (their --out): the run id does not depend on `out`."""
    import ray

    use_threads(threads)
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


def _home(config: RunConfig, names: set[str]) -> Path | None:
    """The folder of `config` under its --out, when it has one. Its name hashes the resolved config, which only
    `prepare` gives (it loads the data), so only runs whose method and seed have a folder there are prepared."""
    if not any(name.startswith(f"{config.method}-{config.dataset}-seed{config.seed}-") for name in names):
        return None
    try:
        run_id = prepare(dataclasses.replace(config, download=False)).run_id  # never a download just for an id
    except Exception:  # noqa: BLE001 (no data or no GPU on the driver: the task decides, see _bring_home)
        return None
    return Path(config.out) / run_id


def _ended_at_home(config: RunConfig, names: set[str]) -> RunResult | None:
    """The ended record of `config` under its --out."""
    home = _home(config, names)
    return None if home is None else _ended(home)


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
                local_mode: bool = False, storage: str | None = None, threads: int | None = None) -> list[Outcome]:
    """One Ray task per pack (asking for the resources of one run) on an existing cluster (`address`) or a local
    one. Runs already ended under --out are skipped here: a worker cannot see --out.

    Fractional `gpus_per_run` lets several small MNIST runs share a GPU. The cluster's GPUs are checked first: a
    Ray task asking for a GPU the cluster does not have waits forever. `storage`: where the workers train, on a
    filesystem every node mounts at that path, so that a task retried after a lost node resumes from its
    checkpoint; without it each task trains in a temporary folder of its node. `threads`: torch threads per task
    (None: its CPUs, `cpus_per_run`, at most MAX_AUTO_THREADS).
    """
    check_resources(cpus_per_run, gpus_per_run)
    try:
        import ray
    except ImportError:
        raise ConfigError('the Ray executor needs Ray: pip install "ebm-bench[ray]"') from None
    if not ray.is_initialized():
        if address is None:
            _check_local_gpus(gpus_per_run)
        _connect(ray, address, include_dashboard=False, log_to_driver=False,
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
    threads = threads or max(1, min(MAX_AUTO_THREADS, int(cpus_per_run)))
    pending = {remote.remote(pack, storage, threads): pack for pack in todo}
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


def check_resources(cpus_per_run: float, gpus_per_run: float) -> None:
    """A Ray task's resources: some CPU (Ray refuses 0 or fewer only once a task is submitted), no GPU or some."""
    if not 0 < cpus_per_run < math.inf:
        raise ConfigError(f"--cpus-per-run must be a positive number, got {cpus_per_run:g}; e.g. --cpus-per-run 1")
    if not 0 <= gpus_per_run < math.inf:
        raise ConfigError(f"--gpus-per-run must be 0 or more, got {gpus_per_run:g}; e.g. --gpus-per-run 0.25 (four "
                          "runs share a GPU)")


def _check_local_gpus(gpus_per_run: float) -> None:
    """A Ray started here has this machine's GPUs: fewer than a run asks for and its tasks would wait forever."""
    if gpus_per_run <= 0:
        return
    import torch

    have = torch.cuda.device_count()
    if have < gpus_per_run:
        raise ConfigError(f"--gpus-per-run {gpus_per_run:g} asked for, but this machine has {have} GPU(s), and without "
                          "--address Ray runs here; use --gpus-per-run 0, or --address of a cluster with GPUs")


RAY_PROBE_S = 10.0  # a TCP connection to the cluster's address: refused at once, or not answered in this time
RAY_CONNECT_S = 45.0  # ray.init itself, once the address answers: it retries for many minutes on its own


class _NotMainThreadWarning(logging.Filter):
    """ray.init in a thread warns that it sets no SIGTERM handler there: the default one (exit) is what we want."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "not the main thread" not in record.getMessage()


def _connect(ray, address: str | None, **options) -> None:
    """ray.init, starting a local Ray (`address` None) or joining a cluster. An unreachable address fails in one
    line within about a minute: Ray itself would retry it for many minutes, printing a warning every few seconds."""
    if address is None:
        ray.init(**options)
        return
    _probe(address)
    done: dict[str, BaseException | None] = {}

    def connect() -> None:
        try:
            ray.init(address=address, **options)
            done["error"] = None
        except BaseException as err:  # noqa: BLE001 (handed to the waiting thread)
            done["error"] = err

    worker_log = logging.getLogger("ray._private.worker")
    quiet = _NotMainThreadWarning()
    worker_log.addFilter(quiet)
    try:
        thread = threading.Thread(target=connect, name="ray-connect", daemon=True)  # daemon: never holds the exit
        thread.start()
        thread.join(RAY_CONNECT_S)
    finally:
        worker_log.removeFilter(quiet)
    if "error" not in done:
        raise ConfigError(f"the Ray cluster at --address {address} could not be reached: no answer within "
                          f"{RAY_CONNECT_S:g} s; check the head node's address and port (`ray status` on it), or drop "
                          "--address to start Ray on this machine")
    if isinstance(done["error"], ConnectionError):
        raise ConfigError(f"the Ray cluster at --address {address} could not be reached: {done['error']}") from None
    if done["error"] is not None:
        raise done["error"]


def _probe(address: str) -> None:
    """A TCP connection to a host:port address (ray://host:port too); other forms (auto) are Ray's to resolve."""
    host, sep, port = address.split("://", 1)[-1].rpartition(":")
    if not sep or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=RAY_PROBE_S).close()
    except OSError as err:
        reason = err.strerror or str(err) or type(err).__name__
        raise ConfigError(f"the Ray cluster at --address {address} could not be reached ({reason}); check the head "
                          "node's address and port (`ray status` on it), or drop --address to start Ray on this "
                          "machine") from None
