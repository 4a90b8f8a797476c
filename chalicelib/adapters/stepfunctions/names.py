"""The names of a saga's state machines and of its runs. Both are part of ARNs that the write
model stores and the reconciler looks up: never change how they are made."""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable

from chalicelib.usecases.ports import RunKind

# Step Functions names (machines and runs) are at most 80 characters.
MAX_NAME = 80
# The machines of a version: forward and compensation; a version on Express runs its forward
# path on an Express machine (a retry forward, rare, on the Standard forward one).
FORWARD = "forward"
UNDO = "compensation"  # a field name, not a phase
EXPRESS = "express"
UNDO_SUFFIX = "-undo"
EXPRESS_SUFFIX = "-express"
_MACHINE_SUFFIX = {FORWARD: "", UNDO: UNDO_SUFFIX, EXPRESS: EXPRESS_SUFFIX}
# The compensation an Express run hands its failure to: one run per execution, named after it
# (a duplicate Express run's hand-off is the same run).
HANDOFF_SUFFIX = "-h"
# A child's compensation asked for by its parent's undo: one run per child, named after it.
PARENT_UNDO_SUFFIX = "-u"
# A compensation run and a retry forward are each a new run of their execution, named after
# it with one of these suffixes and 8 random hex digits.
SUFFIX_OF: dict[RunKind, str] = {RunKind.COMPENSATION: "-c", RunKind.RESUME: "-f"}
RUN_SUFFIX_LENGTH = 2 + 8
_NAME_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def machine_name(stage: str, saga_id: str, revision: int, kind: str) -> str:
    """A name of at most 80 characters, unique per (stage, saga, revision, kind): stages may
    share one account (locally, `local` and `test` share LocalStack).

    The readable part maps '.' to '-' (Step Functions allows neither '.' nor long names), so
    on its own it is not injective (`a.b` and `a-b`); a hash of the exact, case-sensitive
    stage and id makes it so, and keeps the name derivable from the id alone."""
    suffix = f"-r{revision}" + _MACHINE_SUFFIX[kind]
    digest = hashlib.sha256(f"{stage}\0{saga_id}".encode()).hexdigest()[:16]
    readable = _NAME_CHARS.sub("-", f"{stage}-{saga_id}")
    room = MAX_NAME - len(suffix) - len(digest) - 1
    return f"{readable[:room]}-{digest}{suffix}"


def is_express(machine_arn: str) -> bool:
    """Whether a machine (by its ARN or name) is a version's Express forward machine."""
    return machine_arn.endswith(EXPRESS_SUFFIX)


def compensation_machine_of(forward_machine: str) -> str:
    """The compensation machine (ARN or name) of a version's forward or Express machine."""
    return forward_machine.removesuffix(EXPRESS_SUFFIX) + UNDO_SUFFIX


def handoff_run_name(execution_id: str) -> str:
    return f"{execution_id}{HANDOFF_SUFFIX}"


def machine_kind(run: RunKind) -> str:
    """Which of the version's machines a run of that kind starts: a retry forward enters the
    forward machine again."""
    return UNDO if run is RunKind.COMPENSATION else FORWARD


def run_name(execution_id: str, kind: RunKind,
             salt: Callable[[], str] = lambda: uuid.uuid4().hex[:8]) -> str:
    """The execution's forward run is named by its id, so starting it twice is one run; a
    compensation or a retry forward is a new run each time an operator asks for one."""
    if kind is RunKind.FORWARD:
        return execution_id
    return f"{execution_id}{SUFFIX_OF[kind]}{salt()}"
