"""Saga definitions as the API receives and returns them. Data only: rules live in validation.py.

The models parse shapes and types; every value rule (lengths, ranges, formats, uniqueness) comes
from the configured validation rules, so that a request can be told all of its faults at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class _Model(BaseModel):
    # Strict: JSON's types as sent, never coerced ("1", 1.0 or true are not an order of 1).
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False, strict=True)


class StepDefinition(_Model):
    id: str | None = None
    name: str | None = None
    description: str | None = None
    order: int | None = None
    action: str | None = None
    compensation: str | None = None
    max_retries: int | None = None
    timeout: str | None = None
    active: bool = True
    type: str | None = None
    # Free-form settings handed to the action and compensation (amounts, SKUs, targets, ...).
    config: dict[str, Any] = Field(default_factory=dict)


class SagaDefinition(_Model):
    id: str | None = None
    name: str | None = None
    description: str | None = None
    version: str | None = None
    steps: list[StepDefinition] = Field(default_factory=list)
    active: bool = True
    type: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)


class StoredSaga(BaseModel):
    """A validated definition version as stored, with what the store adds."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    description: str
    version: str
    revision: int
    steps: list[StepDefinition]
    active: bool
    type: str | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    created_at: datetime
    updated_at: datetime
    version_created_at: datetime

    def active_steps(self) -> list[StepDefinition]:
        return sorted((s for s in self.steps if s.active), key=lambda s: s.order or 0)
