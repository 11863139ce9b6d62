"""`ebm-bench records export` and `ebm-bench records import`: move the records of ended runs between machines
(from a GPU window that gives back a few files, or a cluster, to a laptop) in a few size-capped archives."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape

from ebm_bench.archive import (DEFAULT_MAX_FILE, DEFAULT_MAX_FILES, export_records, import_records, parse_count,
                               parse_size)


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("records", help="move run records between machines in size-capped archives",
                              description="Export the records of ended runs into a few archives; import them "
                                          "elsewhere, safely.")
    actions = p.add_subparsers(dest="records_command", required=True)
    e = actions.add_parser("export", help="pack the records of finished and diverged runs into archives",
                           description="Every file of each finished or diverged run folder but its checkpoint "
                                       "and lock, plus the sweep-*.json and reference.json at the top of RUNS, "
                                       "into at most --max-files gzip'd tar files of at most --max-file bytes, "
                                       "whole runs per file. Unfinished runs are skipped (and counted).")
    e.add_argument("runs", nargs="+", help="folders of runs (paths in the archives are relative to them)")
    e.add_argument("--out", required=True, help="the folder the archives are written into")
    e.add_argument("--max-file", default=DEFAULT_MAX_FILE, metavar="SIZE",
                   help=f"the largest archive: bytes, or with K, M or G, binary (default: {DEFAULT_MAX_FILE})")
    e.add_argument("--max-files", default=str(DEFAULT_MAX_FILES), metavar="N",
                   help=f"the most archives (default: {DEFAULT_MAX_FILES})")
    e.set_defaults(func=export_command)
    i = actions.add_parser("import", help="restore exported records into a folder of runs",
                           description="Checks every archive (no links, devices or paths leaving --into, sha256s "
                                       "as in its manifest) before writing anything. A run new to --into lands "
                                       "whole; a finished run already there is never overwritten; an unfinished "
                                       "one is replaced by the ended import, its checkpoint removed.")
    i.add_argument("files", nargs="+", help="archives written by `ebm-bench records export`")
    i.add_argument("--into", required=True, help="the folder of runs to restore into (created if missing)")
    i.set_defaults(func=import_command)


def _notes(notes: list[str]) -> None:
    for note in notes:
        Console(stderr=True).print(f"warning: {escape(note)}", highlight=False, soft_wrap=True)


def export_command(args) -> int:
    summary = export_records(args.runs, args.out, parse_size(args.max_file), parse_count(args.max_files))
    _notes(summary.notes)
    print(summary.line())
    return 0


def import_command(args) -> int:
    summary = import_records(args.files, args.into)
    _notes(summary.notes)
    print(summary.line())
    return 0
