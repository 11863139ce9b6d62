"""Records that travel: the records of ended runs packed into a few size-capped archives (`ebm-bench records
export`), and restored on another machine (`ebm-bench records import`) without trusting the archives.

An archive is a gzip'd tar holding `ebm-bench-records.json` (the runs it carries and the sha256 and size of each
file) and, for each run, every file of its folder but the checkpoint and the lock, at its path relative to the
folder of runs given to export; the `sweep-*.json` summaries and the leaderboards' `reference.json` at the top of
that folder travel too. Import restores into a folder of runs: a run it does not have lands (result.json last, as
a trainer writes it, so that no reader takes half a run for one); a finished run it has is never overwritten; an
unfinished run it has is replaced by the ended one, its checkpoint removed (it belongs to the older unfinished
state, and resuming from it would train a run that has ended).

Import refuses an archive, before writing anything, when a member is anything but a regular file or a folder
(links, devices, FIFOs), when a member's path is absolute, holds `..` or would land outside the folder or through
a symlink already there, when the members are not exactly the files the manifest lists, and when a file's sha256
does not match it. The sha256 catches a truncated or corrupted transfer, not a forger, who can rewrite the
manifest too: the path and type checks are what keep a crafted archive inside the folder. Members are read by
this module and written to files it creates itself; tarfile never extracts anything, so its extraction filters
(`filter="data"`, Python 3.12) have nothing left to guard.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import shutil
import stat
import tarfile
import tempfile
import time
import zlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Iterable

from .errors import ConfigError
from .files import read_json, sha256_file
from .record import CHECKPOINT, LOCK, RESULT, RunLocked, check_out_dir, find_run_dirs, run_lock

MANIFEST_NAME = "ebm-bench-records.json"
FORMAT, VERSION = "ebm-bench records", 1
REFERENCE_NAME = "reference.json"  # ebm_bench.leaderboard.reference.REFERENCE_FILE (a layer above this one)
TOP_LEVEL_PATTERNS = ("sweep-*.json", REFERENCE_NAME)  # what a resumed sweep and a leaderboard read beside runs
LEFT_OUT = (CHECKPOINT, LOCK)  # the checkpoint is large and only resumes; the lock belongs to a live process
ENDED = ("finished", "diverged")
DEFAULT_MAX_FILE, DEFAULT_MAX_FILES = "15M", 8  # a GPU window gives back 8 files of at most 16 MiB
UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
BLOCK = tarfile.BLOCKSIZE
END_OF_ARCHIVE = b"\0" * (2 * BLOCK)
_CHUNK = 1 << 20
_SHA256 = re.compile(r"[0-9a-f]{64}")


def parse_size(text: str, flag: str = "--max-file") -> int:
    """Bytes from `15M`, `512K`, `1.5G` or `1000` (binary units: 15M is 15 MiB; an optional trailing B or iB)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?)\s*([KMG]?)(?:I?B)?\s*", str(text).upper())
    size = int(float(match[1]) * UNITS[match[2]]) if match else 0
    if size <= 0:
        raise ConfigError(f"{flag} {text!r} is not a size; give bytes or a number with K, M or G (binary: 15M is "
                          "15 MiB), e.g. 15M")
    return size


def parse_count(text: str, flag: str = "--max-files") -> int:
    try:
        count = int(str(text).strip())
    except ValueError:
        count = 0
    if count <= 0:
        raise ConfigError(f"{flag} {text!r} is not a positive whole number; e.g. {flag} {DEFAULT_MAX_FILES}")
    return count


def human_size(size: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"


def check_member_name(name: str) -> str | None:
    """Why a path may not stand inside an archive (None: it may): relative, in '/'-separated parts, none of them
    empty, '.' or '..', and no backslash (a separator elsewhere)."""
    if not name or name.startswith("/") or "\\" in name or "\0" in name:
        return "has an absolute or malformed path"
    if any(part in ("", ".", "..") for part in name.split("/")):
        return "has a path with '..', '.' or an empty part"
    return None


def _nesting(paths: Iterable[str]) -> tuple[str, str] | None:
    """Two run paths of which one lies inside the other (their files would mix), or None."""
    ordered = sorted(paths)
    for a, b in zip(ordered, ordered[1:]):
        if b == a or b.startswith(a + "/"):
            return a, b
    return None


def _gzip(data: bytes) -> bytes:
    """One gzip member: an archive is a run of them (gzip's multi-member form, which `tar xzf` and tarfile's
    'r:gz' read as one stream), so each run is compressed on its own and its exact size is known before any
    archive is written. gzip, not xz: a run's CSV and JSON are small and its PNG is already compressed, so xz would
    save little, and gzip is fast and opens anywhere."""
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # 16+: gzip framing with mtime 0
    return compressor.compress(data) + compressor.flush()


def _gzip_bound(size: int) -> int:
    """At most the gzip'd size of `size` bytes (zlib's deflateBound, with room for the gzip framing)."""
    return size + (size >> 12) + (size >> 14) + (size >> 25) + 64


def _tar_member(name: str, data: bytes, mtime: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), mtime, 0o644  # owner and group stay 0 and unnamed
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape") + data + b"\0" * (-len(data) % BLOCK)


# -- export ------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _File:
    source: Path
    name: str  # its path in the archive
    size: int
    mtime: int
    sha256: str


@dataclass
class _Unit:
    """What is never split across archives: one run, or the top-level files of one folder of runs."""

    label: str  # for messages
    run: str | None  # the run's folder in the archive; None for top-level files
    status: str | None
    files: list[_File]
    size: int = 0  # of its gzip member
    manifest: int = 0  # the length of its entry in the manifest's JSON

    @property
    def entry(self) -> tuple[str, dict]:
        if self.run is None:
            return "files", {f.name: {"sha256": f.sha256, "size": f.size} for f in self.files}
        return "runs", {self.run: {"status": self.status, "files": {
            f.name.rsplit("/", 1)[-1]: {"sha256": f.sha256, "size": f.size} for f in self.files}}}


@dataclass
class ExportSummary:
    archives: list[tuple[Path, int]]  # (file, size in bytes)
    runs: int
    unfinished: int
    notes: list[str] = field(default_factory=list)  # one line each: what was left out, and why

    def line(self) -> str:
        sizes = ", ".join(f"{path.name} {human_size(size)}" for path, size in self.archives)
        skipped = f"; {self.unfinished} unfinished run(s) skipped" if self.unfinished else ""
        return (f"exported {self.runs} run(s) in {len(self.archives)} file(s) into "
                f"{self.archives[0][0].parent}: {sizes}{skipped}")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise ConfigError(f"cannot read {path}: {err.strerror}; check its permissions") from None


def _status(run_dir: Path) -> str | None:
    """The status in result.json; None when it cannot be read (a record that is no result yet)."""
    try:
        status = read_json(run_dir / RESULT).get("status")
    except (OSError, ValueError, AttributeError):
        return None
    return status if isinstance(status, str) else None


def _regular_files(folder: Path, names: Iterable[str], notes: list[str]) -> list[Path]:
    """The regular files among `names` in `folder`: a symlink is left out (with a note), never followed."""
    files = []
    for name in sorted(names):
        path = folder / name
        if path.is_symlink():
            notes.append(f"{path} is a symlink: left out (copy the file it points to into the run folder)")
        elif path.is_file():
            files.append(path)
    return files


def _file(path: Path, name: str) -> _File:
    data = _read(path)
    return _File(path, name, len(data), int(path.stat().st_mtime), hashlib.sha256(data).hexdigest())


def _member_bytes(unit: _Unit, check: bool) -> bytes:
    """The gzip member of a unit's files; `check`: fail when a file changed since the unit was planned."""
    parts = []
    for f in unit.files:
        data = _read(f.source)
        if check and hashlib.sha256(data).hexdigest() != f.sha256:
            raise ConfigError(f"{f.source} changed during the export; run the export again once nothing writes it")
        parts.append(_tar_member(f.name, data, f.mtime))
    return _gzip(b"".join(parts))


def _units(roots: list[Path], notes: list[str]) -> tuple[list[_Unit], int]:
    """(the ended runs and the top-level files under `roots`, the number of unfinished runs skipped)."""
    units: list[_Unit] = []
    unfinished = 0
    where: dict[str, Path] = {}  # archive path -> its source, to catch two roots writing the same path
    seen: set[Path] = set()  # runs under two of the roots given (runs/ and runs/sub/) travel once
    for root in roots:
        run_dirs = find_run_dirs([root])
        root_is_run = run_dirs == [root]
        for run_dir in run_dirs:
            if run_dir.resolve() in seen:
                continue
            seen.add(run_dir.resolve())
            status = _status(run_dir)
            if status not in ENDED:
                unfinished += 1
                continue
            rel = run_dir.resolve().name if root_is_run else run_dir.relative_to(root).as_posix()
            sources = [p for p in _regular_files(run_dir, (p.name for p in run_dir.iterdir()), notes)
                       if p.name not in LEFT_OUT and not p.name.endswith(".tmp")]  # .tmp: an atomic write's leftover
            units.append(_Unit(str(run_dir), rel, status, [_file(p, f"{rel}/{p.name}") for p in sources]))
            where.setdefault(rel, run_dir)
            if where[rel] != run_dir:
                raise ConfigError(f"{where[rel]} and {run_dir} would both be stored as {rel}; export them separately")
        if not root_is_run and root.is_dir():
            names = sorted({p.name for pattern in TOP_LEVEL_PATTERNS for p in root.glob(pattern)})
            top = [_file(p, p.name) for p in _regular_files(root, names, notes)]
            for f in top:
                where.setdefault(f.name, f.source)
                if where[f.name] != f.source:
                    raise ConfigError(f"{where[f.name]} and {f.source} would both be stored as {f.name}; export "
                                      "them separately")
            if top:
                units.append(_Unit(f"the top-level files of {root}", None, None, top))
    for unit in units:  # what import would refuse is never written
        if (bad := next((f for f in unit.files if check_member_name(f.name)), None)) is not None:
            raise ConfigError(f"{bad.source} would be stored as {bad.name!r}, which {check_member_name(bad.name)}; "
                              "rename it or export its folder of runs")
    if (nested := _nesting(u.run for u in units if u.run is not None)) is not None:
        raise ConfigError(f"run folders {nested[0]} and {nested[1]} lie one inside the other; export them separately")
    return units, unfinished


def _manifest_json(units: list[_Unit], created: int) -> bytes:
    manifest: dict = {"format": FORMAT, "version": VERSION, "runs": {}, "files": {},
                      "created": datetime.fromtimestamp(created, timezone.utc).isoformat()}
    for unit in units:
        key, entry = unit.entry
        manifest[key] |= entry
    return json.dumps(manifest, sort_keys=True, separators=(",", ":")).encode()


def _manifest_member(units: list[_Unit], created: int) -> bytes:
    return _gzip(_tar_member(MANIFEST_NAME, _manifest_json(units, created), created))


def _manifest_bound(manifest_length: int) -> int:
    """At most the gzip member of a manifest whose JSON has `manifest_length` bytes (one tar header, padding)."""
    return _gzip_bound(BLOCK + manifest_length + BLOCK)


def _pack(units: list[_Unit], max_file: int, base: int, end: int) -> list[list[_Unit]]:
    """First-fit decreasing by whole units into archives of at most `max_file` bytes, counting each archive's
    manifest (bounded) and end-of-archive member; as many archives as that takes."""
    archives: list[tuple[list[_Unit], int, int]] = []  # (units, bytes of their members, manifest JSON length)
    for unit in sorted(units, key=lambda u: (-u.size, u.label)):
        for k, (members, size, manifest) in enumerate(archives):
            if size + unit.size + _manifest_bound(manifest + unit.manifest) + end <= max_file:
                archives[k] = (members + [unit], size + unit.size, manifest + unit.manifest)
                break
        else:
            archives.append(([unit], unit.size, base + unit.manifest))
    return [sorted(members, key=lambda u: (u.run is not None, u.run or u.label)) for members, _, _ in archives]


def export_records(runs: list[str | Path], out: str | Path, max_file: int, max_files: int = DEFAULT_MAX_FILES
                   ) -> ExportSummary:
    """Pack the records of the ended runs under `runs` into at most `max_files` archives of at most `max_file`
    bytes each in `out` (records-<k>-of-<n>.tar.gz). Everything is planned, compressed and measured before the
    first file is written: when it does not fit, nothing is written."""
    roots, out = [Path(p) for p in runs], Path(out)
    notes: list[str] = []
    units, unfinished = _units(roots, notes)
    n_runs = sum(u.run is not None for u in units)
    if not n_runs:
        raise ConfigError(f"no finished or diverged runs under {', '.join(map(str, roots))} ({unfinished} "
                          "unfinished); nothing to export")
    created = int(time.time())
    base = len(_manifest_json([], created))
    for unit in units:
        unit.size = len(_member_bytes(unit, check=False))
        unit.manifest = len(_manifest_json([unit], created)) - base + 1  # + 1: the comma between entries
    end = len(_gzip(END_OF_ARCHIVE))
    for unit in units:
        if (alone := unit.size + _manifest_bound(base + unit.manifest) + end) > max_file:
            raise ConfigError(f"{unit.label} takes {human_size(alone)} compressed (in an archive of its own), more "
                              f"than --max-file {human_size(max_file)}; raise --max-file (a run is never split "
                              "across files)")
    packed = _pack(units, max_file, base, end)
    if len(packed) > max_files:
        need = sum(len(_manifest_member(members, created)) + sum(u.size for u in members) + end for members in packed)
        raise ConfigError(f"the {n_runs} run(s) need {human_size(need)} compressed, {len(packed)} files of at most "
                          f"{human_size(max_file)}; --max-files is {max_files}: raise --max-files to {len(packed)}, "
                          f"or --max-file (to at least {human_size(-(-need // max_files))}), or export fewer runs; "
                          "nothing written")
    check_out_dir(out)
    names = [out / f"records-{k}-of-{len(packed)}.tar.gz" for k in range(1, len(packed) + 1)]
    temporaries: list[Path] = []
    try:
        for members in packed:
            temporaries.append(_write_archive(out, members, created))
        for tmp, path in zip(temporaries, names):
            os.replace(tmp, path)
    finally:
        for tmp in temporaries:
            tmp.unlink(missing_ok=True)
    archives = [(path, path.stat().st_size) for path in names]
    stale = sorted(p.name for p in out.glob("records-*-of-*.tar.gz") if p not in names)
    if stale:
        notes.append(f"{out} also holds {', '.join(stale)} from an earlier export: leave them out when moving "
                     "these (or delete them)")
    return ExportSummary(archives, n_runs, unfinished, notes)


def _write_archive(out: Path, members: list[_Unit], created: int) -> Path:
    """One archive in a temporary file in `out`, renamed by the caller once every archive is written (the pattern
    of ebm_bench.files.atomic_write_bytes, streamed). os.open's mode goes through the umask, as `open` would."""
    tmp = out / f".records-{secrets.token_hex(8)}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(_manifest_member(members, created))
            for unit in members:
                handle.write(_member_bytes(unit, check=True))
            handle.write(_gzip(END_OF_ARCHIVE))
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return tmp


# -- import ------------------------------------------------------------------------------------------------------
# What to do about a refused archive, by what is wrong
FORGED = "records export never writes this: leave the archive out"
DAMAGED = "copy the archive again from where `records export` wrote it"
IN_THE_WAY = "move that out of the way, or import into another folder"


class ArchiveRefused(ConfigError):
    """An archive that import will not restore from: its message names the archive and the member."""

    def __init__(self, archive: Path, member: str | None, why: str, fix: str = FORGED):
        what = f"{archive}: member {member!r} {why}" if member is not None else f"{archive}: {why}"
        super().__init__(f"{what}; nothing was imported ({fix})")


@dataclass
class _Archive:
    path: Path
    runs: dict[str, dict[str, dict]]  # run folder -> file name -> {"sha256", "size"}
    files: dict[str, dict]  # top-level file -> {"sha256", "size"}
    members: list[str]  # the regular files, in archive order

    def expected(self) -> dict[str, dict]:
        return {f"{run}/{name}": entry for run, files in self.runs.items() for name, entry in files.items()} \
            | self.files


@dataclass
class ImportSummary:
    into: Path
    archives: int
    imported: list[str] = field(default_factory=list)  # runs new to the folder
    replaced: list[str] = field(default_factory=list)  # unfinished runs replaced by the ended import
    identical: list[str] = field(default_factory=list)  # runs already there, byte for byte
    kept: list[str] = field(default_factory=list)  # finished runs there that differ: not overwritten
    locked: list[str] = field(default_factory=list)  # being written by a live process: left to it
    files: list[str] = field(default_factory=list)  # top-level files written
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        counts = [(len(self.identical), "already there (identical)"),
                  (len(self.kept), "kept: a finished run already there differs, never overwritten"),
                  (len(self.replaced), "unfinished run(s) replaced by the ended ones"),
                  (len(self.locked), "being written by another process, skipped")]
        rest = "".join(f"; {n} {what}" for n, what in counts if n)
        extra = f" and {len(self.files)} other file(s)" if self.files else ""
        return (f"imported {len(self.imported) + len(self.replaced)} run(s){extra} from {self.archives} "
                f"archive(s) into {self.into}{rest}")


def _open(path: Path) -> tarfile.TarFile:
    # 'r:*' (random access, gzip by GzipFile) and not the stream mode 'r|*': tarfile's own stream reader stops at
    # the end of the first gzip member, and an archive is several
    return tarfile.open(path, "r:*")


def _unreadable(path: Path, err: BaseException) -> ArchiveRefused:
    return ArchiveRefused(path, None, f"is not a readable records archive ({type(err).__name__}: "
                                      f"{(str(err).splitlines() or [''])[0][:120]})", DAMAGED)


_READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, ValueError)


def _kind(member: tarfile.TarInfo) -> str | None:
    """Why a member is refused for its type, or None for a regular file or a folder."""
    if member.issym():
        return f"is a symlink (to {member.linkname!r})"
    if member.islnk():
        return f"is a hard link (to {member.linkname!r})"
    if member.ischr() or member.isblk():
        return "is a device"
    if member.isfifo():
        return "is a FIFO"
    if not (member.isreg() or member.isdir()):
        return "is not a regular file"
    return None


def _landing_problem(into: Path, name: str) -> str | None:
    """Why `name` may not be written under `into` as it stands now: it leaves it, or goes through a symlink or a
    file already there, or lands on a folder. Only lstat: nothing under `into` is followed."""
    if (why := check_member_name(name)) is not None:
        return why
    if os.path.commonpath([into, os.path.normpath(into / name)]) != str(into):
        return f"would land outside {into}"
    parts = name.split("/")
    here = into
    for k, part in enumerate(parts):
        here = here / part
        try:
            mode = os.lstat(here).st_mode
        except FileNotFoundError:
            return None
        except OSError as err:
            return f"cannot be checked at {here} ({err.strerror})"
        if stat.S_ISLNK(mode):
            return f"would be written through the symlink {here}"
        last = k == len(parts) - 1
        if not last and not stat.S_ISDIR(mode):
            return f"would be written under {here}, which is not a folder"
        if last and not stat.S_ISREG(mode):
            return f"would replace {here}, which is not a regular file"
    return None


def _entry_ok(entry: object) -> bool:
    return (isinstance(entry, dict) and isinstance(entry.get("sha256"), str)
            and _SHA256.fullmatch(entry["sha256"]) is not None and isinstance(entry.get("size"), int))


def _manifest(path: Path, data: bytes) -> tuple[dict[str, dict[str, dict]], dict[str, dict]]:
    """(run folder -> file name -> entry, top-level file -> entry) from a manifest, checked field by field."""
    try:
        manifest = json.loads(data)
    except ValueError:
        manifest = None
    runs, files = (manifest.get("runs"), manifest.get("files")) if isinstance(manifest, dict) else (None, None)
    run_files = {run: entry.get("files") for run, entry in runs.items() if isinstance(entry, dict)} \
        if isinstance(runs, dict) else {}
    if (not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("version") != VERSION
            or not isinstance(runs, dict) or not isinstance(files, dict) or len(run_files) != len(runs)
            or not all(isinstance(f, dict) and all(map(_entry_ok, f.values())) for f in run_files.values())
            or not all(map(_entry_ok, files.values()))):
        raise ArchiveRefused(path, MANIFEST_NAME, f"is not a manifest of {FORMAT} version {VERSION}")
    return run_files, files


def _survey(path: Path, into: Path) -> _Archive:
    """Read an archive's headers and manifest and check them all, writing nothing."""
    members: dict[str, int] = {}  # the regular files, in archive order -> their size
    manifest: bytes | None = None
    try:
        with _open(path) as tar:
            for member in tar:
                if (why := _kind(member) or check_member_name(member.name)) is not None:
                    raise ArchiveRefused(path, member.name, why)
                if member.isreg() and (member.name in members or member.name == MANIFEST_NAME and manifest):
                    raise ArchiveRefused(path, member.name, "is there twice")  # the later copy would win
                if member.name == MANIFEST_NAME and member.isreg():
                    if member.size > 64 * _CHUNK:
                        raise ArchiveRefused(path, member.name, "is too large for a manifest")
                    manifest = tar.extractfile(member).read()
                elif member.isreg():
                    members[member.name] = member.size
    except _READ_ERRORS as err:
        raise _unreadable(path, err) from None
    if manifest is None:
        raise ArchiveRefused(path, None, f"has no {MANIFEST_NAME}: not an archive of `ebm-bench records export`")
    runs, files = _manifest(path, manifest)
    archive = _Archive(path, runs, files, list(members))
    for run, names in runs.items():
        if (why := check_member_name(run)) is not None:
            raise ArchiveRefused(path, run, f"(a run in the manifest) {why}")
        if RESULT not in names:
            raise ArchiveRefused(path, run, f"(a run in the manifest) has no {RESULT}")
        if (bad := next((n for n in names if "/" in n or n in LEFT_OUT), None)) is not None:
            raise ArchiveRefused(path, f"{run}/{bad}", "is not a file a record carries")
    if (nested := _nesting(list(runs) + list(files))) is not None:
        raise ArchiveRefused(path, nested[1], f"lies inside {nested[0]}, another entry of the manifest")
    expected = archive.expected()
    if (extra := next((m for m in members if m not in expected), None)) is not None:
        raise ArchiveRefused(path, extra, f"is not listed in {MANIFEST_NAME}")
    if (missing := next((m for m in expected if m not in members), None)) is not None:
        raise ArchiveRefused(path, missing, f"is listed in {MANIFEST_NAME} but missing")
    if (resized := next((m for m, size in members.items() if size != expected[m]["size"]), None)) is not None:
        raise ArchiveRefused(path, resized, f"does not have the size {MANIFEST_NAME} gives it", DAMAGED)
    for name in list(expected) + [f"{run}/{LOCK}" for run in runs]:  # the lock: replacing a run opens it
        if (why := _landing_problem(into, name)) is not None:
            raise ArchiveRefused(path, name, why, IN_THE_WAY)
    return archive


def _stage(archive: _Archive, stage: Path) -> dict[str, Path]:
    """Write the archive's files into `stage`, checking each against the manifest as it streams; {member name:
    its staged copy}. Staged copies are named by number, so that no folder of them is ever taken for a run."""
    expected = archive.expected()
    seen: list[str] = []
    try:
        with _open(archive.path) as tar:
            for member in tar:
                if member.isdir() or member.name == MANIFEST_NAME:
                    continue
                k = len(seen)  # the same members in the same order as surveyed, or the file changed since
                if not member.isreg() or k >= len(archive.members) or archive.members[k] != member.name:
                    raise ArchiveRefused(archive.path, member.name, "changed while it was being imported", DAMAGED)
                seen.append(member.name)
                target = stage / str(len(seen))
                with tar.extractfile(member) as source:
                    digest, size = _copy(source, target)
                entry = expected[member.name]
                if digest != entry["sha256"] or size != entry["size"]:
                    raise ArchiveRefused(archive.path, member.name, f"does not match its sha256 in {MANIFEST_NAME} "
                                                                    "(a corrupted or truncated copy)", DAMAGED)
                os.utime(target, (member.mtime, member.mtime))
    except _READ_ERRORS as err:
        raise _unreadable(archive.path, err) from None
    if len(seen) != len(archive.members):
        raise ArchiveRefused(archive.path, None, "changed while it was being imported", DAMAGED)
    return {name: stage / str(k) for k, name in enumerate(seen, 1)}


def _copy(source: IO[bytes], target: Path) -> tuple[str, int]:
    """Copy a member into a new file, hashing it on the way; a failed write (a full disk) is said as such, not
    blamed on the archive."""
    digest, size = hashlib.sha256(), 0
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        sink = open(target, "xb")
    except OSError as err:
        raise ConfigError(f"cannot write {target}: {err.strerror}; free some space or choose another --into") from None
    with sink:
        while block := source.read(_CHUNK):
            digest.update(block)
            size += len(block)
            try:
                sink.write(block)
            except OSError as err:
                raise ConfigError(f"cannot write {target}: {err.strerror}; free some space or choose another "
                                  "--into") from None
    return digest.hexdigest(), size


def _same(path: Path, entry: dict) -> bool:
    return path.is_file() and not path.is_symlink() and sha256_file(path) == entry["sha256"]


def _remove(path: Path) -> None:
    """A file, a symlink (never followed) or a folder."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    else:
        path.unlink()


def _ended_here(run: str, files: dict[str, dict], target: Path, summary: ImportSummary, source: Path) -> bool:
    """Whether `target` holds an ended run, which is never overwritten (counted: identical or kept)."""
    if _status(target) not in ENDED:
        return False
    if all(_same(target / name, entry) for name, entry in files.items()):
        summary.identical.append(run)
    else:
        summary.kept.append(run)
        summary.notes.append(f"{target} is a finished run that differs from the one in {source.name}: kept, not "
                             "overwritten (delete it first to take the imported one)")
    return True


def _place_run(run: str, files: dict[str, dict], staged: dict[str, Path], into: Path, summary: ImportSummary,
               source: Path) -> None:
    target = into / run
    for name in [*files, LOCK]:
        if (why := _landing_problem(into, f"{run}/{name}")) is not None:
            raise ConfigError(f"{run}/{name} {why}: {into} changed during the import; import again")
    if _ended_here(run, files, target, summary, source):  # an ended run is only read: no lock needed
        return
    try:
        with run_lock(target, target.name):  # as a trainer would: no process here writes the run meanwhile
            if _ended_here(run, files, target, summary, source):  # ended by another process meanwhile
                return
            replaced = any(path.name != LOCK for path in target.iterdir())
            for path in target.iterdir():  # an unfinished state, its checkpoint included
                if path.name != LOCK:
                    _remove(path)
            for name in sorted(files, key=lambda name: name == RESULT):  # result.json last: it says the run ended
                os.replace(staged[f"{run}/{name}"], target / name)
        (summary.replaced if replaced else summary.imported).append(run)
    except RunLocked as err:
        summary.locked.append(run)
        summary.notes.append(f"{target}: {err}; left to it (import again once it ends)")


def _place_file(name: str, entry: dict, staged: Path, into: Path, summary: ImportSummary, source: Path) -> None:
    target = into / name
    if (why := _landing_problem(into, name)) is not None:
        raise ConfigError(f"{name} {why}: {into} changed during the import; import again")
    if not os.path.lexists(target):
        os.replace(staged, target)
        summary.files.append(name)
    elif not _same(target, entry):
        summary.notes.append(f"{target} differs from the one in {source.name}: kept, not overwritten")


def import_records(archives: list[str | Path], into: str | Path) -> ImportSummary:
    """Restore the records of `archives` under `into`. Every archive is checked (headers and manifest) before
    anything is written, and staged in a temporary folder of `into` with its sha256s checked before any run is
    placed: a refused archive leaves `into` as it was. Then, per run, under its lock as a trainer takes it (a run a
    live process writes is left to it): new here, it lands; finished or diverged here, it is kept, identical or
    not; unfinished here, the ended import replaces it, its checkpoint included."""
    paths = list(dict.fromkeys(Path(p).resolve() for p in archives))
    for path in paths:
        if not path.is_file():
            raise ConfigError(f"no such archive: {path}")
    into = Path(into).resolve()  # --into itself may be a symlink (the user's choice); nothing under it is followed
    if into.exists() and not into.is_dir():
        raise ConfigError(f"--into {into} is a file; pass a folder of runs")
    surveyed = [_survey(path, into) for path in paths]
    try:
        into.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"cannot create --into {into}: {err.strerror}; choose a writable folder") from None
    summary = ImportSummary(into, len(paths))
    stage = Path(tempfile.mkdtemp(dir=into, prefix=".records-import-"))
    try:
        staged = [_stage(archive, stage / str(k)) for k, archive in enumerate(surveyed)]
        for archive, copies in zip(surveyed, staged):
            for run, files in sorted(archive.runs.items()):
                _place_run(run, files, copies, into, summary, archive.path)
            for name, entry in sorted(archive.files.items()):
                _place_file(name, entry, copies[name], into, summary, archive.path)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return summary

