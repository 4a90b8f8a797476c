"""The participant SDK (sdk/python/, `saga_participant`) owns the contract: the service names
the SDK's models and helper (every old import path still works), its own names agree with the
contract's, and the SDK stands alone on Python 3.9: it imports nothing of the service, and its
annotations hold no `X | Y` (pydantic evaluates them, and 3.9 cannot)."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
import saga_participant
from saga_participant import contract

import chalicelib.participant as old_helper
from chalicelib.domain import contract as service_contract
from chalicelib.domain import lifecycle

SDK = Path(__file__).parents[2] / "sdk" / "python"
SOURCES = sorted([*(SDK / "saga_participant").rglob("*.py"),
                  *(SDK / "examples").rglob("*.py")])


def test_the_service_builds_requests_with_the_sdks_models() -> None:
    for name in ("CONTRACT", "CONTRACT_HEADER", "IDEMPOTENCY_KEY_HEADER", "ParticipantRequest",
                 "ErrorInfo", "Reason", "CallbackInfo", "request_schema"):
        assert getattr(service_contract, name) is getattr(contract, name), name
    assert service_contract.CONTRACT_SCHEMA_FILE.is_file()


def test_the_old_helper_path_names_every_public_name_of_the_sdk() -> None:
    for name in saga_participant.__all__:
        assert getattr(old_helper, name) is getattr(saga_participant, name), name
    assert old_helper.Refuse("full").type == "Refused"


def test_the_services_names_are_the_contracts() -> None:
    assert {phase.value for phase in lifecycle.Phase} == {phase.value for phase in contract.Phase}
    assert lifecycle.PERMANENT_ERROR == contract.PERMANENT_ERROR
    assert contract.TRY_AGAIN not in lifecycle.NEVER_RETRIED
    # The SDK's Phase reads and writes as the service's does.
    assert f"{contract.Phase.ACTION}" == f"{lifecycle.Phase.ACTION}" == "action"
    assert contract.Phase("compensation") == lifecycle.Phase.COMPENSATION


def test_the_sdk_imports_nothing_of_the_service(tmp_path: Path) -> None:
    probe = ("import sys, saga_participant, saga_participant.client, saga_participant.testing; "
             "print(sorted({m.split('.')[0] for m in sys.modules} & "
             "{'chalicelib', 'infra', 'app', 'tests'}))")
    run = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                         text=True, timeout=60, env={**os.environ, "PYTHONPATH": str(SDK)})
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


@pytest.mark.parametrize("source", SOURCES, ids=lambda path: str(path.relative_to(SDK)))
def test_the_sdk_is_python_3_9(source: Path) -> None:
    tree = ast.parse(source.read_text(), feature_version=(3, 9))
    annotations = [node.annotation for node in ast.walk(tree)
                   if isinstance(node, (ast.AnnAssign, ast.arg)) and node.annotation]
    annotations += [node.returns for node in ast.walk(tree)
                    if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns]
    unions = [ast.unparse(a) for a in annotations
              if any(isinstance(n, ast.BinOp) and isinstance(n.op, ast.BitOr)
                     for n in ast.walk(a))]
    assert not unions, f"{source.name}: X | Y in annotations (3.10+): {unions}"
