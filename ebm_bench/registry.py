"""One registry class behind the four kinds of plug-in: methods, datasets, architectures (nets) and metrics.

A registry module builds its registry from its own built-in implementations (it imports them, never the
reverse). Users add to it three ways, all ending in `Registry.add`:
- a decorator (`@ebm_bench.register_method("lsgan")`) in their own code;
- a plain Python file passed with `--plugin FILE.py`, which is imported and uses the decorators;
- an installed package's entry point in the group `ebm_bench.<kind>s`, loaded once per process on first lookup.
"""

from __future__ import annotations

import importlib.util
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Callable, Generic, Iterator, TypeVar

from .errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """Name -> implementation, with a check run on everything added and entry points loaded lazily.

    `adopt(name, loaded)` turns what an entry point loads into an item (or None when loading it already
    registered itself through a decorator); `check(name, item)` raises ConfigError for an item that breaks the
    kind's contract, and may return a normalised item.
    """

    def __init__(self, kind: str, check: Callable[[str, T], T], adopt: Callable[[str, Any], T | None],
                 builtins: dict[str, T], label: str | None = None):
        self.kind = label or kind  # what messages call it ("architecture" for the group ebm_bench.nets)
        self.group = f"ebm_bench.{kind}s"
        self._check, self._adopt = check, adopt
        self._items: dict[str, T] = {}
        self._entry_points_loaded = False
        for name, item in builtins.items():
            self.add(name, item)

    def add(self, name: str, item: T) -> T:
        if not isinstance(name, str) or not name or any(c.isspace() or c == "," for c in name):
            raise ConfigError(f"a {self.kind} name must be a non-empty word without spaces or commas, got {name!r}")
        self._items[name] = self._check(name, item)
        return item

    def _load_entry_points(self) -> None:
        if self._entry_points_loaded:
            return
        self._entry_points_loaded = True  # scanning installed packages is slow: once per process
        for entry in entry_points(group=self.group):
            if entry.name in self._items:
                continue
            try:
                loaded = entry.load()
            except Exception as err:  # noqa: BLE001 (a broken package must name itself, not crash the CLI)
                raise ConfigError(f"the {self.kind} entry point {entry.name!r} ({entry.value}) failed to load: "
                                  f"{type(err).__name__}: {err}. Fix or uninstall the package that declares it"
                                  ) from None
            item = self._adopt(entry.name, loaded)
            if item is not None and entry.name not in self._items:
                self.add(entry.name, item)

    def all(self) -> dict[str, T]:
        self._load_entry_points()
        return dict(sorted(self._items.items()))

    def get(self, name: str) -> T:
        items = self.all()
        if name not in items:
            raise ConfigError(f"unknown {self.kind} {name!r}; known {self.kind}s: {', '.join(items) or 'none'} "
                              f"(add your own with --plugin FILE.py; see `ebm-bench list`)")
        return items[name]

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def items(self):
        return self.all().items()

    def __contains__(self, name: object) -> bool:
        return name in self.all()

    def __iter__(self) -> Iterator[str]:
        return iter(self.all())

    def __len__(self) -> int:
        return len(self.all())


def load_plugin(path: str | Path) -> None:
    """Import a user's Python file so that its decorators register methods, datasets, nets or metrics."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise ConfigError(f"plugin file not found: {path}; pass --plugin PATH/TO/FILE.py")
    module_name = f"ebm_bench_plugin_{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ConfigError(f"plugin {path} is not a Python file; pass a .py file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # dataclasses look their module up here
    try:
        spec.loader.exec_module(module)
    except SyntaxError as err:
        sys.modules.pop(module_name, None)
        raise ConfigError(f"plugin {path} has a syntax error at line {err.lineno}: {err.msg}; fix the file") from None
    except ConfigError:
        sys.modules.pop(module_name, None)
        raise
    except Exception as err:  # noqa: BLE001 (report which file broke, without a traceback)
        sys.modules.pop(module_name, None)
        raise ConfigError(f"plugin {path} raised {type(err).__name__} while loading: {err}; fix the file") from None
