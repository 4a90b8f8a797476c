"""What an execution and its steps say went wrong: shape, sanitizing, and the lifecycle."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from chalicelib.domain.executions import (
    Attempt,
    Execution,
    ExecutionError,
    ExecutionStatus,
    StepRun,
    StepStatus,
    clean_error,
    failure_cause,
)
from chalicelib.usecases.executions import ExecutionPolicy, ExecutionService
from chalicelib.usecases.ports import Actor, RunKind, RunRef
from tests.support.records import differences

LAMBDA_CAUSE = json.dumps({
    "errorMessage": "card declined by /opt/python/lib/gateway.py\nsecond line",
    "errorType": "PermanentError",
    "stackTrace": ['  File "/var/task/chalicelib/steps/runtime.py", line 90, in handle\n']})
T0 = datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC)


def test_a_lambda_cause_becomes_its_type_and_first_line_without_paths() -> None:
    assert clean_error(None, LAMBDA_CAUSE) == {"type": "PermanentError",
                                               "message": "card declined by <path>"}


def test_a_python_traceback_keeps_only_the_error_line() -> None:
    text = ('Traceback (most recent call last):\n  File "/var/task/app.py", line 3, in f\n'
            "KeyError: 'amount'")
    assert clean_error("KeyError", text) == {"type": "KeyError", "message": "KeyError: 'amount'"}


def test_plain_messages_pass_unchanged() -> None:
    assert clean_error("States.Timeout", "Task timed out after 2.00 seconds") == {
        "type": "States.Timeout", "message": "Task timed out after 2.00 seconds"}


def test_errors_of_older_rows_are_served_in_the_new_shape_and_cleaned() -> None:
    raw = ExecutionError.model_validate({"Error": "PermanentError", "Cause": LAMBDA_CAUSE})
    assert raw.model_dump() == {"step_id": None, "phase": None, "type": "PermanentError",
                                "message": "card declined by <path>"}


def _step(step_id: str, position: int, status: StepStatus,
          error: dict[str, Any] | None = None) -> StepRun:
    return StepRun(step_id=step_id, position=position, status=status, error=error)


def test_the_failure_cause_is_the_first_failed_step() -> None:
    steps = [_step("pay", 2, StepStatus.FAILED, {"type": "Declined", "message": "no"}),
             _step("check", 1, StepStatus.COMPENSATION_FAILED,
                   {"type": "Locked", "message": "busy"})]
    assert failure_cause(steps) == {"step_id": "pay", "phase": "action", "type": "Declined",
                                    "message": "no"}
    assert failure_cause([_step("check", 1, StepStatus.COMPENSATED)]) is None


def _execution(**changes: Any) -> Execution:
    step = StepRun(step_id="pay", position=1, status=StepStatus.SUCCEEDED,
                   started_at=T0, ended_at=T0 + timedelta(seconds=1),
                   attempts=[Attempt(phase="action", attempt=1, outcome="succeeded",
                                     started_at=T0, ended_at=T0 + timedelta(seconds=1),
                                     duration_ms=1000)])
    fields: dict[str, Any] = {"id": "e1", "saga_id": "s", "revision": 1, "version": "1.0.0",
                              "status": ExecutionStatus.COMPLETED, "input": {},
                              "started_at": T0, "updated_at": T0, "steps": [step]}
    return Execution(**(fields | changes))


def test_the_comparison_covers_every_field_to_the_microsecond() -> None:
    write = _execution()
    assert differences(write, _execution(consistency={"source": "read_model"})) == []
    read = _execution()
    read.steps[0].started_at = T0.replace(microsecond=123000)  # cut to milliseconds
    read.steps[0].attempts[0].error_message = "stale"
    read.updated_at = T0 + timedelta(microseconds=1)
    found = differences(write, read)
    assert any(f.startswith("updated_at") for f in found)
    assert any(f.startswith("steps[pay].started_at") for f in found)
    assert any(f.startswith("steps[pay].attempts[0].error_message") for f in found)


class _Executions:
    def __init__(self, execution: Execution) -> None:
        self.execution = execution
        self.transitions: list[dict[str, Any]] = []

    def get(self, execution_id: str) -> Execution | None:
        return self.execution

    def latest(self, saga_id: str, status: Any = None) -> Execution | None:
        return self.execution

    def transition(self, execution_id: str, allowed_from: set[ExecutionStatus],
                   to: ExecutionStatus, event_type: str, data: dict[str, Any],
                   error: dict[str, Any] | None = None,
                   by_operator: bool = False) -> Execution | None:
        self.transitions.append({"to": to, "error": error, "by_operator": by_operator})
        self.execution = self.execution.model_copy(update={
            "status": to, "error": ExecutionError.model_validate(error) if error
            else self.execution.error})
        return self.execution

    def mark_started(self, execution_id: str, run: RunRef) -> None:
        pass


class _Definitions:
    def get(self, saga_id: str) -> object:
        return object()

    def get_revision(self, saga_id: str, revision: int) -> object:
        return SimpleNamespace(pivot=lambda: None)  # a saga without a pivot step


class _Engine:
    def start(self, saga: Any, execution_id: str, kind: RunKind, *,
              at_step: str | None = None, parent: RunRef | None = None) -> RunRef:
        return RunRef(execution_id, "where", f"run-{kind}")


def _service(execution: Execution) -> tuple[ExecutionService, _Executions]:
    store = _Executions(execution)
    service = ExecutionService(_Definitions(), store, _Engine(),  # type: ignore[arg-type]
                               ExecutionPolicy(faults_enabled=False), reads=None)  # type: ignore[arg-type]
    return service, store


def test_a_retried_compensation_says_again_which_step_failed() -> None:
    failed = _execution(status=ExecutionStatus.COMPENSATION_FAILED, error={
        "step_id": "pay", "phase": "compensation", "type": "Locked", "message": "busy"})
    failed.steps = [_step("check", 1, StepStatus.COMPENSATION_FAILED,
                          {"type": "Locked", "message": "busy"}),
                    _step("pay", 2, StepStatus.FAILED, {"type": "Declined", "message": "no"})]
    service, store = _service(failed)
    moved = service.retry_compensation("e1", Actor(name="ops"))
    assert moved.status is ExecutionStatus.COMPENSATING
    assert store.transitions[-1]["error"] == {"step_id": "pay", "phase": "action",
                                              "type": "Declined", "message": "no"}


def test_a_requested_compensation_says_who_asked() -> None:
    service, store = _service(_execution())
    service.compensate("s", None, Actor(name="ops"))
    assert store.transitions[-1]["error"] == {
        "step_id": None, "phase": "compensation", "type": "CompensationRequested",
        "message": "compensation requested by ops"}


def test_a_participants_url_stays_readable_and_loses_its_secrets() -> None:
    # Row 15 of the hostile-input issue: which endpoint failed must be told, a file path of
    # the machine must not, and a query's values or a userinfo never are.
    cleaned = clean_error("PermanentError", "http://127.0.0.1:8081/book?token=abc answered 400: "
                          "no seats (see /var/task/chalicelib/x.py)")
    assert cleaned["message"] == ("http://127.0.0.1:8081/book?token=*** answered 400: no seats "
                                  "(see <path>)")
    assert "secret" not in clean_error("E", "https://me:secret@pay.example/charge failed")[
        "message"]
    assert clean_error("E", "https://me:secret@pay.example/charge failed")["message"] == \
        "https://pay.example:443/charge failed"
