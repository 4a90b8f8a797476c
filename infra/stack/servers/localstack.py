"""LocalStack (Step Functions, Lambda, API Gateway REST, IAM, Logs, ...) on the host, no Docker.

LocalStack 2026.3 needs Python 3.12+, so it gets its own virtual environment, installed with the
upstream lock as constraints. Lambdas run as local processes of the project's Python through the
executor plugin in infra/lambda_executor.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from chalicelib.config import AwsSettings
from infra.stack.paths import PROJECT_ROOT, StackPaths
from infra.stack.process import StackError, run
from infra.stack.server import Server, project_python

VERSION = "2026.3.0"
CONSTRAINTS = Path(__file__).resolve().parents[1] / "localstack-constraints.txt"
EXECUTOR_PACKAGE = PROJECT_ROOT / "infra" / "lambda_executor"
EXECUTOR_PLUGIN = "local-process"
SERVICES = ("stepfunctions", "lambda", "iam", "logs", "sts", "apigateway", "s3", "sqs",
            "cloudformation", "events", "secretsmanager", "ssm")


def find_python_312_plus() -> str:
    """A Python 3.12+ interpreter for LocalStack, or a StackError that says where we looked."""
    candidates: list[str] = []
    if override := os.environ.get("SAGA_LOCALSTACK_PYTHON"):
        candidates.append(override)
    candidates += [found for name in ("python3.13", "python3.12")
                   if (found := shutil.which(name))]
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    versions = Path(pyenv_root) / "versions"
    if versions.is_dir():
        for version_dir in sorted(versions.iterdir(), reverse=True):
            if re.fullmatch(r"3\.(1[2-9])\.\d+", version_dir.name):
                candidates.append(str(version_dir / "bin" / "python3"))
    for candidate in candidates:
        probe = subprocess.run([candidate, "-c", "import sys; print(sys.version_info >= (3, 12))"],
                               capture_output=True, text=True, check=False)
        if probe.stdout.strip() == "True":
            return candidate
    raise StackError("LocalStack needs Python 3.12 or newer and none was found (looked at "
                     "$SAGA_LOCALSTACK_PYTHON, python3.13, python3.12 and pyenv versions). "
                     "Install one, or point SAGA_LOCALSTACK_PYTHON at it.")


class LocalStack(Server):
    name = "localstack"
    start_timeout = 90.0
    stop_grace = 20.0

    def __init__(self, paths: StackPaths, settings: AwsSettings) -> None:
        super().__init__(paths)
        endpoint = urlsplit(settings.endpoint_url or "http://127.0.0.1:4566")
        self.host = endpoint.hostname or "127.0.0.1"
        self.port = endpoint.port or 4566
        self.region = settings.region

    @property
    def venv(self) -> Path:
        return self.paths.opt / "localstack" / "venv"

    @property
    def python(self) -> Path:
        return self.venv / "bin" / "python"

    def _stamp(self) -> Path:
        # Written after a complete install; its content changes when what we install changes.
        return self.venv / ".saga-install-stamp"

    def _wanted_stamp(self) -> str:
        executor_files = sorted(p for p in EXECUTOR_PACKAGE.rglob("*")
                                if p.is_file() and "__pycache__" not in p.parts
                                and ".egg-info" not in str(p) and "build" not in p.parts)
        digest = "".join(f"{p.relative_to(EXECUTOR_PACKAGE)}:{p.stat().st_size};"
                         for p in executor_files)
        return f"localstack-core=={VERSION}\n{CONSTRAINTS.stat().st_size}\n{digest}\n"

    def is_installed(self) -> bool:
        stamp = self._stamp()
        return stamp.is_file() and stamp.read_text() == self._wanted_stamp()

    def install(self) -> None:
        if not self.python.exists():
            run([find_python_312_plus(), "-m", "venv", str(self.venv)], timeout=300)
            run([str(self.python), "-m", "pip", "install", "--quiet", "--upgrade", "pip"])
        run([str(self.python), "-m", "pip", "install", "--quiet",
             f"localstack-core[runtime]=={VERSION}", "-c", str(CONSTRAINTS)], timeout=1800)
        run([str(self.python), "-m", "pip", "install", "--quiet", "--force-reinstall",
             "--no-deps", str(EXECUTOR_PACKAGE)], timeout=300)
        self._stamp().write_text(self._wanted_stamp())

    def command(self) -> list[str]:
        return [str(self.python), "-m", "localstack.runtime.main"]

    @property
    def marker(self) -> str:
        return "localstack.runtime.main"

    def environment(self) -> Mapping[str, str]:
        tmp = self.data_dir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env = {key: value for key, value in os.environ.items()
               if not key.startswith(("AWS_", "LOCALSTACK_", "PYTHON"))}
        env.update({
            "GATEWAY_LISTEN": self.address,
            # The default server ignores the host part and binds 0.0.0.0.
            "GATEWAY_SERVER": "hypercorn",
            "LOCALSTACK_HOST": self.address,
            "SQS_ENDPOINT_STRATEGY": "path",
            "DNS_ADDRESS": "0",
            "DISABLE_EVENTS": "1",
            "SKIP_SSL_CERT_DOWNLOAD": "1",
            "FILESYSTEM_ROOT": str(self.data_dir / "fs"),
            "TMPDIR": str(tmp),
            # plux caches plugin entry points; keep that cache with the stack, not in ~.
            "XDG_CACHE_HOME": str(self.data_dir / "cache"),
            "SERVICES": ",".join(SERVICES),
            "EAGER_SERVICE_LOADING": "0",
            "LAMBDA_RUNTIME_EXECUTOR": EXECUTOR_PLUGIN,
            # Lambdas run under the project's own Python 3.11 with its dependencies.
            "SAGA_LAMBDA_PYTHON": project_python(),
            "AWS_DEFAULT_REGION": self.region,
        })
        return env

    def url(self) -> str:
        return f"http://{self.address}"

    def health(self) -> dict[str, object] | None:
        try:
            with urllib.request.urlopen(f"{self.url()}/_localstack/health", timeout=2) as resp:
                return json.load(resp)
        except (urllib.error.URLError, OSError, ValueError):
            return None

    def is_healthy(self) -> bool:
        health = self.health()
        if not health:
            return False
        services = health.get("services", {})
        return isinstance(services, dict) and all(
            services.get(service) in ("available", "running")
            for service in ("stepfunctions", "lambda"))
