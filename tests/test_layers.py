"""The import layers hold and there is no import cycle; and the check does fail when either is broken."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
spec = importlib.util.spec_from_file_location("lint_imports", HERE / "lint_imports.py")
lint_imports = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lint_imports)


def lint(root: Path) -> subprocess.CompletedProcess:
    code = "from importlinter.cli import lint_imports_command as c; c()"
    return subprocess.run([sys.executable, "-c", code, "--config", str(HERE.parent / "pyproject.toml"), "--no-cache"],
                          env=os.environ | {"PYTHONPATH": str(root)}, cwd=root, capture_output=True, text=True)


def test_the_package_keeps_its_layers_and_has_no_cycle():
    assert lint_imports.main() == 0


@pytest.mark.parametrize("module, line, broken", [
    ("config.py", "from ebm_bench import cli  # noqa", "ebm_bench.config is not allowed to import ebm_bench.cli"),
    ("nets/mlp.py", "import ebm_bench.nets  # noqa", None),
])
def test_an_upward_import_or_a_cycle_is_caught(tmp_path, module, line, broken):
    root = lint_imports.stage(tmp_path)
    path = root / "ebm_bench" / module
    path.write_text(path.read_text() + "\n" + line + "\n")
    if broken:
        result = lint(root)
        assert result.returncode != 0 and broken in result.stdout
    else:  # nets/__init__ imports nets/mlp: mlp importing its package back is a cycle
        assert any({"ebm_bench.nets", "ebm_bench.nets.mlp"} <= set(c) for c in lint_imports.cycles(root))
