"""The SDK README's quickstart (sdk/python/examples/quickstart/), without the stack: its saga is
one the API accepts, and its two participants, served in-process, answer the service's own HTTP
client as the walkthrough says: an order reserves and charges; a declined card is a refusal the
saga does not retry, and the stock's compensation puts back what its action took.

Against `make run` the same files run as the README says (`run.py`); that needs the stack."""

from __future__ import annotations

import copy
import importlib.util
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from chalicelib.adapters.participants.http_client import http_participant
from chalicelib.config import load_settings
from chalicelib.domain.step_context import PermanentError, StepContext
from chalicelib.domain.validation import ValidationPolicy, check_definition

QUICKSTART = Path(__file__).parents[2] / "sdk" / "python" / "examples" / "quickstart"
POLICY = ValidationPolicy.from_settings(load_settings(environ={}).saga)
SAGA = json.loads((QUICKSTART / "saga.json").read_text())


def _load(name: str) -> ModuleType:
    """A fresh copy of an example module (its in-memory state new for each test)."""
    spec = importlib.util.spec_from_file_location(f"quickstart_{name}", QUICKSTART / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _ctx(step_id: str, phase: str, saga_input: dict[str, Any], **extra: Any) -> StepContext:
    return StepContext(execution_id="ex-1", saga_id=SAGA["id"], step_id=step_id, phase=phase,
                       attempt=1, saga_input=saga_input, config={},
                       cursor=None,  # type: ignore[arg-type]  # a participant never uses it
                       saga_version=SAGA["version"],
                       deadline=datetime.now(UTC) + timedelta(seconds=10), **extra)


Serve = Callable[..., str]


@pytest.fixture
def services(participant_server: Serve) -> dict[str, Any]:
    stock, payments = _load("stock"), _load("payments")
    return {"stock": stock, "payments": payments,
            "stock_url": participant_server(app=stock.app),
            "payments_url": participant_server(app=payments.app)}


def test_the_saga_is_one_the_api_accepts() -> None:
    saga = check_definition(copy.deepcopy(SAGA), POLICY)
    assert [step.id for step in saga.steps] == ["reserve", "charge"]


def test_run_points_the_saga_at_the_services_it_is_given() -> None:
    run = _load("run")
    moved = run.definition("http://127.0.0.1:9001", "http://127.0.0.1:9002/", "order-x")
    assert moved["id"] == "order-x"
    assert [s["action"] for s in moved["steps"]] == ["http://127.0.0.1:9001/reserve",
                                                     "http://127.0.0.1:9002/charge"]
    check_definition(moved, POLICY)
    assert run.DECLINED["card"].endswith("0002") and not run.ORDER["card"].endswith("0002")


def test_an_order_reserves_then_charges(services: dict[str, Any]) -> None:
    run = _load("run")
    reserve = http_participant(services["stock_url"] + "/reserve")
    reserved = reserve(_ctx("reserve", "action", {"sku": "sku-1", "quantity": 2}))
    assert reserved == {"reservation_id": "R-1", "sku": "sku-1", "quantity": 2}
    charge = http_participant(services["payments_url"] + "/charge")
    charged = charge(_ctx("charge", "action", {"card": run.ORDER["card"], "amount": "20.00",
                                               "reservation": "R-1"},
                          results={"reserve": reserved}))
    assert charged == {"charge_id": "CH-1", "amount": "20.00"}
    assert services["stock"].STOCK["sku-1"] == 98


def test_a_declined_card_is_refused_and_the_stock_released(services: dict[str, Any]) -> None:
    run = _load("run")
    order = {"sku": "sku-1", "quantity": 3}
    reserved = http_participant(services["stock_url"] + "/reserve")(
        _ctx("reserve", "action", order))
    assert services["stock"].STOCK["sku-1"] == 97
    charge = http_participant(services["payments_url"] + "/charge")
    with pytest.raises(PermanentError) as declined:  # the saga's "never retried"
        charge(_ctx("charge", "action", {"card": run.DECLINED["card"], "amount": "20.00",
                                         "reservation": reserved["reservation_id"]}))
    assert "422" in str(declined.value)
    # The participant's own error type is kept: the step's error is recorded under it.
    assert declined.value.error_type == "CardDeclined"
    assert services["payments"].CHARGES == {}
    release = http_participant(services["stock_url"] + "/release")
    released = release(_ctx("reserve", "compensation", order, action_result=reserved,
                            reason={"step_id": "charge", "type": "PermanentError",
                                    "message": "the card was declined"}))
    assert released == {"released": reserved["reservation_id"]}
    assert services["stock"].STOCK["sku-1"] == 100


def test_too_much_is_out_of_stock(services: dict[str, Any]) -> None:
    reserve = http_participant(services["stock_url"] + "/reserve")
    with pytest.raises(PermanentError) as refused:
        reserve(_ctx("reserve", "action", {"sku": "sku-2", "quantity": 1}))
    assert refused.value.error_type == "OutOfStock"
    # A compensation for the action that did nothing has nothing to undo.
    release = http_participant(services["stock_url"] + "/release")
    assert release(_ctx("reserve", "compensation", {"sku": "sku-2", "quantity": 1},
                        action_error={"type": "PermanentError", "message": "OutOfStock"})) == {
        "compensated": False, "reason": "nothing to undo: the action was never received"}
