"""`ebm-bench list`: what is registered (methods, datasets, architectures, metrics) and the shipped presets."""

from __future__ import annotations

from rich.console import Console
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

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
        # names in a column of their own, descriptions wrapped between words beside them: the terminal's width
        grid = Table.grid(padding=(0, 2))
        grid.add_column(no_wrap=True)
        grid.add_column(overflow="fold")
        for name, text in rows.items():
            grid.add_row(Text(name), Text(text))
        console.print(Padding(grid, (0, 0, 0, 2)), highlight=False)
    return 0
