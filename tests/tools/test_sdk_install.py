"""The participant SDK installs where teams run it: in a fresh venv on Python 3.9 and on 3.13
(tests/support/sdk_venvs.py), `pip install ./sdk/python` (3.9) or its built wheel (3.13)
brings pydantic and Powertools and nothing of the service, and check_sdk.py answers a refusal
through both front ends with the error protocol's bodies."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.support.sdk_venvs import run_clean

ROOT = Path(__file__).parents[2]
SDK = ROOT / "sdk" / "python"
CHECK = Path(__file__).with_name("sdk_install") / "check_sdk.py"
SCHEMA = ROOT / "chalicelib" / "domain" / "contract" / "saga-participant-1.json"
# What the service needs and a participant must not be made to install. (boto3 comes with
# Powertools' aws-sdk extra: its idempotency package imports it.)
SERVICE_ONLY = {"chalice", "pymysql", "pymongo", "kafka-python", "pyjwt", "saga-orchestrator",
                "pyyaml", "websockets", "cryptography"}
PIP_TIMEOUT_S = 600


@pytest.mark.parametrize("version", ["3.9", "3.13"])
def test_the_sdk_installs_and_answers_with_the_error_protocol(
        sdk_venvs: Callable[[str], Path], version: str, tmp_path: Path) -> None:
    python = sdk_venvs(version)
    report = json.loads(run_clean([str(python), str(CHECK), str(SCHEMA)], cwd=tmp_path,
                                  timeout=120))
    print(f"Python {version}: {report}")  # the versions pip chose, shown with -s
    assert report["python"].startswith(f"{version}.")
    assert Path(report["file"]).is_relative_to(python.parents[1])  # the installed copy
    listed = json.loads(run_clean([str(python), "-m", "pip", "list", "--format=json",
                              "--disable-pip-version-check"], cwd=tmp_path))
    names = {package["name"].lower().replace("_", "-") for package in listed}
    assert {"saga-participant", "pydantic", "aws-lambda-powertools"} <= names
    assert not names & SERVICE_ONLY, names & SERVICE_ONLY
