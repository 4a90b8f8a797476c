"""Where the local stack keeps its installs, data, logs and PID files (all git-ignored)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class StackPaths:
    root: Path

    @classmethod
    def default(cls) -> StackPaths:
        # SAGA_STACK_DIR lets a second checkout or a test run keep its own stack.
        return cls(Path(os.environ.get("SAGA_STACK_DIR", PROJECT_ROOT / ".stack")).resolve())

    @property
    def opt(self) -> Path:
        return self.root / "opt"

    def data(self, server: str) -> Path:
        return self.root / "data" / server

    def log(self, server: str) -> Path:
        return self.root / "logs" / f"{server}.log"

    def pid(self, server: str) -> Path:
        return self.root / "run" / f"{server}.pid"

    def run_dir(self) -> Path:
        return self.root / "run"

    def ensure(self) -> None:
        for sub in ("opt", "data", "logs", "run"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
