"""Check the import layers (import-linter's contract in pyproject.toml) and that no import cycle exists.

`methods/` and `metrics/` install as `ebm_bench.methods` and `ebm_bench.metrics` through package-dir, so the
package is not one folder on disk, and grimp (import-linter's graph builder) scans folders. This script stages
the installed layout, ebm_bench/ with methods/ and metrics/ inside it, in a temporary folder and checks that.
Run: `python tests/lint_imports.py` (nox and CI do).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def stage(into: Path) -> Path:
    package = into / "ebm_bench"
    ignore = shutil.ignore_patterns("__pycache__", "*.pt", "*.toml")
    shutil.copytree(REPO / "ebm_bench", package, ignore=ignore)
    for sub in ("methods", "metrics"):
        shutil.copytree(REPO / sub, package / sub, ignore=ignore)
    return into


def cycles(root: Path) -> list[list[str]]:
    """Import cycles among the staged modules (in a fresh interpreter, so that only the staged copy is seen)."""
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--cycles-json"], env=os.environ
                         | {"PYTHONPATH": str(root)}, cwd=root, capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def _cycles_here() -> list[list[str]]:
    """Strongly connected components of more than one module in the import graph (each one holds a cycle)."""
    import grimp

    graph = grimp.build_graph("ebm_bench", cache_dir=None)
    edges = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for module in sorted(edges):
        if module not in index:
            visit(module)
    return found


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        root = stage(Path(tmp))
        env = os.environ | {"PYTHONPATH": str(root)}
        layers = subprocess.run([sys.executable, "-c", "from importlinter.cli import lint_imports_command as c; c()",
                                 "--config", str(REPO / "pyproject.toml"), "--no-cache"], env=env, cwd=root)
        found = cycles(root)
    for component in found:
        print("import cycle between: " + ", ".join(component))
    return 1 if layers.returncode or found else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--cycles-json"]:
        print(json.dumps(_cycles_here()))
        sys.exit(0)
    sys.exit(main())
