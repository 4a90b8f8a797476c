"""The configured validation rules, laid over the definitions' derived schemas.

SagaDefinition and StepDefinition read every field leniently (each optional, of its JSON type)
so that a request is told all of its faults at once; which fields are required, how long they
may be and which values they take is the configured validation's (validation.rules in the
config, checked by chalicelib/domain/validation.py). The document states the same rules for
the configuration it is built with.
"""

from __future__ import annotations

from typing import Any

from chalicelib.config import SagaSettings
from chalicelib.domain.conditions import MAX_CONDITION_LENGTH
from chalicelib.domain.lifecycle import StepKind
from chalicelib.domain.requests import MAX_EXECUTION_ID
from chalicelib.domain.storable import MAX_REQUEST_DEPTH
from chalicelib.domain.validation import MAX_ORDER, NOT_FOR_RETRIABLE, SAFE_ID, SEMVER
from chalicelib.domain.workflow import DEFAULT_WORKFLOW, Workflow

ID_PATTERN = f"^{SAFE_ID.pattern}$"
DURATION_PATTERN = r"^(\d+(\.\d+)?(ms|s|m|h|d))+$"
SEMVER_PATTERN = f"^{SEMVER.pattern}$"
# A percentage of a fan-out's items as tolerated_failures takes it: "0%" to "100%".
PERCENT_PATTERN = r"^(0?\d{1,2}|100)%$"
# The fields the definition rules name that are durations.
_DURATIONS = ("timeout", "wait", "call_timeout", "heartbeat", "deadline")
# What every step needs whatever its kind; the rest depends on it (_by_kind). A step's id and
# order are needed whatever the configured rules say (the engine names and orders by them).
_ALWAYS = ("id", "order", "name", "description")
_STRUCTURAL = ("id", "order")


def constrain(schemas: dict[str, Any], saga: SagaSettings) -> None:
    """Lay the rules of `saga` (its validation rules and limits) over the document's
    schemas, in place."""
    # validation.enabled false: the configured rules are not checked, only the invariants.
    rules = saga.validation_rules if saga.validation_enabled else {}
    _constrain_step(schemas["StepDefinition"], rules.get("step", {}), saga)
    _constrain_saga(schemas["SagaDefinition"], rules.get("saga", {}), saga)
    _constrain_stored(schemas["Saga"])
    _constrain_execute(schemas["ExecuteRequest"], schemas["Fault"])


def _constrain_step(schema: dict[str, Any], rules: dict[str, Any], saga: SagaSettings) -> None:
    properties = schema["properties"]
    required = [name for name, rule in rules.items() if rule.get("required")]
    schema["required"] = [name for name in _ALWAYS if name in required or name in _STRUCTURAL]
    schema["anyOf"] = _by_kind([name for name in required if name not in _ALWAYS])
    # Only what every step needs is never null: null is "left out", which a timer may be.
    _not_null(properties, schema["required"])
    value = _values(properties)
    _apply_lengths(value, rules)
    value["id"]["pattern"] = ID_PATTERN
    value["order"].update(minimum=1, maximum=MAX_ORDER)
    value["kind"]["enum"] = [kind.value for kind in StepKind]
    properties["kind"]["default"] = StepKind.COMPENSATABLE.value
    retries = rules.get("max_retries", {})
    value["max_retries"].update({bound: retries[key] for bound, key in
                                 (("minimum", "min"), ("maximum", "max")) if key in retries})
    timeout = rules.get("timeout", {})
    if "min" in timeout or "max" in timeout:
        properties["timeout"]["description"] += (
            f"; from {timeout.get('min')} to {timeout.get('max')}")
    if saga.supported_step_types:  # free-form unless the config lists the allowed types
        value["type"]["enum"] = list(saga.supported_step_types)
    value["when"]["maxLength"] = MAX_CONDITION_LENGTH
    _say(properties["for_each"], "saga.max_fanout_items", saga.max_fanout_items)
    value["max_concurrency"].update(minimum=1, maximum=saga.max_fanout_concurrency)
    properties["tolerated_failures"]["anyOf"] = [
        {"type": "integer", "minimum": 0}, {"type": "string", "pattern": PERCENT_PATTERN},
        {"type": "null"}]
    value["saga"]["pattern"] = ID_PATTERN
    _say(properties["saga"], "saga.max_child_depth", saga.max_child_depth)
    value["saga_version"]["pattern"] = SEMVER_PATTERN
    _apply_durations(value)


def _by_kind(needed: list[str]) -> list[dict[str, Any]]:
    """What a step needs besides what every step does: a timer and a callback none of the
    configured fields (a callback's action is optional: an approval), a retriable step no
    compensation or max_retries, a child step its saga (which does the work), the others
    every configured one."""
    waiting = [StepKind.WAIT.value, StepKind.CALLBACK.value]
    return [
        {"required": ["kind"], "properties": {"kind": {"enum": waiting}}},
        {"required": ["kind"], "properties": {"kind": {"enum": [StepKind.RETRIABLE.value]}},
         "allOf": [{"required": [n for n in needed if n not in NOT_FOR_RETRIABLE]}]},
        {"required": ["saga"]},
        {"required": needed}]


def _constrain_saga(schema: dict[str, Any], rules: dict[str, Any], saga: SagaSettings) -> None:
    properties = schema["properties"]
    schema["required"] = [name for name, rule in rules.items() if rule.get("required")]
    schema["required"].append("steps")
    _not_null(properties, schema["required"])
    value = _values(properties)
    _apply_lengths(value, rules)
    value["id"]["pattern"] = ID_PATTERN
    value["version"]["pattern"] = SEMVER_PATTERN
    value["steps"].update(minItems=1, maxItems=saga.max_steps_per_saga)
    if saga.supported_saga_types:
        value["type"]["enum"] = list(saga.supported_saga_types)
    value["workflow"]["enum"] = [w.value for w in Workflow]
    properties["workflow"]["default"] = DEFAULT_WORKFLOW.value
    _say(properties["deadline"], "saga.max_wait", saga.max_wait)
    _apply_durations(value)


def _constrain_stored(schema: dict[str, Any]) -> None:
    properties = schema["properties"]
    properties["workflow"]["enum"] = [w.value for w in Workflow]
    properties["workflow_type"]["enum"] = [Workflow.STANDARD.value, Workflow.EXPRESS.value]


def _constrain_execute(execute: dict[str, Any], fault: dict[str, Any]) -> None:
    """The execute body's rules, checked by the execution use case beside the model."""
    _values(execute["properties"])["execution_id"].update(maxLength=MAX_EXECUTION_ID,
                                                         pattern=ID_PATTERN)
    execute["properties"]["input"]["description"] += (
        f", nesting at most {MAX_REQUEST_DEPTH} levels ({{}} is one: what MySQL's JSON "
        "columns take inside its event)")
    _values(fault["properties"])["delay"]["pattern"] = DURATION_PATTERN


def _say(prop: dict[str, Any], key: str, value: Any) -> None:
    """A description naming a config key also gives its value in this configuration."""
    prop["description"] = prop["description"].replace(key, f"{key} = {value}", 1)


def _apply_lengths(properties: dict[str, Any], rules: dict[str, Any]) -> None:
    for name, rule in rules.items():
        prop = properties.get(name)
        if prop is None or prop.get("type") != "string":
            continue
        if "min_length" in rule:
            prop["minLength"] = rule["min_length"]
        if "max_length" in rule:
            prop["maxLength"] = rule["max_length"]


def _apply_durations(properties: dict[str, Any]) -> None:
    for name in _DURATIONS:
        if name in properties:
            properties[name]["pattern"] = DURATION_PATTERN


def _not_null(properties: dict[str, Any], required: list[str]) -> None:
    """A required field must be there and not null (the service reads null as left out)."""
    for name in required:
        prop = properties[name]
        prop.pop("default", None)
        branches = prop.pop("anyOf", None)
        if branches is not None:
            kept = [branch for branch in branches if branch != _NULL]
            prop.update(kept[0] if len(kept) == 1 else {"anyOf": kept})


_NULL = {"type": "null"}


def _values(properties: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each property's schema of its values: for one that may be null, its other branch
    (where a value's bounds go)."""
    values = {}
    for name, prop in properties.items():
        branches = [branch for branch in prop.get("anyOf", []) if branch != _NULL]
        values[name] = branches[0] if len(branches) == 1 else prop
    return values
