"""The packaged AWS template passes cfn-lint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from infra.deploy.aws import package


@pytest.fixture(scope="module")
def template_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return package("prod", tmp_path_factory.mktemp("aws"), with_dependencies=False)


def test_the_prod_template_passes_cfn_lint(template_path: Path) -> None:
    lint = Path(sys.executable).with_name("cfn-lint")
    result = subprocess.run([str(lint), str(template_path)], capture_output=True, text=True,
                            timeout=300, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
