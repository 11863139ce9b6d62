"""One registry class behind the four kinds of plug-in: methods, datasets, architectures (nets) and metrics.

A registry module builds its registry from its own built-in implementations (it imports them, never the
reverse). Users add to it three ways, all ending in `Registry.add`:
- a decorator (`@ebm_bench.register_method("lsgan")`) in their own code;
- a plain Python file passed with `--plugin FILE.py`, which is imported and uses the decorators;
- an installed package's entry point in the group `ebm_bench.<kind>s`, loaded once per process on first lookup.

A name already taken by another source (a built-in, another plug-in) is refused unless the registration says
`replace=True`: a plug-in must not silently change what a built-in name means. The same source registering again
(a plug-in file loaded twice, a test module executed under a second name) replaces its own entry quietly.
"""

from __future__ import annotations

import importlib.util
import inspect
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
    kind's contract, and may return a normalised item. `origin(item)` is the function or class an item comes from
    (a DatasetSpec's loader, a Metric's function): where it is defined says who registered the item.
    """

    def __init__(self, kind: str, check: Callable[[str, T], T], adopt: Callable[[str, Any], T | None],
                 builtins: dict[str, T], label: str | None = None, origin: Callable[[T], Any] = lambda item: item):
        self.kind = label or kind  # what messages call it ("architecture" for the group ebm_bench.nets)
        self.group = f"ebm_bench.{kind}s"
        self.decorator = f"register_{kind}"
        self._check, self._adopt, self._origin = check, adopt, origin
        self._items: dict[str, T] = {}
        self._entry_points_loaded = False
        for name, item in builtins.items():
            self.add(name, item)

    def add(self, name: str, item: T, replace: bool = False) -> T:
        """Register `item` as `name`; a name another source registered needs `replace=True`."""
        if not isinstance(name, str) or not name or any(c.isspace() or c == "," for c in name):
            raise ConfigError(f"a {self.kind} name must be a non-empty word without spaces or commas, got {name!r}")
        checked = self._check(name, item)
        if name in self._items and not replace:
            old, new = source(self._origin(self._items[name])), source(self._origin(checked))
            if not same_source(old, new):
                raise ConfigError(f"{self.kind} {name!r} is registered twice: by {describe(old)} and by "
                                  f"{describe(new)}; give one another name, or pass replace=True "
                                  f"({self.decorator}({name!r}, ..., replace=True)) to replace the first")
        self._items[name] = checked
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


Source = tuple[str | None, str | None, str]  # (module, file, qualified name) of where an item is defined


def source(obj: Any) -> Source:
    """Where a registered function or class is defined."""
    obj = inspect.unwrap(obj) if callable(obj) and not isinstance(obj, type) else obj
    if not hasattr(obj, "__qualname__"):  # an instance: its class says where it comes from
        obj = type(obj)
    return getattr(obj, "__module__", None), _defining_file(obj), obj.__qualname__


def _defining_file(obj: Any) -> str | None:
    code = getattr(obj, "__code__", None)
    if code is not None:
        return None if code.co_filename.startswith("<") else code.co_filename
    if isinstance(obj, type):
        # a class's own functions name its file even when its module is not in sys.modules (a file executed under
        # a second module name); generated ones (dataclass __init__) say "<string>"
        for value in vars(obj).values():
            filename = getattr(getattr(value, "__code__", None), "co_filename", "<")
            if not filename.startswith("<"):
                return filename
        module = sys.modules.get(obj.__module__)
        return getattr(module, "__file__", None)
    return None


def same_source(a: Source, b: Source) -> bool:
    """One definition seen twice: the same name in the same file (a plug-in file loaded twice, a file executed
    under a second module name, a package's file also passed with --plugin), or in the same module when a file is
    unknown; an interactive session (__main__) redefining its own names."""
    (module_a, file_a, name_a), (module_b, file_b, name_b) = a, b
    if name_a != name_b:
        return False
    if module_a == module_b == "__main__":
        return True
    return file_a == file_b if file_a and file_b else module_a == module_b


def describe(where: Source) -> str:
    module, file, name = where
    return f"{name} in {file}" if file else f"{module}.{name}"


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
