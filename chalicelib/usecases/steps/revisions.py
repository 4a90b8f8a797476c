"""The steps of stored saga revisions, as an attempt looks them up."""

from __future__ import annotations

from typing import TYPE_CHECKING

from chalicelib.domain.fanout import split_run_id
from chalicelib.domain.models import Step, StoredSaga
from chalicelib.domain.step_context import PermanentError
from chalicelib.domain.step_runs import LockedExecution
from chalicelib.usecases.ports import DefinitionStore

if TYPE_CHECKING:
    from chalicelib.usecases.steps.ledger import LedgerTransaction

# A warm Lambda keeps at most this many revisions before it starts over.
_MAX_KEPT = 256


class StepDefinitions:
    """A step of a stored revision. A stored revision never changes, so a warm Lambda keeps
    the ones it has read (config saga.caching_enabled; off: one read per lookup)."""

    def __init__(self, definitions: DefinitionStore, *, cache: bool = True) -> None:
        self.definitions = definitions
        self.cache = cache
        self._revisions: dict[tuple[str, int], StoredSaga] = {}

    def locked(self, tx: LedgerTransaction, execution_id: str,
               step_id: str) -> tuple[LockedExecution, Step]:
        """The execution, locked in `tx`, and the step of the revision it runs."""
        execution = tx.lock_execution(execution_id)
        if execution is None:
            raise PermanentError(f"no execution {execution_id!r}")
        return execution, self.step(execution.saga_id, execution.revision, step_id)

    def step(self, saga_id: str, revision: int, step_id: str) -> Step:
        key = (saga_id, revision)
        saga = self._revisions.get(key) if self.cache else None
        if saga is None:
            saga = self.definitions.get_revision(saga_id, revision)
            if saga is None:
                raise PermanentError(f"saga {saga_id!r} revision {revision} is gone")
            if self.cache:
                if len(self._revisions) >= _MAX_KEPT:
                    self._revisions.clear()
                self._revisions[key] = saga
        own_id, index = split_run_id(step_id)
        found = saga.step(own_id)
        if found is None or (index is not None and found.for_each is None):
            raise PermanentError(f"saga {saga_id!r} has no step {step_id!r}")
        # An item of a fan-out runs as the step does, under its own run's id.
        return found if index is None else found.model_copy(update={"id": step_id,
                                                                    "item_index": index})
