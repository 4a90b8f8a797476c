"""The layer contracts (pyproject.toml's [tool.importlinter], run by `make lint`) hold on the
tree, and a module importing the wrong way breaks them: checked on a copy of chalicelib/ with a
domain module that imports an adapter, so the real tree never holds the probe."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[2]
LINT_IMPORTS = str(Path(sys.executable).with_name("lint-imports"))
LAYERS = "chalicelib layers: roots > http"


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    # The copy comes first on the path, ahead of the checkout the venv has installed.
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run([LINT_IMPORTS, "--no-cache"], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


def test_the_tree_keeps_every_contract() -> None:
    run = _lint(ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "BROKEN" not in run.stdout


def test_a_domain_module_importing_an_adapter_breaks_the_layers(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    shutil.copytree(ROOT / "chalicelib", tmp_path / "chalicelib",
                    ignore=shutil.ignore_patterns("__pycache__", "console", "*.json", "*.sql"))
    probe = tmp_path / "chalicelib" / "domain" / "_forbidden_probe.py"
    probe.write_text("from chalicelib.adapters.mysql import connector  # noqa: F401\n")

    run = _lint(tmp_path)

    assert run.returncode != 0, run.stdout
    out = " ".join(run.stdout.split())  # the report wraps long lines
    assert f"{LAYERS}" in out and "BROKEN" in out
    assert "chalicelib.domain is not allowed to import chalicelib.adapters" in out
    assert "chalicelib.domain._forbidden_probe -> chalicelib.adapters.mysql.connector" in out
