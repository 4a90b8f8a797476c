"""The rules of conditions and fan-outs, with the configured rules of configs/config.yaml:
each refused definition is told what is wrong, naming its step; what the domain decides about
items (their ids, the tolerance, which items an undo sends to) and what a mapping makes of a
skipped step's result."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.config import load_settings
from chalicelib.domain.branch_validation import BranchLimits
from chalicelib.domain.fanout import (
    Tally,
    gathered,
    item_result_limit,
    item_run_id,
    list_problem,
    split_run_id,
    to_undo,
    tolerated_count,
)
from chalicelib.domain.lifecycle import StepStatus
from chalicelib.domain.mapping import Scope, resolve, unresolved
from chalicelib.domain.storable import ENVELOPE_OVERHEAD_BYTES, KAFKA_MAX_REQUEST_BYTES
from chalicelib.domain.validation import ValidationPolicy, parse_definition, validate_definition

POLICY = ValidationPolicy.from_settings(load_settings(environ={}).saga)


def _saga(*steps: dict[str, Any]) -> dict[str, Any]:
    base = {"id": "order", "name": "Order", "description": "branches and fan-outs",
            "version": "1.0.0", "steps": [
                {"id": "create", "name": "Create", "description": "create the order",
                 "order": 1, "action": "create_order", "compensation": "cancel_order",
                 "max_retries": 1, "timeout": "30s"}]}
    for index, step in enumerate(steps, start=2):
        base["steps"].append({"id": f"s{index}", "name": f"Step {index}",
                              "description": "a step that branches", "order": index,
                              "action": "reserve_inventory",
                              "compensation": "release_inventory", "max_retries": 0,
                              "timeout": "10s", **step})
    return base


def _violations(payload: dict[str, Any],
                policy: ValidationPolicy = POLICY) -> dict[tuple[str, str], str]:
    return {(v.field, v.rule): v.message
            for v in validate_definition(parse_definition(payload), policy)}


def test_conditions_and_fanouts_are_accepted_as_documented() -> None:
    assert _violations(_saga(
        {"when": '$.input.kind != "digital" and $.results.create.total >= 10'},
        {"for_each": "$.input.lines", "max_concurrency": 4, "tolerated_failures": "10%",
         "input": {"sku": "$.item.sku", "qty": "$.item.qty"}},
        {"for_each": "$.results.s3.items", "when": "exists $.input.lines",
         "tolerated_failures": 2})) == {}


@pytest.mark.parametrize(("step", "field", "rule", "says"), [
    ({"when": "$.results.pay.ok == true"}, "when", "reference", "no active step 'pay'"),
    ({"when": "$.results.s2.ok"}, "when", "reference", "its own result"),
    ({"when": '$.input.total < "ten" and 3'}, "when", "condition", "column"),
    ({"when": "$.input.x ="}, "when", "condition", "column"),
    ({"when": "$.item.sku == 1"}, "when", "reference", "only a fan-out step's input"),
    ({"kind": "pivot", "when": "$.input.go"}, "when", "pivot", "'s2' is the pivot"),
    ({"for_each": "$.execution.id"}, "for_each", "list", "not a list"),
    ({"for_each": "$.input"}, "for_each", "list", "the saga input is an object"),
    ({"for_each": "$.results.s1"}, "for_each", "list", "a step's result is an object"),
    ({"for_each": "lines"}, "for_each", "reference", "not a reference"),
    ({"for_each": "$.results.later.lines"}, "for_each", "reference", "no active step"),
    ({"for_each": "$.input.lines", "kind": "pivot"}, "for_each", "pivot", "cannot fan out"),
    ({"for_each": "$.input.lines", "max_concurrency": 41}, "max_concurrency", "range",
     "from 1 to 40"),
    ({"for_each": "$.input.lines", "max_concurrency": 0}, "max_concurrency", "range", "s2"),
    ({"for_each": "$.input.lines", "tolerated_failures": "101%"}, "tolerated_failures",
     "tolerance", "percentage"),
    ({"for_each": "$.input.lines", "tolerated_failures": -1}, "tolerated_failures",
     "tolerance", "at least 0"),
    ({"max_concurrency": 3}, "max_concurrency", "for_each", "only a fan-out step"),
    ({"input": {"sku": "$.item.sku"}}, "input.sku", "reference", "only a fan-out step"),
])
def test_each_rule_names_its_step_and_field(step: dict[str, Any], field: str, rule: str,
                                           says: str) -> None:
    found = _violations(_saga(step))
    assert (f"steps[1].{field}", rule) in found, found
    message = found[(f"steps[1].{field}", rule)]
    assert says in message and "s2" in message


def test_a_fanout_runs_alone_and_only_compensatable_steps_fan_out() -> None:
    shared = _saga({"for_each": "$.input.lines"}, {"order": 2})
    assert ("steps[1].order", "fanout_alone") in _violations(shared)
    retriable = _saga({"kind": "pivot"}, {"kind": "retriable", "for_each": "$.input.lines",
                                          "compensation": None, "max_retries": None})
    assert ("steps[2].for_each", "kind") in _violations(retriable)


def test_the_configured_limits_change_what_is_accepted() -> None:
    step = {"for_each": "$.input.lines", "max_concurrency": 8}
    assert _violations(_saga(step)) == {}
    narrow = ValidationPolicy(rules=POLICY.rules, branches=BranchLimits(max_concurrency=4))
    assert ("steps[1].max_concurrency", "range") in _violations(_saga(step), narrow)


def test_an_items_run_is_named_after_its_step_and_index() -> None:
    assert item_run_id("reserve", 12) == "reserve[12]"
    assert split_run_id("reserve[12]") == ("reserve", 12)
    assert split_run_id("reserve") == ("reserve", None)


@pytest.mark.parametrize(("tolerated", "items", "count"), [
    (None, 12, 0), (1, 12, 1), ("10%", 12, 1), ("10%", 9, 0), ("100%", 7, 7), ("0%", 5, 0)])
def test_the_tolerance_is_a_count_or_a_percentage_rounded_down(tolerated: Any, items: int,
                                                               count: int) -> None:
    assert tolerated_count(tolerated, items) == count


def test_a_tally_says_when_the_fanout_fails_or_completes() -> None:
    s, f, p, u = (StepStatus.SUCCEEDED, StepStatus.FAILED, StepStatus.PENDING,
                  StepStatus.OUTCOME_UNKNOWN)
    assert Tally.of([s, s, f]).complete(1) and not Tally.of([s, s, f]).complete(0)
    assert Tally.of([s, u]).over(0)  # an unknown outcome did not succeed
    assert not Tally.of([s, p]).complete(5)  # an item never started
    assert Tally.of([]).complete(0)


def test_an_undo_goes_to_the_items_that_may_have_acted() -> None:
    statuses = {0: StepStatus.SUCCEEDED, 1: StepStatus.FAILED, 2: StepStatus.PENDING,
                3: StepStatus.OUTCOME_UNKNOWN, 4: StepStatus.PENDING,
                5: StepStatus.COMPENSATED, 6: StepStatus.COMPENSATION_FAILED}
    attempts = {2: 1}  # an attempt was admitted: its call may still be out
    assert to_undo(statuses, attempts, skip_undone=False) == [0, 2, 3, 6]
    assert to_undo(statuses, attempts, skip_undone=True) == [0, 3, 6]


def test_an_items_result_gets_an_even_share_of_one_event() -> None:
    share = (KAFKA_MAX_REQUEST_BYTES - ENVELOPE_OVERHEAD_BYTES) // 100 - 16
    assert item_result_limit(65536, 100) == share
    assert item_result_limit(2048, 100) == 2048
    assert item_result_limit(65536, 10) == 65536


def test_what_a_fanout_cannot_run_over_is_told() -> None:
    assert list_problem("reserve", "$.input.lines", [1, 2], max_items=2) is None
    assert "has 3 items" in (list_problem("reserve", "$.input.lines", [1, 2, 3],
                                          max_items=2) or "")
    assert "is null, not a list" in (list_problem("reserve", "$.x", None, max_items=2) or "")
    assert gathered([{"a": 1}, None]) == {"items": [{"a": 1}, None]}


def test_a_skipped_steps_result_is_left_out_of_a_mapping() -> None:
    scope = Scope("e1", {"sku": "A"}, {"create": {"id": 7}}, skipped=frozenset({"ship"}))
    mapping = {"sku": "$.input.sku", "tracking": "$.results.ship.tracking",
               "ids": ["$.results.create.id", "$.results.ship.id"]}
    assert resolve(mapping, scope) == {"sku": "A", "ids": [7, None]}
    assert unresolved(mapping, scope) is None
    assert unresolved({"x": "$.results.pay.id"}, scope) is not None  # not skipped: absent
    assert resolve({"sku": "$.item.sku"}, Scope("e1", {}, {}, item={"sku": "B"})) == {
        "sku": "B"}
