"""Use cases for saga definitions. Talks to the ports only; no driver is imported here."""

from __future__ import annotations

import logging
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.domain import semver
from chalicelib.domain.children import child_problems
from chalicelib.domain.errors import BadRequest, Conflict, LimitReached, NotFound
from chalicelib.domain.models import SagaDefinition, Step, StepDefinition, StoredSaga
from chalicelib.domain.requests import ActiveRequest
from chalicelib.domain.validation import (
    DefinitionInvalid,
    ValidationPolicy,
    Violation,
    check_definition,
    merge_violations,
    read_definition,
    validate_definition,
)
from chalicelib.domain.workflow import DEFAULT_WORKFLOW, Workflow, WorkflowChoice, choose
from chalicelib.usecases.ports import (
    Actor,
    DefinitionStore,
    Engine,
    ExecutionStore,
    Page,
    SagaFilter,
)

logger = logging.getLogger(__name__)
MAX_PAGE = 100
DEFAULT_PAGE = 20
_DIGITS = re.compile(r"[0-9]{1,4}")


@dataclass(frozen=True)
class Limits:
    max_sagas: int
    max_steps: int


class DefinitionService:
    def __init__(self, store: DefinitionStore, policy: ValidationPolicy, limits: Limits, *,
                 executions: ExecutionStore, engine: Engine) -> None:
        self.store = store
        self.policy = policy
        self.limits = limits
        self.executions = executions
        self.engine = engine

    # -- create and change ----------------------------------------------------------------

    def create(self, saga: SagaDefinition, actor: Actor,
               shape: Sequence[Violation] = ()) -> StoredSaga:
        """Store a new saga, or a new version when the id exists and the version is higher.
        DefinitionInvalid lists every rule the definition breaks, with `shape` (what reading
        the body found: values of the wrong type, unknown fields) first."""
        if violations := merge_violations(shape, validate_definition(saga, self.policy)) \
                or self._child_problems(saga):
            raise DefinitionInvalid(violations)
        assert saga.id is not None and saga.version is not None
        existing = self.store.get(saga.id)
        if existing is None:
            self._check_limits(new_sagas=1, added_steps=len(saga.steps))
            return self._with_machines(self.store.insert_version(
                saga, expected_revision=None, actor=actor, action="create",
                workflow=self._workflow(saga)))
        if not semver.is_newer(saga.version, existing.version):
            raise Conflict(
                f"saga {saga.id!r} already exists at version {existing.version}; to store a new "
                f"version, post it with a version higher than {existing.version}",
                saga_id=saga.id, latest_version=existing.version)
        return self._store_new_version(existing, saga, actor, action="update")

    def add_step(self, saga_id: str, step: StepDefinition, actor: Actor,
                 shape: Sequence[Violation] = ()) -> StoredSaga:
        """A new version with `step` added: after the last group unless it names its order
        (an order given as null is kept, and refused with the rest). shape: what reading the
        step found, reported with the rules the new version breaks."""
        existing = self.get(saga_id)
        if "order" not in step.model_fields_set:
            step = step.model_copy(update={
                "order": max((s.order or 0 for s in existing.steps), default=0) + 1})
        body = self._as_payload(existing, [*[s.model_dump() for s in existing.steps],
                                           step.model_dump()])
        if shape:
            # Its shape errors keep the step's own names; the new version's rules name it
            # steps[n] (n: where it joins), less what those errors already say.
            at = f"steps[{len(existing.steps)}]."
            named = [Violation(f"{at}{v.field}", v.rule, v.message, v.value) for v in shape]
            saga, read = read_definition(body)
            rules = merge_violations(named, [*read, *validate_definition(saga, self.policy)])
            raise DefinitionInvalid([*shape, *rules[len(named):]])
        return self._store_new_version(existing, check_definition(body, self.policy), actor,
                                       action="add_step")

    def remove_step(self, saga_id: str, step_id: str, actor: Actor) -> StoredSaga:
        existing = self.get(saga_id)
        remaining = [s.model_dump() for s in existing.steps if s.id != step_id]
        if len(remaining) == len(existing.steps):
            raise NotFound(f"saga {saga_id!r} has no step {step_id!r}", saga_id=saga_id,
                           step_id=step_id)
        if not remaining:
            # The request is well formed; the saga's state refuses it.
            raise Conflict(f"step {step_id!r} is saga {saga_id!r}'s only step: a saga needs "
                           "at least one; destroy the saga instead", saga_id=saga_id,
                           step_id=step_id)
        body = self._as_payload(existing, remaining)
        return self._store_new_version(existing, check_definition(body, self.policy), actor,
                                       action="remove_step")

    def set_active(self, saga_id: str, request: ActiveRequest, actor: Actor) -> StoredSaga:
        saga = self.store.set_active(saga_id, request.active, actor)
        if saga is None:
            raise NotFound(f"saga {saga_id!r} does not exist", saga_id=saga_id)
        return saga

    def destroy(self, saga_id: str, actor: Actor) -> None:
        self.get(saga_id)
        running = self.executions.count_active(saga_id)
        if running:
            raise Conflict(f"saga {saga_id!r} has {running} running execution(s); wait for them "
                           "to end before destroying it", saga_id=saga_id, running=running)
        revisions = [v["revision"] for v in self.store.versions(saga_id)]
        # Versions that executions ran stay readable (and their machines, for compensations).
        pinned = self.executions.pinned_revisions(saga_id)
        if not self.store.delete(saga_id, actor, keep_revisions=pinned):
            raise NotFound(f"saga {saga_id!r} does not exist", saga_id=saga_id)
        try:
            self.engine.discard(saga_id, [r for r in revisions if r not in pinned])
        except Exception:  # the saga is gone; leftover machines are harmless and logged
            logger.exception("could not delete the state machines of saga %s", saga_id)

    def _store_new_version(self, existing: StoredSaga, saga: SagaDefinition, actor: Actor,
                           action: str) -> StoredSaga:
        if violations := self._child_problems(saga):
            raise DefinitionInvalid(violations)
        self._check_limits(added_steps=len(saga.steps) - len(existing.steps))
        return self._with_machines(self.store.insert_version(
            saga, expected_revision=existing.revision, actor=actor, action=action,
            workflow=self._workflow(saga)))

    def _child_problems(self, saga: SagaDefinition) -> list[Violation]:
        """What only the store can tell of a valid definition's child steps: each calls a
        saga (at the version it pins) that exists; a compensatable child's saga has no pivot
        (past one it cannot be undone); and no saga calls this one back (a cycle)."""
        return child_problems(saga, self._child_version, self._callees)

    def _child_version(self, saga_id: str, version: str | None) -> StoredSaga | None:
        return self.store.get(saga_id, version)

    def _callees(self, saga_id: str) -> list[str]:
        """The sagas a saga's latest version calls (what a child of it would run now)."""
        found = self.store.get(saga_id)
        return [] if found is None else [step.saga for step in found.steps
                                         if step.active and step.saga is not None]

    def _workflow(self, saga: SagaDefinition) -> WorkflowChoice:
        """The workflow the version runs its forward path on, chosen once as it is stored."""
        steps = [Step.of(step) for step in saga.steps if step.active]
        return choose(Workflow(saga.workflow or DEFAULT_WORKFLOW), steps,
                      self.policy.worst_case_limits())

    def _with_machines(self, saga: StoredSaga) -> StoredSaga:
        # Machines are made when a version is stored; should Step Functions be down now,
        # execute makes them later, so storing the version does not depend on it.
        try:
            self.engine.prepare(saga)
        except Exception:
            logger.exception("could not create the state machines of %s r%s", saga.id,
                             saga.revision)
        return saga

    @staticmethod
    def _as_payload(existing: StoredSaga, steps: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": existing.id, "name": existing.name, "description": existing.description,
                "version": semver.bump_patch(existing.version), "steps": steps,
                "active": existing.active, "type": existing.type, "metadata": existing.metadata,
                "output": existing.output, "deadline": existing.deadline,
                "workflow": existing.workflow}

    def _check_limits(self, *, new_sagas: int = 0, added_steps: int = 0) -> None:
        totals = self.store.totals()
        if new_sagas and totals.sagas + new_sagas > self.limits.max_sagas:
            raise LimitReached(f"the service holds at most {self.limits.max_sagas} sagas; "
                               "destroy one first", max_sagas=self.limits.max_sagas)
        if added_steps > 0 and totals.steps + added_steps > self.limits.max_steps:
            raise LimitReached(f"the service holds at most {self.limits.max_steps} steps "
                               f"across all sagas ({totals.steps} now)",
                               max_steps=self.limits.max_steps)

    # -- read -----------------------------------------------------------------------------

    def get(self, saga_id: str, version: str | None = None) -> StoredSaga:
        saga = self.store.get(saga_id, version)
        if saga is None:
            where = f" at version {version}" if version else ""
            raise NotFound(f"saga {saga_id!r}{where} does not exist", saga_id=saga_id)
        return saga

    def list(self, *, limit: str | None = None, cursor: str | None = None,
             active: str | None = None, saga_type: str | None = None) -> Page:
        filters = SagaFilter(active=query_flag("active", active), type=saga_type or None)
        try:
            return self.store.list(page_size(limit), cursor or None, filters)
        except ValueError as bad_cursor:
            raise BadRequest(str(bad_cursor), value=cursor) from None

    def versions(self, saga_id: str) -> list[dict[str, Any]]:
        self.get(saga_id)
        return self.store.versions(saga_id)

    def saga_stats(self, saga_id: str) -> dict[str, Any]:
        saga = self.get(saga_id)
        versions = self.store.versions(saga_id)
        active = saga.active_steps()
        sizes = Counter(step.group for step in active)
        pivot = saga.pivot()
        return {"saga_id": saga.id, "version": saga.version, "revision": saga.revision,
                "versions": len(versions), "steps": len(saga.steps),
                "active_steps": len(active), "active": saga.active,
                # Its shape: groups run one after another, a group's steps side by side.
                "groups": len(sizes), "parallel_groups": sum(1 for n in sizes.values() if n > 1),
                "kinds": dict(sorted(Counter(step.kind.value for step in active).items())),
                "pivot": pivot.id if pivot else None,
                # Steps that branch: run only when their `when` holds (else SKIPPED), and
                # fan-outs that run once per item of a list (for_each).
                "conditional_steps": sum(1 for step in active if step.when is not None),
                "fanout_steps": sum(1 for step in active if step.for_each is not None)}

    def all_stats(self) -> dict[str, Any]:
        totals = self.store.totals()
        return {"sagas": totals.sagas, "active_sagas": totals.active_sagas,
                "steps": totals.steps, "versions": totals.versions, "by_type": totals.by_type,
                "limits": {"max_sagas": self.limits.max_sagas,
                           "max_steps": self.limits.max_steps}}


def page_size(raw: str | None) -> int:
    if raw is None or raw == "":
        return DEFAULT_PAGE
    # ASCII digits only: str.isdigit() also accepts '²', which int() refuses.
    if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= MAX_PAGE:
        raise BadRequest(f"limit must be a whole number from 1 to {MAX_PAGE}", value=raw)
    return int(raw)


def query_flag(name: str, raw: str | None) -> bool | None:
    """A listing's true-or-false filter, spelled exactly so (absent or empty: no filter;
    the document's enum says the same)."""
    if not raw:
        return None
    if raw not in ("true", "false"):
        raise BadRequest(f"{name} must be true or false", value=raw[:100])
    return raw == "true"
