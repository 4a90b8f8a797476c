"""asl-validator (npm) for the tests: installed once under the stack folder, run in batches."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

from infra.stack.paths import StackPaths

PACKAGE = "asl-validator@4.0.0"
SCRIPT = Path(__file__).with_name("validate_asl.js")


class AslValidator:
    def __init__(self, prefix: Path) -> None:
        self.prefix = prefix

    @classmethod
    def installed(cls) -> AslValidator:
        prefix = StackPaths.default().opt / "asl-validator"
        if not (prefix / "node_modules" / "asl-validator" / "package.json").is_file():
            if shutil.which("npm") is None:
                raise RuntimeError("npm is needed to install asl-validator for the tests")
            prefix.mkdir(parents=True, exist_ok=True)
            subprocess.run(["npm", "install", "--silent", "--no-audit", "--no-fund",
                            "--prefix", str(prefix), PACKAGE], check=True, timeout=300)
        return cls(prefix)

    def validate(self, definitions: list[dict[str, Any]]) -> list[str]:
        """One error text per definition, empty where it is valid."""
        env = {**os.environ, "NODE_PATH": str(self.prefix / "node_modules")}
        result = subprocess.run(["node", str(SCRIPT)], input=json.dumps(definitions), env=env,
                                capture_output=True, text=True, check=True, timeout=120)
        return [entry["errors"] for entry in json.loads(result.stdout)]
