"""Every configured rule and every invariant, each with a passing and a failing case."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from chalicelib.config import load_settings
from chalicelib.domain.lifecycle import Phase
from chalicelib.domain.models import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, Step, StepDefinition
from chalicelib.domain.validation import (
    MAX_ORDER,
    DefinitionInvalid,
    ValidationPolicy,
    check_definition,
    parse_definition,
    validate_definition,
)

FIXTURES = Path(__file__).parents[1] / "fixtures"
SEED_EXAMPLE = json.loads((FIXTURES / "payment-saga.json").read_text())
POLICY = ValidationPolicy.from_settings(load_settings(environ={}).saga)


def _violations(payload: Any, policy: ValidationPolicy = POLICY) -> list[tuple[str, str]]:
    try:
        check_definition(payload, policy)
    except DefinitionInvalid as invalid:
        return [(v.field, v.rule) for v in invalid.violations]
    return []


def _with(path: str, value: Any) -> dict[str, Any]:
    """The seed example with one field set (value ... deletes it)."""
    payload = copy.deepcopy(SEED_EXAMPLE)
    node: Any = payload
    *parents, last = path.replace("[", ".").replace("]", "").split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    if value is ...:
        del node[last]
    else:
        node[last] = value
    return payload


def test_the_seed_example_is_accepted_unchanged() -> None:
    saga = check_definition(copy.deepcopy(SEED_EXAMPLE), POLICY)
    assert saga.id == "payment-saga"
    assert [s.id for s in saga.steps] == ["validate-payment", "process-payment",
                                          "send-notification"]
    assert saga.steps[2].timeout == "10s" and saga.steps[2].max_retries == 2


@pytest.mark.parametrize(("path", "good", "bad", "rule"), [
    ("id", "ab", "a", "min_length"),
    ("id", "x" * 100, "x" * 101, "max_length"),
    ("id", "payment-saga", ..., "required"),
    ("name", "Pa", "P", "min_length"),
    ("name", "N" * 100, "N" * 101, "max_length"),
    ("name", "Payments", "", "required"),
    ("description", "ten chars!", "too short", "min_length"),
    ("description", "d" * 500, "d" * 501, "max_length"),
    ("description", "Saga for payments", ..., "required"),
    ("version", "1.0.0", "1.0", "format"),
    ("version", "2.1.0-rc.1+build.5", "v1.0.0", "format"),
    ("version", "1.0.0", ..., "required"),
    ("steps[0].id", "vp", "v", "min_length"),
    ("steps[0].id", "s" * 100, "s" * 101, "max_length"),
    ("steps[0].id", "validate-payment", ..., "required"),
    ("steps[0].name", "Va", "V", "min_length"),
    ("steps[0].name", "n" * 100, "n" * 101, "max_length"),
    ("steps[0].name", "Validate", ..., "required"),
    ("steps[0].description", "0123456789", "012345678", "min_length"),
    ("steps[0].description", "d" * 500, "d" * 501, "max_length"),
    ("steps[0].description", "Validate payment details", ..., "required"),
    ("steps[0].action", "va", "v", "min_length"),
    ("steps[0].action", "a" * 2048, "a" * 2049, "max_length"),
    ("steps[0].action", "validate_payment", ..., "required"),
    ("steps[0].compensation", "cp", "c", "min_length"),
    ("steps[0].compensation", "c" * 2048, "c" * 2049, "max_length"),
    ("steps[0].compensation", "cancel_payment", ..., "required"),
    ("steps[0].max_retries", 0, -1, "min"),
    ("steps[0].max_retries", 10, 11, "max"),
    ("steps[0].max_retries", 3, ..., "required"),
    ("steps[0].timeout", "1s", "999ms", "min"),
    ("steps[0].timeout", "14m", "15m", "max"),
    ("steps[0].timeout", "2m", "30", "format"),
    ("steps[0].timeout", "30s", ..., "required"),
])
def test_configured_rule(path: str, good: Any, bad: Any, rule: str) -> None:
    assert _violations(_with(path, good)) == []
    assert (path, rule) in _violations(_with(path, bad))


@pytest.mark.parametrize(("path", "good", "bad"), [
    ("type", "PaymentSaga", "BankSaga"), ("steps[0].type", "PaymentStep", "BankStep")])
def test_types_are_free_form_unless_the_config_lists_them(path: str, good: str,
                                                          bad: str) -> None:
    # Shipped empty: a team's own type is accepted.
    assert _violations(_with(path, bad)) == []
    listed = ValidationPolicy(rules=POLICY.rules, saga_types=frozenset({"PaymentSaga"}),
                              step_types=frozenset({"PaymentStep"}))
    assert _violations(_with(path, good), listed) == []
    assert (path, "supported") in _violations(_with(path, bad), listed)


def test_a_timeout_below_one_second_passes_when_the_configured_minimum_allows_it() -> None:
    rules = copy.deepcopy(dict(POLICY.rules))
    rules["step"]["timeout"]["min"] = "100ms"
    policy = ValidationPolicy(rules=rules, saga_types=POLICY.saga_types,
                              step_types=POLICY.step_types)
    assert _violations(_with("steps[0].timeout", "500ms"), policy) == []


@pytest.mark.parametrize(("path", "good", "bad", "rule"), [
    ("id", "payment.saga_v2", "payment saga", "charset"),
    ("id", "a1", "-leading", "charset"),
    ("steps[1].id", "process_payment.2", "process/payment", "charset"),
    ("steps[1].order", 5, 0, "min"),
    ("steps[1].order", 2, ..., "required"),
    # What MySQL's INT (step_runs.step_group) holds; 2**63 was accepted, then failed to run.
    ("steps[2].order", MAX_ORDER, MAX_ORDER + 1, "max"),
    ("steps[2].order", MAX_ORDER, 2**63, "max"),
    ("steps[0].input", {"amount": "$.input.amount", "a$": 1}, {"$a": 1}, "storable"),
    ("steps[0].input", {"card": {"last4": "1"}}, {"card": {"last.4": "1"}}, "storable"),
    ("steps[0].input", {"lines": [{"sku": "a"}]}, {"lines": [{"\x00": "a"}]}, "storable"),
])
def test_invariant(path: str, good: Any, bad: Any, rule: str) -> None:
    assert _violations(_with(path, good)) == []
    assert rule in {r for field, r in _violations(_with(path, bad)) if field.startswith(path)}


def test_the_order_limit_holds_with_the_configured_rules_off_and_names_itself() -> None:
    off = ValidationPolicy(enabled=False)
    with pytest.raises(DefinitionInvalid) as refused:
        check_definition(_with("steps[2].order", 2**63), off)
    [violation] = refused.value.violations
    assert (violation.field, violation.rule) == ("steps[2].order", "max")
    assert str(MAX_ORDER) in violation.message and violation.value == 2**63


def test_mapping_keys_mongodb_refuses_are_named_in_inputs_and_the_output() -> None:
    payload = _with("steps[0].input", {"$a": "$.input.x", "ok": {"b.c": 1}})
    payload["output"] = {"total": {"$sum": "$.input.amount"}}
    with pytest.raises(DefinitionInvalid) as refused:
        check_definition(payload, ValidationPolicy(enabled=False))
    found = {(v.field, v.rule, v.value) for v in refused.value.violations}
    assert found == {("steps[0].input.$a", "storable", "$a"),
                     ("steps[0].input.ok.b.c", "storable", "b.c"),
                     ("output.total.$sum", "storable", "$sum")}
    assert all("MongoDB" in v.message for v in refused.value.violations)


def test_step_ids_must_be_unique_and_a_shared_order_is_a_parallel_group() -> None:
    payload = _with("steps[2].id", "validate-payment")
    payload["steps"][1]["order"] = 1
    assert set(_violations(payload)) == {("steps[2].id", "unique")}


def _fulfilment(**kinds: str) -> dict[str, Any]:
    """validate; reserve and authorize in parallel; capture (pivot); ship and notify."""
    steps = []
    for step_id, order in (("validate", 1), ("reserve", 2), ("authorize", 2),
                           ("capture", 3), ("ship", 4), ("notify", 4)):
        step: dict[str, Any] = {
            "id": step_id, "name": step_id.title(), "description": f"{step_id} the order",
            "order": order, "action": "reserve_inventory", "timeout": "10s"}
        kind = kinds.get(step_id, {"capture": "pivot", "ship": "retriable",
                                   "notify": "retriable"}.get(step_id))
        if kind is not None:
            step["kind"] = kind
        if kind != "retriable":
            step.update(compensation="release_inventory", max_retries=1)
        steps.append(step)
    return {**copy.deepcopy(SEED_EXAMPLE), "steps": steps}


def test_the_order_fulfilment_shape_is_valid() -> None:
    assert _violations(_fulfilment()) == []


def test_each_rule_of_kinds_is_explained() -> None:
    payload = _fulfilment()
    payload["steps"][5]["compensation"] = "release_inventory"
    payload["steps"][4]["max_retries"] = 3
    payload["steps"][0]["kind"] = "optional"
    found = validate_definition(parse_definition(payload), POLICY)
    by_field = {(v.field, v.rule): v.message for v in found}
    assert set(by_field) == {("steps[5].compensation", "retriable"),
                             ("steps[4].max_retries", "retriable"),
                             ("steps[0].kind", "supported")}
    assert "never compensated" in by_field[("steps[5].compensation", "retriable")]
    assert "saga.retriable_max_attempts" in by_field[("steps[4].max_retries", "retriable")]
    assert by_field[("steps[0].kind", "supported")] == \
        "must be one of compensatable, pivot, retriable, callback, wait"


@pytest.mark.parametrize(("kinds", "expected"), [
    # two pivots
    ({"validate": "pivot"}, {("steps[3].kind", "one_pivot"), ("steps[1].kind", "after_pivot"),
                             ("steps[2].kind", "after_pivot"), ("steps[3].kind", "after_pivot")}),
    # a compensatable step after the pivot
    ({"ship": "compensatable"}, {("steps[4].kind", "after_pivot")}),
    # a retriable step before the pivot
    ({"validate": "retriable"}, {("steps[0].kind", "after_pivot")}),
    # retriable steps and no pivot
    ({"capture": "compensatable"}, {("steps[4].kind", "after_pivot"),
                                    ("steps[5].kind", "after_pivot")}),
])
def test_pivot_and_retriable_rules(kinds: dict[str, str], expected: set[tuple[str, str]]) -> None:
    assert set(_violations(_fulfilment(**kinds))) == expected


def test_a_pivot_runs_alone() -> None:
    payload = _fulfilment()
    payload["steps"][2]["order"] = 3  # authorize beside capture, the pivot
    found = validate_definition(parse_definition(payload), POLICY)
    assert [(v.field, v.rule) for v in found] == [("steps[2].order", "pivot_alone")]
    assert "the pivot 'capture' runs alone" in found[0].message


def test_an_inactive_step_takes_no_part_in_the_shape() -> None:
    payload = _fulfilment(validate="pivot")
    payload["steps"][0]["active"] = False
    assert _violations(payload) == []


def test_a_saga_needs_an_active_step() -> None:
    payload = copy.deepcopy(SEED_EXAMPLE)
    for step in payload["steps"]:
        step["active"] = False
    assert ("steps", "active") in _violations(payload)
    assert ("steps", "min_items") in _violations(_with("steps", []))


def test_the_number_of_steps_is_limited() -> None:
    policy = ValidationPolicy(rules=POLICY.rules, max_steps_per_saga=2)
    assert ("steps", "max_items") in _violations(copy.deepcopy(SEED_EXAMPLE), policy)


def test_every_step_needs_a_compensation_even_with_validation_disabled() -> None:
    policy = ValidationPolicy(rules=POLICY.rules, enabled=False)
    assert _violations(_with("description", "short"), policy) == []
    assert ("steps[0].compensation", "required") in _violations(
        _with("steps[0].compensation", ...), policy)


@pytest.mark.parametrize("field", ["id", "action"])
def test_every_step_needs_an_id_and_an_action_even_with_validation_disabled(field: str) -> None:
    disabled = ValidationPolicy(rules=POLICY.rules, enabled=False)
    assert _violations(_with(f"steps[1].{field}", ...), disabled) == [
        (f"steps[1].{field}", "required")]
    # With the configured rules on as well, the field is still reported once.
    assert _violations(_with(f"steps[1].{field}", ...)).count(
        (f"steps[1].{field}", "required")) == 1


def test_a_validated_step_has_its_defaults_applied_once() -> None:
    payload = _with("steps[0].timeout", ...)
    del payload["steps"][0]["max_retries"]
    # The shipped rules require both; with validation off they may be left out.
    saga = check_definition(payload, ValidationPolicy(rules=POLICY.rules, enabled=False))
    step = Step.of(saga.steps[0])
    assert (step.timeout, step.max_retries) == (DEFAULT_TIMEOUT, DEFAULT_MAX_RETRIES)
    assert step.target(Phase.ACTION) == saga.steps[0].action
    assert step.target(Phase.COMPENSATION) == saga.steps[0].compensation
    with pytest.raises(ValueError, match="not a validated definition"):
        Step.of(StepDefinition(id="x", order=1, compensation="undo"))


def test_wrong_types_and_unknown_fields_are_reported_with_their_paths() -> None:
    payload = _with("steps[0].max_retries", "three")
    payload["steps"][1]["colour"] = "blue"
    payload["active"] = "maybe"
    found = _violations(payload)
    assert ("steps[0].max_retries", "type") in found
    assert ("steps[1].colour", "unknown_field") in found
    assert ("active", "type") in found


def test_a_timeout_is_capped_where_its_task_would_outlive_a_lambda() -> None:
    # Configured rules may allow an hour; a step's Task waits its timeout plus the margin
    # inside one Lambda invocation (900 s at most).
    rules = copy.deepcopy(dict(POLICY.rules))
    rules["step"]["timeout"]["max"] = "1h"
    policy = ValidationPolicy(rules=rules, saga_types=POLICY.saga_types,
                              step_types=POLICY.step_types, task_timeout_margin_s=30)
    assert _violations(_with("steps[0].timeout", "870s"), policy) == []
    assert _violations(_with("steps[0].timeout", "871s"), policy) == [
        ("steps[0].timeout", "lambda_max")]
    wider = ValidationPolicy(rules=rules, saga_types=POLICY.saga_types,
                             step_types=POLICY.step_types, task_timeout_margin_s=5)
    assert _violations(_with("steps[0].timeout", "871s"), wider) == []


def test_every_violation_is_reported_at_once() -> None:
    payload = _with("id", "x")
    payload["version"] = "one"
    payload["steps"][0]["timeout"] = "2h"
    assert len(_violations(payload)) == 3


@pytest.mark.parametrize("body", [[], "saga", 3, None])
def test_a_body_that_is_not_an_object_is_refused(body: Any) -> None:
    assert _violations(body) == [("", "type")]


def test_actions_must_exist_when_the_policy_knows_them() -> None:
    policy = ValidationPolicy(rules=POLICY.rules, actions=frozenset(
        {"validate_payment", "cancel_payment", "process_payment", "refund_payment",
         "send_notification", "cancel_notification"}))
    assert _violations(copy.deepcopy(SEED_EXAMPLE), policy) == []
    for known in ("lambda:my-function", "lambda:arn:aws:lambda:us-east-1:123456789012:function:f",
                  "https://payments.example.com/charge", "http://127.0.0.1:9000/x"):
        assert _violations(_with("steps[0].action", known), policy) == []
    assert ("steps[0].action", "known_action") in _violations(
        _with("steps[0].action", "teleport_goods"), policy)
    assert ("steps[1].compensation", "known_action") in _violations(
        _with("steps[1].compensation", "lambda:"), policy)
