"""`ebm-bench config show`: the resolved config of a run, or of every run of a sweep, as TOML (placeholder)."""

from __future__ import annotations


def add_parser(subparsers) -> None:
    pass
