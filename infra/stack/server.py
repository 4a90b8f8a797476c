"""What the supervisor needs to know about one local server."""

from __future__ import annotations

import os
import shutil
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path

from infra.stack.paths import StackPaths


class Server(ABC):
    """One server of the local stack: how to install, start, check and initialise it.

    Every method is idempotent; the supervisor calls them in order on each `up`.
    """

    name: str
    host: str = "127.0.0.1"
    port: int
    start_timeout: float = 60.0
    # How long `down` waits after SIGTERM before SIGKILL.
    stop_grace: float = 15.0

    def __init__(self, paths: StackPaths) -> None:
        self.paths = paths

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def data_dir(self) -> Path:
        return self.paths.data(self.name)

    @property
    def marker(self) -> str:
        """A string only this server's command line contains (see process.owned_pid)."""
        return str(self.data_dir)

    @abstractmethod
    def is_installed(self) -> bool: ...

    @abstractmethod
    def install(self) -> None: ...

    def prepare(self) -> None:
        """Create the data dir and config files before the first start."""
        self.data_dir.mkdir(parents=True, exist_ok=True)

    @abstractmethod
    def command(self) -> list[str]: ...

    def environment(self) -> Mapping[str, str]:
        return os.environ

    @abstractmethod
    def is_healthy(self) -> bool: ...

    def is_ready(self) -> bool:
        """Up enough for bootstrap to run (what a start waits for); usually just healthy."""
        return self.is_healthy()

    def bootstrap(self) -> None:  # noqa: B027 - optional hook, most servers need nothing
        """Create what the service needs on this server (databases, topics, ...)."""

    def url(self) -> str:
        return self.address


def find_executable(name: str, *extra_dirs: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    for directory in extra_dirs:
        candidate = Path(directory) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def project_python() -> str:
    """The interpreter the supervisor runs under: the project's own virtual environment."""
    return sys.executable
