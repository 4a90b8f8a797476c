"""Fresh venvs with the participant SDK installed, on Python 3.9 (from its source tree) and
3.13 (from its built wheel): one per Python per session (fixtures in tests/conftest.py); pip's
cache makes reruns quick.

An interpreter is looked up as $SAGA_PYTHON_3_9 / $SAGA_PYTHON_3_13, then pyenv's versions,
then python3.X on the PATH; a Python that is not there skips, naming what was looked for.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
SDK = ROOT / "sdk" / "python"
PIP_TIMEOUT_S = 600


def _version_of(python: str) -> tuple[int, int] | None:
    try:
        run = subprocess.run([python, "-c", "import sys; print(*sys.version_info[:2])"],
                             capture_output=True, text=True, timeout=30, check=False)
    except OSError:
        return None
    if run.returncode != 0:
        return None
    major, minor = run.stdout.split()
    return int(major), int(minor)


def find_python(version: str) -> tuple[str | None, list[str]]:
    """An interpreter of this version, and where it was looked for."""
    wanted = tuple(int(part) for part in version.split("."))
    variable = f"SAGA_PYTHON_{version.replace('.', '_')}"
    pyenv = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates = [os.environ.get(variable, "")]
    candidates += sorted(glob.glob(str(pyenv / "versions" / f"{version}.*" / "bin" / "python")),
                         key=lambda path: [int(p) for p in Path(path).parents[1].name.split(".")
                                           if p.isdigit()], reverse=True)
    candidates.append(shutil.which(f"python{version}") or "")
    for candidate in filter(None, candidates):
        if _version_of(candidate) == wanted:
            return candidate, []
    return None, [f"${variable}", str(pyenv / "versions" / f"{version}.*"), f"python{version}"]


def run_clean(args: list[str], cwd: Path, timeout: float = PIP_TIMEOUT_S) -> str:
    # Nothing of this checkout's environment: the venv sees only what it installed.
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "PIP_REQUIRE_VIRTUALENV")}
    run = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=timeout, check=False)
    assert run.returncode == 0, f"{' '.join(args)}:\n{run.stdout}\n{run.stderr}"
    return run.stdout


def sdk_source(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of sdk/python: pip builds in the source tree (build/, *.egg-info), and the
    checkout keeps none of that."""
    copy = tmp_path_factory.mktemp("sdk-source") / "python"
    shutil.copytree(SDK, copy, ignore=shutil.ignore_patterns(
        "build", "dist", "*.egg-info", "__pycache__", ".ruff_cache"))
    return copy


def sdk_wheel(tmp_path_factory: pytest.TempPathFactory, sdk_source: Path) -> Path:
    """The SDK built as a wheel, once (by the running Python's pip)."""
    out = tmp_path_factory.mktemp("sdk-wheel")
    run_clean([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--wheel-dir",
          str(out), str(sdk_source)], cwd=out)
    [wheel] = out.glob("saga_participant-*.whl")
    return wheel


def sdk_venvs(tmp_path_factory: pytest.TempPathFactory, sdk_source: Path,
              sdk_wheel: Path) -> Callable[[str], Path]:
    """version -> the python of a fresh venv with the SDK installed: from the source tree on
    the oldest Python, from the wheel on the newest. Made once per session."""
    made: dict[str, Path] = {}

    def venv(version: str) -> Path:
        if version not in made:
            python, looked = find_python(version)
            if python is None:
                pytest.skip(f"no Python {version} on this machine (looked at "
                            f"{', '.join(looked)}); CI has one")
            home = tmp_path_factory.mktemp(f"sdk-py{version}")
            run_clean([python, "-m", "venv", str(home / "venv")], cwd=home)
            bin_python = home / "venv" / "bin" / "python"
            source = str(sdk_source) if version == "3.9" else str(sdk_wheel)
            run_clean([str(bin_python), "-m", "pip", "install", "--quiet",
                  "--disable-pip-version-check", source], cwd=home)
            made[version] = bin_python
        return made[version]

    return venv


