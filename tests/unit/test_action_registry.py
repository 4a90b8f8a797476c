"""The built-in action registry and the pure input parsing behind the actions."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from chalicelib import demo as actions
from chalicelib.demo import BUILTIN_ACTIONS, FAMILIES, FAMILY_OF, inputs
from chalicelib.domain.step_context import PermanentError, StepContext

REQUIRED = {
    "validate_payment": "payment", "cancel_payment": "payment",
    "process_payment": "payment", "refund_payment": "payment",
    "send_notification": "notification", "cancel_notification": "notification",
    "create_order": "order", "cancel_order": "order",
    "reserve_inventory": "inventory", "release_inventory": "inventory",
    "create_shipment": "shipping", "cancel_shipment": "shipping",
    "create_user": "user", "delete_user": "user",
}


def test_every_required_action_is_registered_in_its_family() -> None:
    assert {name: FAMILY_OF[name] for name in REQUIRED} == REQUIRED
    assert set(FAMILY_OF) == set(BUILTIN_ACTIONS)
    assert all(callable(fn) for fn in BUILTIN_ACTIONS.values())


def test_families_partition_the_actions() -> None:
    assert set(FAMILIES) == {"payment", "order", "inventory", "shipping", "notification",
                             "user"}
    assert sum(len(family) for family in FAMILIES.values()) == len(BUILTIN_ACTIONS)
    for family, members in FAMILIES.items():
        assert all(FAMILY_OF[name] == family for name in members)


def test_a_name_in_two_families_is_refused() -> None:
    fn = BUILTIN_ACTIONS["cancel_payment"]
    with pytest.raises(ValueError, match="'noop' of family 'b' is defined twice"):
        actions._merge({"a": {"noop": fn}, "b": {"noop": fn}})


def _ctx(saga_input: dict[str, Any], config: dict[str, Any] | None = None) -> StepContext:
    return StepContext(execution_id="e-1", saga_id="s", step_id="step", phase="action",
                       attempt=0, saga_input=saga_input, config=config or {},
                       cursor=None)  # type: ignore[arg-type]  # parsing never touches it


def test_config_overrides_the_saga_input() -> None:
    ctx = _ctx({"amount": "1.00", "sku": "a"}, {"amount": "2.50", "sku": None})
    assert inputs.amount(ctx) == Decimal("2.50")
    assert inputs.text(ctx, "sku") == "a"  # a null in config does not hide the input
    assert inputs.text(ctx, "carrier", default="demo-post") == "demo-post"
    assert inputs.derived_id("ord", ctx) == "ord-e-1"


@pytest.mark.parametrize(("raw", "expected"), [
    ("25", "25.00"), ("25.1", "25.10"), (" 0.01 ", "0.01"), (7, "7.00"), (7.5, "7.50"),
    ("25.000", "25.00"), ("9999999999999999.99", "9999999999999999.99"),
])
def test_amounts_accepted(raw: Any, expected: str) -> None:
    assert str(inputs.parse_amount(raw)) == expected


@pytest.mark.parametrize(("raw", "message"), [
    (None, "required"), ("", "not a decimal"), ("abc", "not a decimal"), ("0", "positive"),
    ("-3", "positive"), ("NaN", "positive"), ("Infinity", "positive"),
    ("1.001", "2 decimal places"), (0.1 + 0.2, "2 decimal places"),
    ("10000000000000000", "at most"), ("1e30", "at most"), (True, "decimal string"),
    ([1], "decimal string"),
])
def test_amounts_refused(raw: Any, message: str) -> None:
    with pytest.raises(PermanentError, match=message):
        inputs.parse_amount(raw)


@pytest.mark.parametrize(("raw", "expected"), [(1, 1), ("12", 12), (1_000_000, 1_000_000)])
def test_quantities_accepted(raw: Any, expected: int) -> None:
    assert inputs.parse_quantity(raw) == expected


@pytest.mark.parametrize("raw", [0, -1, 1_000_001, 2.5, "2.5", "x", True, None])
def test_quantities_refused(raw: Any) -> None:
    with pytest.raises(PermanentError):
        inputs.parse_quantity(raw)


def test_currency_email_and_text() -> None:
    assert inputs.parse_currency(" eur ") == "EUR"
    for bad in ("EURO", "E1R", 978, None):
        with pytest.raises(PermanentError):
            inputs.parse_currency(bad)
    assert inputs.email(_ctx({"email": " a@b.io "})) == "a@b.io"
    for bad in ("a@b", "a b@c.io", "@c.io", "a@@c.io"):
        with pytest.raises(PermanentError, match="not an email"):
            inputs.email(_ctx({"email": bad}))
    with pytest.raises(PermanentError, match="at most 3 characters"):
        inputs.parse_text("abcd", "sku", max_length=3)
    with pytest.raises(PermanentError, match="non-empty string"):
        inputs.parse_text("   ", "sku")
