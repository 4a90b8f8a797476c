"""The built-in actions against the real MariaDB: effects, exact compensation, refusals, rollback.

Each test starts from the same seeded demo data in a throwaway database; "back to where it was"
is checked by comparing demo_data.snapshot() before and after.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from chalicelib.adapters.mysql import connector as mysql
from chalicelib.adapters.mysql.connector import MySQLConnector
from chalicelib.adapters.mysql.migrate import migrate
from chalicelib.config import Settings
from chalicelib.demo import BUILTIN_ACTIONS, demo_data
from chalicelib.domain.step_context import ActionFn, PermanentError, StepContext

EXAMPLE = json.loads((Path(__file__).parents[1] / "fixtures" / "payment-saga.json").read_text())
INPUT: dict[str, Any] = {"customer_id": "alice", "amount": "25.00", "currency": "EUR",
                         "sku": "sku-1", "quantity": 2, "email": "alice@example.com",
                         "address": "1 Main Street, Springfield"}
ACCOUNTS = {"alice": "100.00", "bob": "10.00", "merchant": "0.00", "shop": "5.00"}


class Boom(Exception):
    """A failure after an action's work, inside the same transaction."""


# -- database and helpers ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def db_name(settings: Settings) -> Iterator[str]:
    name = f"{settings.database.mysql.database}_test_actions"
    mysql.recreate_database(settings.database.mysql, name)
    conn = mysql.connect(settings.database.mysql, database=name)
    try:
        assert "0003_demo_domain" in migrate(conn)
    finally:
        conn.close()
    yield name
    mysql.drop_database(settings.database.mysql, name)


@pytest.fixture(scope="module")
def connector(settings: Settings, db_name: str) -> Iterator[MySQLConnector]:
    connector = MySQLConnector(settings.database.mysql, database=db_name)
    yield connector
    connector.close()


@pytest.fixture(autouse=True)
def seeded(connector: MySQLConnector) -> None:
    with connector.transaction() as cur:
        demo_data.clear(cur)
        for account_id, balance in ACCOUNTS.items():
            demo_data.seed_account(cur, account_id, balance, "EUR")
        demo_data.seed_account(cur, "usd-shop", "0.00", "USD")
        demo_data.seed_stock(cur, "sku-1", 10)
        demo_data.seed_stock(cur, "sku-2", 3)


def _ctx(cursor: Any, execution_id: str, step_id: str, phase: str,
         saga_input: Mapping[str, Any], config: Mapping[str, Any] | None = None,
         results: Mapping[str, Mapping[str, Any]] | None = None) -> StepContext:
    return StepContext(execution_id=execution_id, saga_id="demo-saga", step_id=step_id,
                       phase=phase, attempt=0, saga_input=saga_input, config=config or {},
                       cursor=cursor, results=results or {})


def run(connector: MySQLConnector, fn: ActionFn, execution_id: str, step_id: str, *,
        phase: str = "action", saga_input: Mapping[str, Any] = INPUT,
        config: Mapping[str, Any] | None = None,
        results: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """One phase in one committed transaction, as the runtime runs it."""
    with connector.transaction() as cur:
        result = fn(_ctx(cur, execution_id, step_id, phase, saga_input, config, results))
    json.dumps(result)  # the runtime stores it as JSON
    return result


def state(connector: MySQLConnector) -> dict[str, Any]:
    with connector.transaction() as cur:
        return {"snapshot": demo_data.snapshot(cur), "rows": demo_data.row_counts(cur)}


def snap(connector: MySQLConnector) -> dict[str, Any]:
    return state(connector)["snapshot"]


def left_behind(connector: MySQLConnector, execution_id: str) -> dict[str, Any]:
    with connector.transaction() as cur:
        return demo_data.left_behind(cur, execution_id)


# -- one case per action/compensation pair -------------------------------------------------------

@dataclass(frozen=True)
class Pair:
    action: str
    compensation: str
    check: Callable[[dict[str, Any], dict[str, Any], dict[str, Any]], None]
    noop: dict[str, Any]  # what the compensation returns when there is nothing to undo
    saga_input: dict[str, Any] = field(default_factory=lambda: dict(INPUT))
    config: dict[str, Any] = field(default_factory=dict)
    results: dict[str, dict[str, Any]] = field(default_factory=dict)


def _validated(before: dict[str, Any], after: dict[str, Any], result: dict[str, Any]) -> None:
    assert after == before
    assert result == {"validated": True, "account_id": "alice", "amount": "25.00",
                      "currency": "EUR"}


def _charged(before: dict[str, Any], after: dict[str, Any], result: dict[str, Any]) -> None:
    assert after["accounts"]["alice"]["balance"] == "75.00"
    assert after["accounts"]["merchant"]["balance"] == "25.00"
    assert after["money"] == before["money"]
    assert after["ledger_net"] == {"alice": "-25.00", "merchant": "25.00"}
    assert result["amount"] == "25.00" and result["merchant_account"] == "merchant"


def _reserved(before: dict[str, Any], after: dict[str, Any], result: dict[str, Any]) -> None:
    assert after["stock"]["sku-1"] == {"available": 8, "reserved": 2}
    assert [(r["sku"], r["quantity"]) for r in after["reservations"]] == [("sku-1", 2)]
    assert result == {"reserved": [{"sku": "sku-1", "quantity": 2}]}


def _ordered(before: dict[str, Any], after: dict[str, Any], result: dict[str, Any]) -> None:
    [row] = after["orders"]
    assert row["order_id"] == result["order_id"] == f"ord-{row['execution_id']}"
    assert (row["customer_id"], row["amount"], row["currency"]) == ("alice", "25.00", "EUR")


def _shipped(before: dict[str, Any], after: dict[str, Any], result: dict[str, Any]) -> None:
    [row] = after["shipments"]
    assert row["order_id"] == result["order_id"] == "ord-from-results"
    assert row["address"] == INPUT["address"] and row["carrier"] == "demo-post"


def _notified(before: dict[str, Any], after: dict[str, Any], result: dict[str, Any]) -> None:
    [row] = after["unretracted_notifications"]
    assert row["recipient"] == "alice@example.com" and row["channel"] == "email"
    assert result["kind"] == "sent"


def _registered(before: dict[str, Any], after: dict[str, Any], result: dict[str, Any]) -> None:
    [row] = after["users"]
    assert row["email"] == "alice@example.com" and row["user_id"] == result["user_id"]


PAIRS = [
    Pair("validate_payment", "cancel_payment", _validated, {"cancelled": True}),
    Pair("process_payment", "refund_payment", _charged, {"refunded": "0.00", "currency": None}),
    Pair("reserve_inventory", "release_inventory", _reserved, {"released": []}),
    Pair("create_order", "cancel_order", _ordered, {"cancelled": False, "order_id": None}),
    Pair("create_shipment", "cancel_shipment", _shipped,
         {"cancelled": False, "shipment_id": None},
         results={"create-order": {"order_id": "ord-from-results"}}),
    Pair("send_notification", "cancel_notification", _notified, {"retracted": False}),
    Pair("create_user", "delete_user", _registered, {"deleted": False, "user_id": None}),
]
PAIR_IDS = [pair.action for pair in PAIRS]


def test_every_builtin_action_has_a_case() -> None:
    covered = {name for pair in PAIRS for name in (pair.action, pair.compensation)}
    assert covered == set(BUILTIN_ACTIONS)


@pytest.mark.parametrize("pair", PAIRS, ids=PAIR_IDS)
def test_action_takes_effect_and_compensation_restores_exactly(
        connector: MySQLConnector, pair: Pair, unique: str) -> None:
    execution, step = f"exec-{unique}", f"step-{pair.action}"
    before = snap(connector)
    result = run(connector, BUILTIN_ACTIONS[pair.action], execution, step,
                 saga_input=pair.saga_input, config=pair.config, results=pair.results)
    pair.check(before, snap(connector), result)

    run(connector, BUILTIN_ACTIONS[pair.compensation], execution, step, phase="compensation",
        saga_input=pair.saga_input, config=pair.config, results=pair.results)
    assert snap(connector) == before
    assert not any(left_behind(connector, execution).values())
    # The runtime never repeats a phase, but a second undo would still find nothing to do.
    run(connector, BUILTIN_ACTIONS[pair.compensation], execution, step, phase="compensation",
        saga_input=pair.saga_input, config=pair.config, results=pair.results)
    assert snap(connector) == before


@pytest.mark.parametrize("pair", PAIRS, ids=PAIR_IDS)
def test_compensation_without_its_action_changes_nothing(
        connector: MySQLConnector, pair: Pair, unique: str) -> None:
    # Another execution's effect must survive an unrelated compensation untouched.
    run(connector, BUILTIN_ACTIONS[pair.action], f"other-{unique}", "step",
        saga_input=pair.saga_input, config=pair.config, results=pair.results)
    before = state(connector)
    result = run(connector, BUILTIN_ACTIONS[pair.compensation], f"never-{unique}", "step",
                 phase="compensation", saga_input=pair.saga_input, config=pair.config,
                 results=pair.results)
    assert state(connector) == before
    assert result == pair.noop


@pytest.mark.parametrize("pair", PAIRS, ids=PAIR_IDS)
def test_failure_after_the_action_in_its_transaction_leaves_nothing(
        connector: MySQLConnector, pair: Pair, unique: str) -> None:
    before = state(connector)
    with pytest.raises(Boom), connector.transaction() as cur:
        BUILTIN_ACTIONS[pair.action](_ctx(cur, f"exec-{unique}", "step", "action",
                                          pair.saga_input, pair.config, pair.results))
        raise Boom("the runtime failed to record the step")
    assert state(connector) == before


@pytest.mark.parametrize("pair", PAIRS, ids=PAIR_IDS)
def test_failure_after_the_compensation_in_its_transaction_leaves_the_effect(
        connector: MySQLConnector, pair: Pair, unique: str) -> None:
    execution = f"exec-{unique}"
    run(connector, BUILTIN_ACTIONS[pair.action], execution, "step",
        saga_input=pair.saga_input, config=pair.config, results=pair.results)
    done = state(connector)
    with pytest.raises(Boom), connector.transaction() as cur:
        BUILTIN_ACTIONS[pair.compensation](_ctx(cur, execution, "step", "compensation",
                                                pair.saga_input, pair.config, pair.results))
        raise Boom("the runtime failed to record the compensation")
    assert state(connector) == done


# -- business refusals: PermanentError, and nothing changed ---------------------------------------

def _with(**changes: Any) -> dict[str, Any]:
    return {key: value for key, value in {**INPUT, **changes}.items() if value is not None}


REFUSALS: list[tuple[str, str, dict[str, Any], dict[str, Any], str]] = [
    # (id, action, input, config, message fragment)
    ("validate-poor", "validate_payment", _with(customer_id="bob"), {}, "insufficient funds"),
    ("validate-unknown", "validate_payment", _with(customer_id="zed"), {}, "unknown account"),
    ("validate-currency", "validate_payment", _with(currency="USD"), {}, "not USD"),
    ("validate-no-customer", "validate_payment", _with(customer_id=None), {},
     "customer_id is required"),
    ("amount-negative", "validate_payment", _with(amount="-1.00"), {}, "positive"),
    ("amount-zero", "process_payment", _with(amount=0), {}, "positive"),
    ("amount-3-places", "process_payment", _with(amount="1.001"), {}, "2 decimal places"),
    ("amount-text", "process_payment", _with(amount="ten"), {}, "not a decimal"),
    ("amount-bool", "process_payment", _with(amount=True), {}, "decimal string or number"),
    ("amount-missing", "process_payment", _with(amount=None), {}, "amount is required"),
    ("amount-huge", "process_payment", _with(amount="1e20"), {}, "at most"),
    ("currency-bad", "process_payment", _with(currency="euro"), {}, "3-letter"),
    ("pay-poor", "process_payment", _with(customer_id="bob"), {}, "insufficient funds"),
    ("pay-unknown", "process_payment", _with(customer_id="zed"), {}, "unknown account"),
    ("pay-no-merchant", "process_payment", INPUT, {"merchant_account": "nobody"},
     "unknown merchant"),
    ("pay-merchant-usd", "process_payment", INPUT, {"merchant_account": "usd-shop"},
     "merchant account usd-shop holds USD"),
    ("pay-self", "process_payment", INPUT, {"merchant_account": "alice"}, "cannot pay itself"),
    ("pay-config-amount", "process_payment", INPUT, {"amount": "100.01"}, "insufficient"),
    ("stock-unknown", "reserve_inventory", _with(sku="sku-404"), {}, "unknown sku"),
    ("stock-short", "reserve_inventory", _with(quantity=11), {}, "out of stock"),
    ("stock-second-item-short", "reserve_inventory",
     _with(items=[{"sku": "sku-1", "quantity": 5}, {"sku": "sku-2", "quantity": 4}]), {},
     "sku sku-2 has 3 available"),
    ("stock-repeated-sku-short", "reserve_inventory",
     _with(items=[{"sku": "sku-2", "quantity": 2}, {"sku": "sku-2", "quantity": 2}]), {},
     "out of stock"),
    ("quantity-zero", "reserve_inventory", _with(quantity=0), {}, "between 1 and"),
    ("quantity-fraction", "reserve_inventory", _with(quantity="2.5"), {}, "whole number"),
    ("items-not-list", "reserve_inventory", _with(items={"sku": "sku-1"}), {}, "items must"),
    ("items-bad-entry", "reserve_inventory", _with(items=[{"sku": "sku-1"}]), {},
     "items[0].quantity is required"),
    ("order-no-customer", "create_order", _with(customer_id=None), {}, "customer_id"),
    ("order-bad-amount", "create_order", _with(amount="abc"), {}, "not a decimal"),
    ("ship-no-address", "create_shipment", _with(address=None, order_id="ord-1"), {},
     "address is required"),
    ("ship-no-order", "create_shipment", INPUT, {}, "order_id is required"),
    ("ship-order-step-empty", "create_shipment", _with(order_id="ord-1"),
     {"order_step": "create-order"}, "has no order_id"),
    ("notify-no-recipient", "send_notification",
     _with(email=None, customer_id=None), {}, "recipient is required"),
    ("user-bad-email", "create_user", _with(email="not-an-email"), {}, "not an email"),
    ("user-no-email", "create_user", _with(email=None), {}, "email is required"),
]


@pytest.mark.parametrize(("action", "saga_input", "config", "message"),
                         [case[1:] for case in REFUSALS], ids=[case[0] for case in REFUSALS])
def test_business_refusals_raise_permanent_errors_and_change_nothing(
        connector: MySQLConnector, unique: str, action: str, saga_input: dict[str, Any],
        config: dict[str, Any], message: str) -> None:
    before = state(connector)
    with pytest.raises(PermanentError, match=re.escape(message)):
        run(connector, BUILTIN_ACTIONS[action], f"exec-{unique}", "step",
            saga_input=saga_input, config=config)
    # Row counts too: process_payment writes its ledger rows and reserve_inventory its
    # reservations before they find the refusal; the rollback must take those back.
    assert state(connector) == before


def test_an_order_id_or_email_in_use_is_a_permanent_refusal(
        connector: MySQLConnector, unique: str) -> None:
    taken = _with(order_id=f"ord-{unique}", email=f"{unique}@example.com")
    run(connector, BUILTIN_ACTIONS["create_order"], f"first-{unique}", "order", saga_input=taken)
    run(connector, BUILTIN_ACTIONS["create_user"], f"first-{unique}", "user", saga_input=taken)
    before = state(connector)
    with pytest.raises(PermanentError, match=f"order ord-{unique} already exists"):
        run(connector, BUILTIN_ACTIONS["create_order"], f"second-{unique}", "order",
            saga_input=taken)
    with pytest.raises(PermanentError, match="is already registered"):
        run(connector, BUILTIN_ACTIONS["create_user"], f"second-{unique}", "user",
            saga_input={**taken, "email": f"{unique.upper()}@example.com"})
    with pytest.raises(PermanentError, match=f"user usr-first-{unique} already exists"):
        run(connector, BUILTIN_ACTIONS["create_user"], f"second-{unique}", "user",
            saga_input={**taken, "email": "other@example.com"},
            config={"user_id": f"usr-first-{unique}"})
    assert state(connector) == before


# -- what a compensation undoes: exactly its own effect -------------------------------------------

def test_refund_reverses_only_its_own_execution_and_step(
        connector: MySQLConnector, unique: str) -> None:
    pay = BUILTIN_ACTIONS["process_payment"]
    run(connector, pay, f"a-{unique}", "pay", saga_input=_with(amount="10.00"))
    run(connector, pay, f"a-{unique}", "tip", saga_input=_with(amount="1.50"),
        config={"merchant_account": "shop"})
    run(connector, pay, f"b-{unique}", "pay", saga_input=_with(amount="20.00"))
    refunded = run(connector, BUILTIN_ACTIONS["refund_payment"], f"a-{unique}", "pay",
                   phase="compensation")
    assert refunded == {"refunded": "10.00", "currency": "EUR"}
    accounts = snap(connector)["accounts"]
    assert accounts["alice"]["balance"] == "78.50"
    assert accounts["merchant"]["balance"] == "20.00"
    assert accounts["shop"]["balance"] == "6.50"
    assert left_behind(connector, f"a-{unique}")["ledger_net"] == {"alice": "-1.50",
                                                                    "shop": "1.50"}


@pytest.mark.parametrize("pair", PAIRS, ids=PAIR_IDS)
def test_a_compensation_sees_an_action_committed_after_its_snapshot(
        settings: Settings, db_name: str, connector: MySQLConnector, pair: Pair,
        unique: str) -> None:
    """REPEATABLE READ: the runtime may have read (and so fixed its snapshot) before the
    action it compensates committed. The compensation must still find that action's effect."""
    execution = f"late-{unique}"
    before = snap(connector)
    other = MySQLConnector(settings.database.mysql, database=db_name)
    try:
        with connector.transaction() as cur:
            demo_data.snapshot(cur)  # the consistent-read snapshot starts here
            run(other, BUILTIN_ACTIONS[pair.action], execution, "step",
                saga_input=pair.saga_input, config=pair.config, results=pair.results)
            BUILTIN_ACTIONS[pair.compensation](_ctx(cur, execution, "step", "compensation",
                                                    pair.saga_input, pair.config,
                                                    pair.results))
    finally:
        other.close()
    assert snap(connector) == before


# Both orders: a lookup that ignored the step id would then pick the wrong row in one of them.
@pytest.mark.parametrize(("kept", "undone"), [("b", "a"), ("a", "b")])
@pytest.mark.parametrize("pair", PAIRS[1:], ids=PAIR_IDS[1:])
def test_a_compensation_undoes_only_its_own_step(connector: MySQLConnector, pair: Pair,
                                                kept: str, undone: str, unique: str) -> None:
    execution = f"twice-{unique}"

    def config(step: str) -> dict[str, Any]:
        # Distinct ids per step; each action reads only the keys it knows.
        return {**pair.config, "order_id": f"ord-{step}-{unique}",
                "user_id": f"usr-{step}-{unique}", "shipment_id": f"shp-{step}-{unique}",
                "email": f"{step}-{unique}@example.com"}

    def act(step: str, phase: str = "action") -> None:
        fn = BUILTIN_ACTIONS[pair.action if phase == "action" else pair.compensation]
        run(connector, fn, execution, step, phase=phase, saga_input=pair.saga_input,
            config=config(step), results=pair.results)

    act(kept)
    only_kept = snap(connector)
    act(undone)
    assert snap(connector) != only_kept
    act(undone, "compensation")
    assert snap(connector) == only_kept


def test_config_overrides_input_and_items_reserve_several_skus(
        connector: MySQLConnector, unique: str) -> None:
    before = snap(connector)
    items = [{"sku": "sku-2", "quantity": 1}, {"sku": "sku-1", "quantity": 3},
             {"sku": "sku-2", "quantity": "2"}]
    result = run(connector, BUILTIN_ACTIONS["reserve_inventory"], f"x-{unique}", "stock",
                 saga_input=_with(items=items))
    assert result == {"reserved": [{"sku": "sku-1", "quantity": 3},
                                   {"sku": "sku-2", "quantity": 3}]}
    charged = run(connector, BUILTIN_ACTIONS["process_payment"], f"x-{unique}", "pay",
                  config={"amount": 7.5, "merchant_account": "shop"})
    assert charged["amount"] == "7.50" and charged["merchant_account"] == "shop"
    after = snap(connector)
    assert after["stock"] == {"sku-1": {"available": 7, "reserved": 3},
                              "sku-2": {"available": 0, "reserved": 3}}
    assert after["accounts"]["shop"]["balance"] == "12.50"
    run(connector, BUILTIN_ACTIONS["release_inventory"], f"x-{unique}", "stock",
        phase="compensation")
    run(connector, BUILTIN_ACTIONS["refund_payment"], f"x-{unique}", "pay",
        phase="compensation")
    assert snap(connector) == before


def test_shipment_finds_its_order_id(connector: MySQLConnector, unique: str) -> None:
    ship = BUILTIN_ACTIONS["create_shipment"]
    results = {"create-order": {"order_id": "ord-a"}, "other": {"order_id": "ord-b"},
               "pay": {"amount": "1.00"}}
    picked = run(connector, ship, f"s1-{unique}", "ship", results=results,
                 config={"order_step": "create-order"})
    last = run(connector, ship, f"s2-{unique}", "ship", results=results)
    from_input = run(connector, ship, f"s3-{unique}", "ship", saga_input=_with(order_id="ord-c"),
                     results={"pay": {"amount": "1.00"}})
    assert (picked["order_id"], last["order_id"], from_input["order_id"]) == (
        "ord-a", "ord-b", "ord-c")


def test_a_notification_is_retracted_not_deleted(connector: MySQLConnector,
                                                 unique: str) -> None:
    execution = f"n-{unique}"
    for step, email in (("first", "ann@example.com"), ("second", "bo@example.com")):
        run(connector, BUILTIN_ACTIONS["send_notification"], execution, step,
            config={"message": f"Hello from {step}", "email": email})
    assert run(connector, BUILTIN_ACTIONS["cancel_notification"], execution, "first",
               phase="compensation")["retracted"] is True
    with connector.transaction() as cur:
        cur.execute("SELECT step_id, kind, recipient, message FROM demo_notifications "
                    "WHERE execution_id = %s ORDER BY id", (execution,))
        rows = [(r["step_id"], r["kind"], r["recipient"], r["message"]) for r in cur.fetchall()]
    assert rows == [
        ("first", "sent", "ann@example.com", "Hello from first"),
        ("second", "sent", "bo@example.com", "Hello from second"),
        ("first", "retraction", "ann@example.com",
         "Please disregard our earlier message: Hello from first")]


# -- whole sagas ----------------------------------------------------------------------------------

def _run_saga(connector: MySQLConnector, execution: str, steps: list[dict[str, Any]],
              saga_input: Mapping[str, Any] = INPUT) -> dict[str, dict[str, Any]]:
    """Every action in order, then every compensation in reverse, as Step Functions would."""
    results: dict[str, dict[str, Any]] = {}
    for step in steps:
        results[step["id"]] = run(connector, BUILTIN_ACTIONS[step["action"]], execution,
                                  step["id"], saga_input=saga_input,
                                  config=step.get("config", {}), results=results)
    for step in reversed(steps):
        run(connector, BUILTIN_ACTIONS[step["compensation"]], execution, step["id"],
            phase="compensation", saga_input=saga_input, config=step.get("config", {}),
            results=results)
    return results


def test_documented_example_compensates_back_to_where_it_was(
        connector: MySQLConnector, unique: str) -> None:
    execution = f"example-{unique}"
    steps = sorted(EXAMPLE["steps"], key=lambda s: s["order"])
    assert [(s["action"], s["compensation"]) for s in steps] == [
        ("validate_payment", "cancel_payment"), ("process_payment", "refund_payment"),
        ("send_notification", "cancel_notification")]
    before = snap(connector)
    results = _run_saga(connector, execution, steps)
    assert results["process-payment"]["amount"] == "25.00"
    assert results["send-notification"]["recipient"] == "alice@example.com"
    assert snap(connector) == before
    assert not any(left_behind(connector, execution).values())
    with connector.transaction() as cur:
        cur.execute("SELECT kind FROM demo_payment_ledger WHERE execution_id = %s",
                    (execution,))
        kinds = sorted(row["kind"] for row in cur.fetchall())
    assert kinds == ["charge", "charge", "refund", "refund"]


def test_a_saga_using_every_family_compensates_back_to_where_it_was(
        connector: MySQLConnector, unique: str) -> None:
    execution = f"all-{unique}"
    steps = [
        {"id": "register", "action": "create_user", "compensation": "delete_user"},
        {"id": "validate", "action": "validate_payment", "compensation": "cancel_payment"},
        {"id": "order", "action": "create_order", "compensation": "cancel_order"},
        {"id": "reserve", "action": "reserve_inventory", "compensation": "release_inventory"},
        {"id": "charge", "action": "process_payment", "compensation": "refund_payment"},
        {"id": "ship", "action": "create_shipment", "compensation": "cancel_shipment",
         "config": {"order_step": "order"}},
        {"id": "notify", "action": "send_notification", "compensation": "cancel_notification"},
    ]
    before = snap(connector)
    results = _run_saga(connector, execution, steps)
    assert results["ship"]["order_id"] == results["order"]["order_id"] == f"ord-{execution}"
    assert snap(connector) == before
    assert not any(left_behind(connector, execution).values())


def test_concurrent_charges_refunds_and_reservations_conserve_everything(
        settings: Settings, db_name: str, connector: MySQLConnector, unique: str) -> None:
    """Many executions against one merchant and one sku at once: no deadlock, nothing lost."""
    customers = [f"c{n}-{unique}" for n in range(8)]
    with connector.transaction() as cur:
        for customer in customers:
            demo_data.seed_account(cur, customer, "50.00", "EUR")
        demo_data.seed_stock(cur, "sku-1", 1000)
    before = snap(connector)

    def worker(customer: str) -> None:
        own = MySQLConnector(settings.database.mysql, database=db_name)
        try:
            for n in range(6):
                execution = f"{customer}-{n}"
                steps = [{"id": "reserve", "action": "reserve_inventory",
                          "compensation": "release_inventory"},
                         {"id": "charge", "action": "process_payment",
                          "compensation": "refund_payment"}]
                _run_saga(own, execution, steps, _with(customer_id=customer, amount="3.25"))
        finally:
            own.close()

    with ThreadPoolExecutor(max_workers=len(customers)) as pool:
        for future in [pool.submit(worker, customer) for customer in customers]:
            future.result()
    assert snap(connector) == before
