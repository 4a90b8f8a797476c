"""HTTP lives at the edge: domain errors carry a kind, one table makes it a status and a code,
and the use cases take typed requests, never a raw body."""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib.domain.errors import ErrorKind, SagaError
from chalicelib.http.http_errors import HTTP_ERRORS, http_error, http_status
from chalicelib.usecases.definitions import DefinitionService
from chalicelib.usecases.executions import ExecutionService

ROOT = Path(__file__).parents[2]

# The codes the API has always answered with: a client may branch on any of them.
PUBLISHED = {
    "bad_request": 400, "malformed_body": 400, "validation_failed": 400, "not_storable": 400,
    "unauthenticated": 401, "forbidden": 403, "not_found": 404, "conflict": 409,
    "already_resolved": 409, "payload_too_large": 413, "too_large": 413, "limit_reached": 422,
    "rate_limited": 429, "internal_error": 500, "database_unavailable": 503,
    "orchestrator_unavailable": 503,
}


def test_every_kind_has_one_row_and_every_published_code_keeps_its_status() -> None:
    assert set(HTTP_ERRORS) == set(ErrorKind)
    assert {code: status for status, code in HTTP_ERRORS.values()} == PUBLISHED


# The modules that define errors: importing them registers their classes.
ERROR_MODULES = ("chalicelib.adapters.mysql.connector", "chalicelib.adapters.mysql.rate_limit",
                 "chalicelib.http.api", "chalicelib.http.auth", "chalicelib.domain.storable",
                 "chalicelib.domain.validation")


def _error_classes() -> list[type[SagaError]]:
    for module in ERROR_MODULES:
        importlib.import_module(module)
    found: list[type[SagaError]] = []
    stack: list[type[SagaError]] = [SagaError]
    while stack:
        cls = stack.pop()
        found.append(cls)
        stack.extend(cls.__subclasses__())
    return [cls for cls in found if cls.__module__.startswith("chalicelib.")]


@pytest.mark.parametrize("cls", _error_classes(), ids=lambda cls: cls.__qualname__)
def test_domain_errors_know_no_http_status(cls: type[SagaError]) -> None:
    assert not hasattr(cls, "status") and "code" not in vars(cls)
    assert cls.kind in HTTP_ERRORS


def test_a_subclass_keeps_its_own_kind() -> None:
    from chalicelib.domain.errors import Conflict
    from chalicelib.usecases.executions import AlreadyResolved

    refused = AlreadyResolved("decided", execution_id="e1")
    assert isinstance(refused, Conflict)
    assert http_error(refused.kind) == (409, "already_resolved")
    assert http_status(Conflict("no")) == 409


@pytest.mark.parametrize("service", [DefinitionService, ExecutionService])
def test_no_use_case_takes_raw_json(service: type) -> None:
    for name, method in inspect.getmembers(service, inspect.isfunction):
        if name.startswith("_"):
            continue
        for parameter in inspect.signature(method).parameters.values():
            annotation = str(parameter.annotation)
            assert "Any" not in annotation and parameter.name not in ("body", "payload"), (
                f"{service.__name__}.{name}({parameter.name}: {annotation})")


def test_request_models_are_built_on_first_use_not_when_the_app_loads() -> None:
    code = ("import app\n"
            "from chalicelib.domain import requests as r\n"
            "models = (r.ExecuteRequest, r.CompensateRequest, r.ResolveRequest, "
            "r.ActiveRequest)\n"
            "print(sum(m.__pydantic_complete__ for m in models))\n"
            "r.parse_request(r.ExecuteRequest, {'input': {'a': 1}})\n"
            "print(int(r.ExecuteRequest.__pydantic_complete__))\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                         text=True, timeout=120, check=True,
                         env={**os.environ, "SAGA_STAGE": "local"}).stdout.split()
    assert out == ["0", "1"]
