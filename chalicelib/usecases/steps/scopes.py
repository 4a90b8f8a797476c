"""The scope a mapping or a condition is resolved in, read from the write model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from chalicelib.domain.lifecycle import StepStatus
from chalicelib.domain.mapping import Scope, references
from chalicelib.usecases.steps.ledger import LedgerTransaction


def uses_results(*uses: Any) -> bool:
    """Whether any of the mappings or reference texts names an earlier step's result."""
    return any(text.startswith("$.results.") for use in uses
               for _, text in references(use))


def scope_of(tx: LedgerTransaction, execution_id: str, saga_input: Mapping[str, Any],
             results: Mapping[str, Any], *uses: Any) -> Scope:
    """The scope for `uses` (mappings, or a condition's reference texts as a list); the
    skipped steps are read only when one of them names a step's result."""
    skipped = (frozenset(tx.steps_in(execution_id, StepStatus.SKIPPED))
               if uses_results(*uses) else frozenset())
    return Scope(execution_id, saga_input, results, skipped)
