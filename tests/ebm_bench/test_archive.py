"""`ebm-bench records export` / `records import` (ebm_bench.archive): records that travel in size-capped archives
and come back byte for byte, and archives that are refused, whole, when crafted to write anywhere else."""

from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import os
import random
import re
import shutil
import tarfile
from pathlib import Path

import pytest

from ebm_bench import archive
from ebm_bench.archive import MANIFEST_NAME, export_records, import_records, parse_size
from ebm_bench.cli import main
from ebm_bench.config import Budget, RunConfig
from ebm_bench.errors import ConfigError
from ebm_bench.files import read_json, write_json
from ebm_bench.record import CHECKPOINT, find_run_dirs, load_records, LOCK, RESULT, run_lock
from ebm_bench.leaderboard.reference import REFERENCE_FILE
from ebm_bench.runs import train_one

from .conftest import SMALL

LEFT_OUT = (CHECKPOINT, LOCK)


def tree(root: Path) -> dict[str, bytes | str]:
    """Every entry under `root` (symlinks not followed): a file's bytes, a symlink's target."""
    entries: dict[str, bytes | str] = {}
    for path in sorted(root.rglob("*")):
        key = path.relative_to(root).as_posix()
        if path.is_symlink():
            entries[key] = f"-> {os.readlink(path)}"
        elif path.is_file():
            entries[key] = path.read_bytes()
    return entries


def records_of(root: Path) -> dict[str, bytes]:
    """What a record carries: every file but checkpoints and locks, of ended runs and the top-level files."""
    return {k: v for k, v in tree(root).items()
            if not k.endswith(LEFT_OUT) and not k.startswith("unfinished-") and isinstance(v, bytes)}


def manifest_of(path: Path) -> dict:
    with tarfile.open(path) as tar:
        return json.loads(tar.extractfile(MANIFEST_NAME).read())


@pytest.fixture(scope="module")
def source(report_runs, tmp_path_factory) -> Path:
    """The three finished runs (one moved into grid/), a diverged copy of the GAN run, an unfinished run (status
    running, with a checkpoint and a lock), a sweep summary and a reference.json at the top."""
    root = tmp_path_factory.mktemp("records") / "runs"
    shutil.copytree(report_runs, root)
    ebgan1 = next(root.glob("ebgan-*seed1-*"))
    (root / "grid").mkdir()
    ebgan1.rename(root / "grid" / ebgan1.name)
    gan = next(root.glob("gan-*"))
    diverged = root / "gan-mnist-seed7-diverged"
    shutil.copytree(gan, diverged)
    write_json(diverged / "config.json", read_json(gan / "config.json") | {"seed": 7})
    write_json(diverged / RESULT, read_json(gan / RESULT) | {"status": "diverged", "seed": 7})
    unfinished = root / "unfinished-run"
    shutil.copytree(gan, unfinished)
    write_json(unfinished / RESULT, read_json(gan / RESULT) | {"status": "running"})
    (unfinished / LOCK).write_text("")
    write_json(root / "sweep-demo.json", {"name": "demo", "runs": []})
    write_json(root / REFERENCE_FILE, {"scores": {"i_prime": 9.9}})
    assert (gan / CHECKPOINT).is_file()  # so that leaving checkpoints out is tested
    return root


@pytest.fixture(scope="module")
def exported(source, tmp_path_factory) -> tuple[Path, int, archive.ExportSummary]:
    """The records exported with --max-file about 60% of what one archive takes: split across files."""
    whole = export_records([source], tmp_path_factory.mktemp("whole"), parse_size("1G"))
    assert len(whole.archives) == 1
    max_file = int(whole.archives[0][1] * 0.6)
    out = tmp_path_factory.mktemp("archives")
    return out, max_file, export_records([source], out, max_file)


def test_reference_name_is_the_leaderboards():
    assert archive.REFERENCE_NAME == REFERENCE_FILE


def test_export_splits_by_whole_runs_under_the_limit(exported, source):
    out, max_file, summary = exported
    assert len(summary.archives) >= 2 and all(size <= max_file for _, size in summary.archives)
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p, _ in summary.archives)  # no temporaries
    assert summary.runs == 4 and summary.unfinished == 1
    assert summary.line().startswith(f"exported 4 run(s) in {len(summary.archives)} file(s)")
    runs_per_archive = []
    for path, _ in summary.archives:
        with tarfile.open(path) as tar:
            names = tar.getnames()
        manifest = manifest_of(path)
        assert not any(name.endswith(LEFT_OUT) or name.startswith("unfinished-") for name in names)
        runs_per_archive.append(set(manifest["runs"]))
        for run, entry in manifest["runs"].items():  # whole runs: every file of a run is in its archive
            assert {f"{run}/{name}" for name in entry["files"]} <= set(names)
    every = [run for runs in runs_per_archive for run in runs]
    assert len(every) == len(set(every)) == 4
    assert any(run.startswith("grid/") for run in every)  # a run keeps its folder relative to RUNS


def test_round_trip_is_byte_identical_and_reads_the_same(exported, source, tmp_path, capsys):
    _, _, summary = exported
    into = tmp_path / "laptop"
    assert main(["records", "import", *[str(p) for p, _ in summary.archives], "--into", str(into)]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"imported 4 run(s) and 2 other file(s) from {len(summary.archives)} archive(s)")
    assert records_of(into) == records_of(source)
    assert not list(into.rglob(CHECKPOINT)) and not list(into.glob(".records-import-*"))

    ended = [str(d) for d in find_run_dirs([source]) if not d.name.startswith("unfinished-")]

    def table(folders):
        return load_records(folders).drop(columns="run_dir").sort_values("run_id").reset_index(drop=True)

    assert table([into]).equals(table(ended))
    for folders, name in ((ended, "a.csv"), ([str(into)], "b.csv")):
        assert main(["leaderboard", *folders, "--reference", "none", "--format", "csv",
                     "--output", str(tmp_path / name)]) == 0
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()

    before = {p: p.stat().st_mtime_ns for p in into.rglob("*")}
    assert main(["records", "import", *[str(p) for p, _ in summary.archives], "--into", str(into)]) == 0
    assert "; 4 already there (identical)" in capsys.readouterr().out
    assert {p: p.stat().st_mtime_ns for p in into.rglob("*")} == before


def test_staged_copies_are_never_taken_for_runs(exported, tmp_path, monkeypatch):
    """A leaderboard reading --into while an import stages (or after an import was killed) sees no extra run."""
    _, _, summary = exported
    into, seen = tmp_path / "laptop", []
    original = archive._place_run

    def looking(*args):
        seen.append([d for d in find_run_dirs([into]) if ".records-import-" in str(d)])
        return original(*args)

    monkeypatch.setattr(archive, "_place_run", looking)
    import_records([p for p, _ in summary.archives], into)
    assert seen and seen[0] == [] and not list(into.glob(".records-import-*"))


def gan_config(out: Path, mnist_root: Path) -> RunConfig:
    """The GAN run of `report_runs`, written into `out`."""
    return RunConfig(method="gan", seed=0, budget=Budget("steps", 12), batch_size=16, mlp=SMALL, z_dim=16,
                     holdout=200, data_root=str(mnist_root), out=str(out), log_every=4, checkpoint_every=8,
                     n_samples=16, download=False, eval_n=100)


def test_a_resumed_run_over_the_import_returns_the_stored_result(exported, source, tmp_path, mnist_root):
    _, _, summary = exported
    into = tmp_path / "laptop"
    import_records([p for p, _ in summary.archives], into)
    stored = read_json(next(into.glob("gan-mnist-seed0-*")) / RESULT)
    result = train_one(gan_config(into, mnist_root))
    assert dataclasses.asdict(result) | {"run_dir": None} == stored | {"run_dir": None}
    assert not list(into.rglob(CHECKPOINT))  # it did not train


def test_a_resumed_run_over_the_import_names_the_folder_it_is_in(exported, tmp_path, mnist_root):
    _, _, summary = exported
    into = tmp_path / "laptop"
    import_records([p for p, _ in summary.archives], into)
    here = next(into.glob("gan-mnist-seed0-*"))
    assert train_one(gan_config(into, mnist_root)).run_dir == str(here)  # a resumed sweep plots from there


def test_an_unfinished_run_is_replaced_a_finished_one_never_overwritten(exported, source, tmp_path):
    _, _, summary = exported
    into = tmp_path / "laptop"
    gan, ebgan = next(source.glob("gan-mnist-seed0-*")), next(source.glob("ebgan-*seed0-*"))
    shutil.copytree(gan, into / gan.name)  # unfinished here: a checkpoint, a shorter trajectory
    write_json(into / gan.name / RESULT, read_json(gan / RESULT) | {"status": "running"})
    (into / gan.name / "trajectory.csv").write_text("step\n1\n")
    shutil.copytree(ebgan, into / ebgan.name)  # finished here, and different
    (into / ebgan.name / "trajectory.csv").write_text("step\n2\n")
    kept = tree(into / ebgan.name)
    result = import_records([p for p, _ in summary.archives], into)
    assert result.replaced == [gan.name] and result.kept == [ebgan.name]
    assert records_of(into / gan.name) == records_of(gan) and not (into / gan.name / CHECKPOINT).exists()
    assert tree(into / ebgan.name) == kept
    assert any(ebgan.name in note and "not overwritten" in note for note in result.notes)


def test_a_run_being_written_is_left_to_its_writer(exported, source, tmp_path):
    _, _, summary = exported
    gan = next(source.glob("gan-mnist-seed0-*"))
    target = tmp_path / "laptop" / gan.name
    target.mkdir(parents=True)
    (target / "trajectory.csv").write_text("step\n1\n")
    with run_lock(target, gan.name):  # another open file description: flock conflicts even in this process
        result = import_records([p for p, _ in summary.archives], tmp_path / "laptop")
    assert result.locked == [gan.name] and (target / "trajectory.csv").read_text() == "step\n1\n"
    assert not (target / RESULT).exists()


# -- the limits --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("text, size", [("15M", 15 << 20), ("512k", 512 << 10), ("1G", 1 << 30), ("1000", 1000),
                                        ("1.5MiB", 3 << 19)])
def test_sizes_are_binary(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("flag, text", [("--max-file", t) for t in ("abc", "0", "-5", "15X", "M", "")]
                         + [("--max-files", "two"), ("--max-files", "0")])
def test_a_nonsense_size_is_one_line(flag, text, source, tmp_path, capsys):
    assert main(["records", "export", str(source), "--out", str(tmp_path / "out"), flag, text]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {flag} {text!r} is not a") and "\n" not in err and not (tmp_path / "out").exists()


def test_archives_never_exceed_the_limit(tmp_path):
    """Incompressible runs of uneven sizes, packed at limits from tight to loose: every archive stays within
    --max-file (its manifest counted: the planning bounds it before it is written), and every run is in one."""
    rng = random.Random(0)
    root = tmp_path / "runs"
    for k in range(24):
        run = root / f"run-{k:02d}"
        run.mkdir(parents=True)
        write_json(run / RESULT, {"status": "finished"})
        (run / "samples.png").write_bytes(rng.randbytes(rng.randint(100, 6000)))
    for max_file in (7500, 9000, 16000, 40000):
        summary = export_records([root], tmp_path / f"out-{max_file}", max_file, max_files=100)
        assert max(size for _, size in summary.archives) <= max_file
        runs = [run for path, _ in summary.archives for run in manifest_of(path)["runs"]]
        assert sorted(runs) == [f"run-{k:02d}" for k in range(24)]


def test_too_much_to_fit_fails_before_writing(exported, source, tmp_path, capsys):
    _, max_file, summary = exported
    out = tmp_path / "out"
    assert main(["records", "export", str(source), "--out", str(out), "--max-file", str(max_file),
                 "--max-files", "1"]) == 2
    err = capsys.readouterr().err.strip()
    need = re.search(rf"need ([0-9.]+) KiB compressed, {len(summary.archives)} files of at most", err)
    assert need and float(need[1]) == pytest.approx(sum(size for _, size in summary.archives) / 1024, rel=0.01)
    assert f"raise --max-files to {len(summary.archives)}," in err and "\n" not in err and not out.exists()


def test_a_run_larger_than_the_limit_is_named(source, tmp_path, capsys):
    out = tmp_path / "out"
    assert main(["records", "export", str(source), "--out", str(out), "--max-file", "2K"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "more than --max-file 2.0 KiB;" in err and str(source) in err and not out.exists()


def test_no_finished_runs_is_one_line(source, tmp_path, capsys):
    shutil.copytree(source / "unfinished-run", tmp_path / "runs" / "unfinished-run")
    assert main(["records", "export", str(tmp_path / "runs"), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"error: no finished or diverged runs under {tmp_path / 'runs'} (1 unfinished); nothing to export"
    assert not (tmp_path / "out").exists()


# -- crafted archives --------------------------------------------------------------------------------------------
def craft(path: Path, members: list[tuple[tarfile.TarInfo, bytes]], manifest: dict | None = None) -> Path:
    """A tar.gz of `members`, with a manifest listing its regular files under run `run` (or `manifest`)."""
    if manifest is None:
        files = {info.name.split("/", 1)[1]: {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
                 for info, data in members if info.isreg()}
        manifest = {"format": archive.FORMAT, "version": archive.VERSION, "files": {},
                    "runs": {"run": {"status": "finished", "files": files}}}
    data = json.dumps(manifest).encode()
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(MANIFEST_NAME)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
        for info, content in members:
            tar.addfile(info, io.BytesIO(content) if info.isreg() else None)
    return path


def regular(name: str, data: bytes = b'{"status": "finished"}') -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def special(name: str, kind: bytes, target: str = "") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


@pytest.fixture
def place(tmp_path) -> tuple[Path, Path]:
    """(--into, a sentinel folder beside it that nothing may touch)."""
    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    (sentinel / RESULT).write_text("mine")
    (tmp_path / "laptop").mkdir()
    return tmp_path / "laptop", sentinel


CRAFTED = {
    "symlink": ([regular("run/result.json"), special("run/config.json", tarfile.SYMTYPE, "../../sentinel/result.json")],
                "run/config.json", "is a symlink"),
    "hardlink": ([regular("run/result.json"), special("run/config.json", tarfile.LNKTYPE, "run/result.json")],
                 "run/config.json", "is a hard link"),
    "device": ([regular("run/result.json"), special("run/config.json", tarfile.CHRTYPE)], "run/config.json",
               "is a device"),
    "absolute": ([regular("run/result.json"), regular("/tmp/ebm-bench-escape/result.json")],
                 "/tmp/ebm-bench-escape/result.json", "absolute"),
    "dotdot": ([regular("run/result.json"), regular("run/../../escape/result.json")],
               "run/../../escape/result.json", "'..'"),
}


@pytest.mark.parametrize("case", list(CRAFTED))
def test_a_crafted_member_refuses_the_archive(case, place, tmp_path, capsys):
    into, sentinel = place
    members, culprit, why = CRAFTED[case]
    manifest = {"format": archive.FORMAT, "version": archive.VERSION, "files": {},
                "runs": {"run": {"status": "finished", "files": {RESULT: {
                    "sha256": hashlib.sha256(members[0][1]).hexdigest(), "size": len(members[0][1])}}}}}
    path = craft(tmp_path / f"{case}.tar.gz", members, manifest)
    before = tree(tmp_path)
    assert main(["records", "import", str(path), "--into", str(into)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and str(path) in err and repr(culprit) in err and why in err
    assert "nothing was imported" in err
    assert tree(tmp_path) == before  # nothing written, in --into or anywhere beside it
    assert not Path("/tmp/ebm-bench-escape").exists()


def test_a_checksum_mismatch_refuses_the_whole_archive(place, tmp_path, capsys):
    into, sentinel = place
    good = [regular("good/result.json"), regular("good/config.json", b"{}")]
    bad = regular("run/result.json")
    manifest = {"format": archive.FORMAT, "version": archive.VERSION, "files": {}, "runs": {
        "good": {"status": "finished", "files": {n.split("/")[1]: {"sha256": hashlib.sha256(d).hexdigest(),
                                                                  "size": len(d)} for n, d in
                                                  ((i.name, d) for i, d in good)}},
        "run": {"status": "finished", "files": {RESULT: {"sha256": "0" * 64, "size": len(bad[1])}}}}}
    path = craft(tmp_path / "mismatch.tar.gz", good + [bad], manifest)
    before = tree(tmp_path)
    assert main(["records", "import", str(path), "--into", str(into)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"{path}: member 'run/result.json' does not match its sha256" in err
    assert tree(tmp_path) == before  # the good run did not land either


def test_a_symlinked_run_folder_under_into_is_refused(place, tmp_path, capsys):
    into, sentinel = place
    (into / "run").symlink_to(sentinel, target_is_directory=True)
    path = craft(tmp_path / "ok.tar.gz", [regular("run/result.json"), regular("run/config.json", b"{}")])
    before = tree(tmp_path)
    assert main(["records", "import", str(path), "--into", str(into)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and f"would be written through the symlink {into / 'run'}" in err
    assert err.endswith("(move that out of the way, or import into another folder)")
    assert tree(tmp_path) == before and (sentinel / RESULT).read_text() == "mine"


def test_an_archive_without_a_manifest_or_with_unlisted_members_is_refused(place, tmp_path):
    into, _ = place
    plain = tmp_path / "plain.tar.gz"
    with tarfile.open(plain, "w:gz") as tar:
        info, data = regular("run/result.json")
        tar.addfile(info, io.BytesIO(data))
    with pytest.raises(ConfigError, match=f"has no {MANIFEST_NAME}"):
        import_records([plain], into)
    extra = craft(tmp_path / "extra.tar.gz", [regular("run/result.json")], {
        "format": archive.FORMAT, "version": archive.VERSION, "files": {}, "runs": {}})
    with pytest.raises(ConfigError, match="'run/result.json' is not listed"):
        import_records([extra], into)
    assert list(into.iterdir()) == []


def test_a_member_through_a_file_into_holds_is_refused(place, tmp_path):
    into, _ = place
    (into / "run").write_text("a file, not a folder")
    path = craft(tmp_path / "ok.tar.gz", [regular("run/result.json")])
    with pytest.raises(ConfigError, match="which is not a folder"):
        import_records([path], into)
    assert (into / "run").read_text() == "a file, not a folder"


def test_a_truncated_or_foreign_file_is_refused_in_one_line(exported, tmp_path, capsys):
    _, _, summary = exported
    whole = summary.archives[0][0].read_bytes()
    truncated = tmp_path / "truncated.tar.gz"
    truncated.write_bytes(whole[:len(whole) // 2])
    foreign = tmp_path / "foreign.tar.gz"
    foreign.write_bytes(b"not an archive at all" * 100)
    into = tmp_path / "laptop"
    for path in (truncated, foreign):
        assert main(["records", "import", str(summary.archives[-1][0]), str(path), "--into", str(into)]) == 2
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and err.startswith(f"error: {path}: ") and "nothing was imported" in err
        assert not into.exists()  # not even with the good archive given first


def test_a_file_changed_during_the_export_writes_nothing(exported, source, tmp_path, monkeypatch):
    """The samples change while the second archive is written: the first, complete by then, is removed too."""
    _, max_file, _ = exported
    read, write, archives = archive._read, archive._write_archive, []

    def drifting(path: Path) -> bytes:
        return read(path) + (b"!" if path.name == "samples.png" and len(archives) > 1 else b"")

    def counting(*args):
        archives.append(args)
        return write(*args)

    monkeypatch.setattr(archive, "_read", drifting)
    monkeypatch.setattr(archive, "_write_archive", counting)
    out = tmp_path / "out"
    with pytest.raises(ConfigError, match="samples.png changed during the export; run the export again"):
        export_records([source], out, max_file, 8)
    assert len(archives) == 2 and list(out.iterdir()) == []
