"""The rules of the waiting kinds (callback, wait) and of saga.max_wait, with the configured
rules of configs/config.yaml: each refused definition is told exactly what is wrong."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pydantic import ValidationError

from chalicelib.config import SagaSettings, load_settings
from chalicelib.domain.lifecycle import StepKind
from chalicelib.domain.models import Step
from chalicelib.domain.validation import (
    ValidationPolicy,
    parse_definition,
    validate_definition,
)

POLICY = ValidationPolicy.from_settings(load_settings(environ={}).saga)
HTTP = "https://pay.example.com/confirm"


def _saga(*steps: dict[str, Any]) -> dict[str, Any]:
    base = {"id": "waits", "name": "Waits", "description": "sagas that wait",
            "version": "1.0.0", "steps": [
                {"id": "reserve", "name": "Reserve", "description": "reserve the goods",
                 "order": 1, "action": "reserve_inventory",
                 "compensation": "release_inventory", "max_retries": 1, "timeout": "30s"}]}
    for index, step in enumerate(steps, start=2):
        base["steps"].append({"id": f"s{index}", "name": f"Step {index}",
                              "description": "a step that waits", "order": index, **step})
    return base


def _found(payload: dict[str, Any], policy: ValidationPolicy = POLICY) -> set[tuple[str, str]]:
    return {(v.field, v.rule) for v in validate_definition(parse_definition(payload), policy)}


CALLBACK = {"kind": "callback", "action": HTTP, "compensation": HTTP, "timeout": "7d"}
APPROVAL = {"kind": "callback", "timeout": "24h"}
TIMER = {"kind": "wait", "wait": "15m"}


@pytest.mark.parametrize("step", [
    CALLBACK, APPROVAL, TIMER, {"kind": "wait", "until": "$.input.deliver_by"},
    {**CALLBACK, "heartbeat": "5m", "call_timeout": "20s"}, {**CALLBACK, "max_retries": 0},
])
def test_the_waiting_kinds_are_accepted_as_documented(step: dict[str, Any]) -> None:
    assert _found(_saga(step)) == set()
    runnable = Step.of(parse_definition(_saga(step)).steps[1])
    assert runnable.kind in (StepKind.CALLBACK, StepKind.WAIT)


@pytest.mark.parametrize(("step", "expected"), [
    # A callback's timeout is its whole wait: saga.max_wait (30d), not the 14m step rule.
    ({**CALLBACK, "timeout": "31d"}, {("steps[1].timeout", "max_wait")}),
    ({**CALLBACK, "timeout": "500ms"}, {("steps[1].timeout", "min")}),
    # Its call is bounded like any step's call.
    ({**CALLBACK, "call_timeout": "20m"}, {("steps[1].call_timeout", "max")}),
    ({**CALLBACK, "call_timeout": "soon"}, {("steps[1].call_timeout", "format")}),
    ({**CALLBACK, "heartbeat": "7d"}, {("steps[1].heartbeat", "below_timeout")}),
    ({**CALLBACK, "heartbeat": "0s"}, {("steps[1].heartbeat", "format")}),
    ({**CALLBACK, "max_retries": 2}, {("steps[1].max_retries", "kind")}),
    ({**CALLBACK, "action": "process_payment"}, {("steps[1].action", "participant")}),
    ({k: v for k, v in CALLBACK.items() if k != "compensation"},
     {("steps[1].compensation", "required")}),
    ({**APPROVAL, "compensation": HTTP}, {("steps[1].compensation", "kind")}),
    ({**CALLBACK, "wait": "5m"}, {("steps[1].wait", "kind")}),
    # A timer: exactly one of wait and until, nothing else of a call.
    ({"kind": "wait"}, {("steps[1].wait", "one_of")}),
    ({**TIMER, "until": "$.input.at"}, {("steps[1].wait", "one_of")}),
    ({**TIMER, "action": HTTP}, {("steps[1].action", "kind")}),
    ({**TIMER, "timeout": "1m"}, {("steps[1].timeout", "kind")}),
    ({**TIMER, "heartbeat": "1m"}, {("steps[1].heartbeat", "kind")}),
    ({"kind": "wait", "wait": "40d"}, {("steps[1].wait", "max_wait")}),
    ({"kind": "wait", "until": "deliver_by"}, {("steps[1].until", "reference")}),
    ({"kind": "wait", "until": "$.results.s9.at"}, {("steps[1].until", "reference")}),
])
def test_each_rule_of_the_waiting_kinds_names_its_field(step: dict[str, Any],
                                                         expected: set[tuple[str, str]]) -> None:
    assert _found(_saga(step)) == expected


def test_a_waiting_step_runs_alone_in_its_group() -> None:
    payload = _saga(TIMER, {**CALLBACK, "order": 2})
    assert _found(payload) == {("steps[1].order", "waiting_alone"),
                               ("steps[2].order", "waiting_alone")}


def test_the_other_kinds_take_none_of_the_waiting_fields() -> None:
    payload = _saga()
    payload["steps"][0].update(wait="1m", heartbeat="1m")
    assert _found(payload) == {("steps[0].wait", "kind"), ("steps[0].heartbeat", "kind")}


def test_a_callback_after_the_pivot_is_never_compensated() -> None:
    payload = _saga({"kind": "pivot", "action": "process_payment",
                     "compensation": "refund_payment", "max_retries": 0, "timeout": "30s"},
                    {**CALLBACK, "order": 3}, {**TIMER, "order": 4})
    assert _found(payload) == {("steps[2].compensation", "after_pivot")}
    del payload["steps"][2]["compensation"]
    assert _found(payload) == set()


def test_saga_max_wait_changes_what_is_accepted() -> None:
    short = ValidationPolicy.from_settings(
        load_settings(environ={"SAGA__SAGA__MAX_WAIT": "1h"}).saga)
    payload = _saga({**CALLBACK, "timeout": "2h"})
    assert _found(payload) == set()
    assert _found(payload, short) == {("steps[1].timeout", "max_wait")}
    message = next(v.message for v in validate_definition(parse_definition(payload), short))
    assert "1h" in message and "saga.max_wait" in message


@pytest.mark.parametrize("value", ["366d", "500ms", "forever"])
def test_a_max_wait_past_a_year_or_under_a_second_is_refused(value: str) -> None:
    with pytest.raises(ValidationError):
        SagaSettings(max_wait=value)


def test_a_step_definition_keeps_the_definition_it_was_given() -> None:
    definition = copy.deepcopy(_saga({**CALLBACK, "heartbeat": "5m"}))
    step = Step.of(parse_definition(definition).steps[1])
    assert (step.timeout, step.call_timeout, step.heartbeat) == ("7d", "30s", "5m")
    assert step.call_timeout_text == "30s"
