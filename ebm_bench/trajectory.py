"""Energy-trajectory statistics, accumulated on the training device and read back once per logging interval."""

from __future__ import annotations

import csv
import io
import math
import os
import re
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


from .errors import ConfigError
from .files import atomic_write_bytes

QUANTILES = {"q10": 0.1, "q50": 0.5, "q90": 0.9}
_ENERGY_COLUMNS = [f"energy_{which}_{stat}" for which in ("real", "fake")
                   for stat in ("mean", "std", *QUANTILES)]
STANDARD_COLUMNS = (["step", "images", "wall_s"] + _ENERGY_COLUMNS
                    + ["margin", "k_t", "m_global", "pt", "hinge_active", "loss_d", "loss_g", "recon_rmse_real"])


class TrajectoryWriter:
    """Appends one CSV row per logging interval; on resume, drops rows logged after the checkpoint.

    Columns are the standard ones, then whatever else the method logs, fixed by the first row. A file that is
    damaged beyond a torn last row (a crash in the middle of an append) is never dropped: it is moved aside, and
    the run resumes with the rows that could be read. The file is never written through a symbolic link.
    """

    def __init__(self, path: Path, standard_columns: list[str]):
        self.path = path
        self.standard_columns = standard_columns
        self.columns: list[str] | None = None

    def start(self, resume_after_step: int | None, last_row_step: int | None = None) -> None:
        """`resume_after_step` None: a fresh start (an old file goes). Else rows up to that step are kept;
        `last_row_step`, when the caller knows it, is the step of the last row logged up to there, which a whole
        file has."""
        self._refuse_link()
        if resume_after_step is None or not self.path.exists():
            self.path.unlink(missing_ok=True)
            return
        data = self.path.read_bytes()
        columns, rows, damage = _read_rows(data, resume_after_step)
        if damage is None and last_row_step is not None and (not rows or int(rows[-1]["step"]) != last_row_step):
            damage = f"its row of step {last_row_step} is missing"
        if damage is not None:
            self._move_aside(damage, resume_after_step)
        if columns is None:  # no header to keep: the first append writes one
            self.path.unlink(missing_ok=True)
            return
        self.columns = columns
        text = io.StringIO()
        writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        atomic_write_bytes(self.path, text.getvalue().encode())

    def _refuse_link(self) -> None:
        if self.path.is_symlink():
            raise ConfigError(f"{self.path} is a symbolic link; ebm-bench does not write through links in a run "
                              "folder: delete it (or run again with --restart)")

    def _move_aside(self, damage: str, resume_after_step: int) -> None:
        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}")
        for n in range(1, 1000):
            if not aside.exists():
                break
            aside = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{n}")
        os.replace(self.path, aside)
        print(f"warning: {self.path} is damaged ({damage}); moved it to {aside}, and the run goes on with its rows "
              f"up to step {resume_after_step} that could be read", file=sys.stderr, flush=True)

    def append(self, row: dict[str, Any]) -> None:
        header = ""
        if self.columns is None:
            self.columns = self.standard_columns + sorted(set(row) - set(self.standard_columns))
            header = ",".join(self.columns) + "\n"
        line = ",".join(_format_cell(row.get(column)) for column in self.columns)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
        except OSError:
            self._refuse_link()  # the likely reason; anything else is the OS's own error
            raise
        with os.fdopen(fd, "a") as handle:
            handle.write(header + line + "\n")


def _read_rows(data: bytes, resume_after_step: int) -> tuple[list[str] | None, list[dict[str, str]], str | None]:
    """(header, the rows up to `resume_after_step`, what is damaged or None) of a trajectory file's bytes.

    Only the last line may be torn, and only by an append after the checkpoint: an append comes before the
    checkpoint of its step, so a cut row at or before the checkpoint's step is a cut file, not a crash.
    """
    try:
        text = data.decode()
    except UnicodeDecodeError:
        return None, [], "not text"
    if not text:
        return None, [], "empty"
    *lines, tail = text.split("\n")
    if not lines:  # not even a whole header: a first append torn by a crash, or garbage
        torn_header = re.fullmatch(r"[A-Za-z0-9_.,]*", tail) is not None and "step".startswith(tail[:4])
        return None, [], None if torn_header else "no header"
    columns = next(csv.reader([lines[0]]), [])
    if not columns or columns[0] != "step" or "" in columns or len(set(columns)) < len(columns):
        return None, [], "its first line is not a header starting with step"
    rows, damage, previous = [], None, -1
    for number, line in enumerate(lines[1:], start=2):
        cells = next(csv.reader([line]), [])
        if len(cells) != len(columns) or not cells[0].isdigit() or int(cells[0]) <= previous:
            damage = damage or f"line {number} is not a row"
            continue
        previous = int(cells[0])
        if previous <= resume_after_step:
            rows.append(dict(zip(columns, cells)))
    if tail and "," in tail:  # the torn row's step is whole: before the checkpoint, rows were cut off
        step = tail.split(",", 1)[0]
        if not step.isdigit() or int(step) <= resume_after_step:
            damage = damage or f"its last line is cut off at step {step}"
    return columns, rows, damage


def _format_cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)
