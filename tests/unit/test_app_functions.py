"""The step Lambdas are listed once (the action families, then the participants'), and what
app.py binds, the light entry handlers and the packaged Chalice settings are derived from it."""

from __future__ import annotations

from typing import Any

import pytest

import app as app_module
from chalicelib.demo import FAMILIES
from chalicelib.domain.lifecycle import LAMBDA_MAX_TIMEOUT_S
from chalicelib.roots import step_entry as entry
from chalicelib.roots import step_functions
from chalicelib.roots.step_names import PARTICIPANT_FAMILIES, function_name
from infra.deploy.aws import chalice_config, packaged_chalice_config

STEP_LAMBDAS = {function_name(family) for family in [*FAMILIES, *PARTICIPANT_FAMILIES]}


def test_each_family_has_a_step_lambda_whose_handler_exists() -> None:
    functions = {fn.name: fn.handler_string for fn in app_module.app.pure_lambda_functions}
    assert {name for name in functions if name.startswith("step_")} == STEP_LAMBDAS
    for name in [*STEP_LAMBDAS, "saga_recorder"]:
        assert functions[name] == f"app.{name}"
        assert callable(getattr(app_module, name))


def test_the_entry_handlers_are_the_families_own() -> None:
    assert set(entry.STEP_HANDLERS) == STEP_LAMBDAS
    assert set(entry.HANDLERS) == {*STEP_LAMBDAS, "saga_recorder"}
    for name, handler in entry.HANDLERS.items():
        # Lambda resolves chalicelib.roots.step_entry.<name>.
        assert getattr(entry, name) is handler and handler.__name__ == name


def test_the_apps_step_functions_are_stand_ins_that_run_the_entry_handlers(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # The same names in the same order as the entry's, so Chalice packages the same functions.
    assert tuple(entry.HANDLERS) == step_functions.FUNCTION_NAMES
    calls: list[tuple[Any, ...]] = []

    def payment(event: dict[str, Any], context: Any) -> dict[str, Any]:
        calls.append((event, context))
        return {"ran": "step_payment"}

    monkeypatch.setitem(entry.HANDLERS, "step_payment", payment)
    context = object()
    assert app_module.step_payment({"step_id": "s"}, context) == {"ran": "step_payment"}
    assert calls == [({"step_id": "s"}, context)]


def test_every_step_lambda_may_run_as_long_as_a_step_waits() -> None:
    assert not {name for name in chalice_config()["lambda_functions"]
                if name.startswith("step_")}, "step Lambdas are configured when packaged"
    packaged = packaged_chalice_config()["lambda_functions"]
    assert {name for name in packaged if name.startswith("step_")} == STEP_LAMBDAS
    for name in STEP_LAMBDAS:
        assert packaged[name] == {"lambda_timeout": LAMBDA_MAX_TIMEOUT_S}
    assert packaged["saga_recorder"] == {"lambda_timeout": 60}  # the rest stay as written
