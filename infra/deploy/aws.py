"""Packaging for AWS: `chalice package` (SAM) merged with infra/aws/resources.json.

Chalice creates the REST and WebSocket APIs, every Lambda and the schedules; the merge
template adds what it cannot: the Step Functions role, the projector's Kafka event source, the
404 for unknown routes, and the configuration, taken from parameters and Secrets Manager (no
secret in the template or the repository).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from infra.stack.paths import PROJECT_ROOT

MERGE_TEMPLATE = PROJECT_ROOT / "infra" / "aws" / "resources.json"
_SOURCES = ("app.py", "chalicelib", "configs", ".chalice")


def runtime_requirements() -> list[str]:
    """The service's own dependencies (not the dev ones), as pyproject.toml pins them."""
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"])


def package(stage: str, out_dir: Path, *, region: str = "us-east-1",
            with_dependencies: bool = True) -> Path:
    """Write the deployment package and SAM template of a stage to out_dir; the template."""
    build = out_dir / "build"
    shutil.rmtree(build, ignore_errors=True)
    build.mkdir(parents=True)
    for name in _SOURCES:
        source = PROJECT_ROOT / name
        if source.is_dir():
            shutil.copytree(source, build / name,
                            ignore=shutil.ignore_patterns("__pycache__", "deployments"))
        else:
            shutil.copy2(source, build / name)
    if with_dependencies:
        # Chalice bundles what requirements.txt names, as Linux wheels for Lambda.
        (build / "requirements.txt").write_text("\n".join(runtime_requirements()) + "\n")
    chalice = str(Path(sys.executable).with_name("chalice"))
    env = {**os.environ, "AWS_DEFAULT_REGION": region}
    result = subprocess.run([chalice, "package", "--stage", stage, "--merge-template",
                             str(MERGE_TEMPLATE), str(out_dir / "package")],
                            cwd=build, env=env, capture_output=True, text=True, check=False,
                            timeout=900)
    if result.returncode != 0:
        raise RuntimeError(f"chalice package failed:\n{result.stdout}{result.stderr}")
    template_path = out_dir / "package" / "sam.json"
    template = json.loads(template_path.read_text())
    template["Parameters"]["Stage"]["Default"] = stage
    template_path.write_text(json.dumps(template, indent=2) + "\n")
    return template_path
