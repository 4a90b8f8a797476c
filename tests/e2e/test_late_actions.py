"""The late-action rule end to end: Step Functions in LocalStack, the step Lambdas, MariaDB,
the event pipeline and a participant that keeps a ledger (tests/support/ledger_participant).
Whatever the participant committed is undone exactly once when the saga does not complete,
also when it answers after its deadline or answers something odd; the read model then equals
the write model field by field."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest

from chalicelib.config import Settings
from chalicelib.domain.lifecycle import OUTCOME_UNKNOWN, OUTCOME_UNKNOWN_FINAL
from tests.e2e.conftest import Api
from tests.support.ledger_participant import LedgerServer, ledger_participant
from tests.support.records import matching_views


@pytest.fixture
def participant() -> Iterator[LedgerServer]:
    with ledger_participant() as server:
        yield server


def _saga(api: Api, url: str, *, timeout: str = "2s", max_retries: int = 0) -> str:
    saga_id = f"late-{uuid.uuid4().hex[:10]}"
    step = {"name": "A participant", "description": "keeps a ledger", "timeout": timeout}
    api.create_saga({
        "id": saga_id, "name": "Late actions", "version": "1.0.0",
        "description": "a participant that answers late or oddly",
        "steps": [
            {**step, "id": "hold", "order": 1, "action": f"{url}/hold",
             "compensation": f"{url}/release", "max_retries": 0, "input": {}},
            {**step, "id": "book", "order": 2, "action": f"{url}/book",
             "compensation": f"{url}/cancel", "max_retries": max_retries},
        ]})
    return saga_id


def test_an_effect_committed_before_the_deadline_but_answered_after_is_undone(
        api: Api, participant: LedgerServer, settings_e2e: Settings) -> None:
    """Row 1: the participant commits at 1.5 s of a 2 s deadline and answers at 3.5 s. The
    step cuts the call at 2 s, and the compensation is sent only once the margin has passed."""
    saga_id = _saga(api, participant.url)
    execution = api.wait(api.execute(saga_id, input={"work_s": 1.5, "answer_after_s": 2.0})[
        "id"], timeout_s=90)
    assert execution["status"] == "COMPENSATED", execution
    ledger = participant.ledger
    assert ledger.committed_then_cut == 1
    assert ledger.balanced() == []
    assert len(ledger.committed) == 2  # hold and book both committed, both undone
    cancel = next(c for c in ledger.compensations if c["step_id"] == "book")
    assert cancel["action_result"] is None
    assert cancel["action_error"]["type"] in (OUTCOME_UNKNOWN, OUTCOME_UNKNOWN_FINAL)
    assert "deadline" in cancel["action_error"]["message"]
    margin = settings_e2e.saga.task_timeout_margin_s
    book = [c for c in ledger.compensations if c["step_id"] == "book"]
    assert len(book) == 1
    sent_deadline = datetime.fromisoformat(cancel["deadline"]) - timedelta(seconds=2)
    assert sent_deadline.timestamp() >= cancel["received_at"] - 1  # its own deadline is fresh
    steps = {s["step_id"]: s for s in execution["steps"]}
    assert steps["book"]["status"] == "COMPENSATED"
    assert [a["outcome"] for a in steps["book"]["attempts"]] == ["unknown", "succeeded"]
    assert margin >= 1
    matching_views(settings_e2e, execution["id"])


def test_attempt_numbers_grow_across_a_cut_and_the_retry_completes(
        api: Api, participant: LedgerServer, settings_e2e: Settings) -> None:
    """Row 14: the first attempt is cut at its deadline (it never commits: it works past it),
    the retry is attempt 2 and succeeds; counts match the attempts listed, in time order."""
    saga_id = _saga(api, participant.url, max_retries=1)
    # Only the first delivery of book works slowly: the input says so per attempt.
    execution_id = api.execute(saga_id, input={"work_s": 0, "slow_first": True})["id"]
    execution = api.wait(execution_id, timeout_s=90)
    assert execution["status"] == "COMPLETED", execution
    book = next(s for s in execution["steps"] if s["step_id"] == "book")
    attempts = [(a["attempt"], a["outcome"]) for a in book["attempts"]
                if a["phase"] == "action"]
    assert attempts == [(1, "unknown"), (2, "succeeded")]
    assert book["action_attempts"] == len(attempts)
    started = [a["started_at"] for a in book["attempts"]]
    assert started == sorted(started)
    assert participant.ledger.balanced() == [
        f"{execution_id}:book:action: committed 1, undone 0",
        f"{execution_id}:hold:action: committed 1, undone 0"]
    matching_views(settings_e2e, execution_id)
