"""`ebm-bench list`: what is registered (methods, datasets, architectures, metrics) and the shipped presets."""

from __future__ import annotations

from rich.console import Console

from ebm_bench.config import load_preset, preset_names
from ebm_bench.datasets import DATASETS
from ebm_bench.methods import METHODS
from ebm_bench.metrics import METRICS
from ebm_bench.nets import NETS

from .common import load_plugins


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("list", help="show the registered methods, datasets, architectures, metrics, presets")
    p.add_argument("--plugin", action="append", default=[], metavar="FILE.py")
    p.set_defaults(func=command)


def _first_line(text: str | None) -> str:
    return (text or "").strip().split("\n")[0]


def command(args) -> int:
    load_plugins(args.plugin)
    console = Console()
    sections = [
        ("methods", {name: f"{cls.description} (options: {', '.join(sorted(cls.__dataclass_fields__)) or 'none'})"
                     if hasattr(cls, "__dataclass_fields__") else cls.description for name, cls in METHODS.items()}),
        ("datasets", {name: spec.description for name, spec in DATASETS.items()}),
        ("architectures (--arch)", {name: _first_line(builder.__doc__) for name, builder in NETS.items()}),
        ("metrics", {name: f"[{metric.direction or 'diagnostic'}, needs {metric.needs}] {metric.description}"
                     for name, metric in METRICS.items()}),
        ("presets (--config / --preset)", {name: load_preset(name).get("description", "") for name in preset_names()}),
    ]
    for title, rows in sections:
        console.print(f"[bold]{title}[/bold]")
        width = max(map(len, rows), default=0) + 2
        for name, text in rows.items():
            console.print(f"  {name:<{width}}{text}", soft_wrap=True, highlight=False, markup=False)
    return 0
