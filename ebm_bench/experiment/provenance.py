"""When was a spec declared, and did its runs come after? The commit that last changed the spec file, against the
`created` time of each run's manifest: an analysis whose spec was committed after (or never) is post hoc."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Iterable

BEFORE, AFTER = "declared before the runs", "declared after the runs: post hoc"


@dataclass(frozen=True)
class Declaration:
    commit: str | None  # the commit that last changed the spec; None: not committed, or not in a git repository
    committed_at: str | None  # its committer time, ISO 8601
    before: bool  # every recorded run was created after that commit, and the spec is unchanged since
    reason: str  # one sentence: why `before` is what it is

    @property
    def label(self) -> str:
        return BEFORE if self.before else AFTER

    def header(self) -> str:
        where = (f"the spec was last changed in commit {self.commit[:12]} ({self.committed_at})" if self.commit
                 else "the spec has no commit")
        return f"**{self.label}**: {where}; {self.reason}"


def _git(folder: Path, *args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _time(text: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None
    return moment if moment.tzinfo is not None else None  # a time without a zone cannot be ordered against git's


def declaration(spec: Path, created: Iterable[str | None]) -> Declaration:
    """Whether `spec` was declared before the runs whose manifests' `created` times are given."""
    spec = spec.resolve()
    created = list(created)
    if _git(spec.parent, "rev-parse", "--is-inside-work-tree") != "true":
        return Declaration(None, None, False, "it is not in a git repository, so nothing shows when it was declared")
    found = _git(spec.parent, "log", "-1", "--format=%H %cI", "--", spec.name)
    if not found:
        return Declaration(None, None, False, "nothing shows it was declared before the runs (commit it before "
                                              "training them)")
    commit, committed_at = found.split(" ", 1)
    if _git(spec.parent, "status", "--porcelain", "--", spec.name):
        return Declaration(commit, committed_at, False, "it has changes not committed since, so what is rendered "
                                                        "is not what was declared")
    times = [_time(text) if isinstance(text, str) else None for text in created]
    if not times:
        return Declaration(commit, committed_at, True, "no run is recorded yet")
    unknown = sum(t is None for t in times)
    if unknown:
        return Declaration(commit, committed_at, False, f"{unknown} of {len(times)} runs have no creation time in "
                                                        "their manifest, so they cannot be shown to come after it")
    declared_at = _time(committed_at)
    earlier = [t for t in times if t <= declared_at]
    if earlier:
        return Declaration(commit, committed_at, False, f"{len(earlier)} of {len(times)} runs were created before it "
                                                        f"(the earliest {min(earlier).isoformat()})")
    return Declaration(commit, committed_at, True, f"all {len(times)} runs were created after it (the earliest "
                                                   f"{min(times).isoformat()})")
