"""Field-by-field comparison of two views of one execution (write model, read model)."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel

from chalicelib.adapters.mongo.client import read_model
from chalicelib.adapters.mongo.read_model import MongoExecutionReadModel
from chalicelib.adapters.mysql.executions import load_execution
from chalicelib.config import Settings
from chalicelib.domain.executions import Attempt, Execution, StepRun
from chalicelib.roots import runtime

# Where each view comes from: different by design.
NOT_COMPARED = {"consistency"}


def _fields(model: type[BaseModel]) -> list[str]:
    # A field no view shows (exclude=True: the write model's own bookkeeping, such as
    # expected_by) is not the read model's to hold.
    return [name for name, field in model.model_fields.items()
            if name not in NOT_COMPARED and not field.exclude]


def differences(write: Execution | None, read: Execution | None) -> list[str]:
    """Every field of the execution, its steps and their attempts that differs ("" if none).
    The field lists come from the models, so a field added later is compared too."""
    if write is None or read is None:
        return [f"missing: write={write is not None} read={read is not None}"]
    found = [f"{name}: {getattr(write, name)!r} != {getattr(read, name)!r}"
             for name in _fields(Execution) if name != "steps"
             and getattr(write, name) != getattr(read, name)]
    if len(write.steps) != len(read.steps):
        return [*found, f"steps: {len(write.steps)} != {len(read.steps)}"]
    for mine, theirs in zip(write.steps, read.steps, strict=True):
        found += _step_differences(mine, theirs)
    return found


def _step_differences(write: StepRun, read: StepRun) -> list[str]:
    where = f"steps[{write.step_id}]"
    found = [f"{where}.{name}: {getattr(write, name)!r} != {getattr(read, name)!r}"
             for name in _fields(StepRun) if name != "attempts"
             and getattr(write, name) != getattr(read, name)]
    if len(write.attempts) != len(read.attempts):
        return [*found, f"{where}.attempts: {len(write.attempts)} != {len(read.attempts)}"]
    for n, (mine, theirs) in enumerate(zip(write.attempts, read.attempts, strict=True)):
        found += [f"{where}.attempts[{n}].{name}: {getattr(mine, name)!r} != "
                  f"{getattr(theirs, name)!r}" for name in _fields(Attempt)
                  if getattr(mine, name) != getattr(theirs, name)]
    return found


def same(write: Any, read: Any) -> bool:
    return not differences(write, read)


def matching_views(settings: Settings, execution_id: str, timeout_s: float = 30) -> Execution:
    """The write model once the read model holds exactly the same, field by field (the
    projector may still be applying the last events)."""
    reads = MongoExecutionReadModel(read_model(runtime.container().mongo,
                                               settings.database.mongodb))
    deadline = time.monotonic() + timeout_s
    while True:
        with runtime.container().connector.transaction() as cur:
            write = load_execution(cur, execution_id)
        found = differences(write, reads.get(execution_id))
        if not found:
            assert write is not None
            return write
        assert time.monotonic() < deadline, found
        time.sleep(0.2)
