"""When an execution is next expected to move (chalicelib.domain.expected_by), and where the
step runtime sets it: each admitted attempt of a participant's action or compensation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib.domain import expected_by
from chalicelib.domain.lifecycle import LAMBDA_MAX_TIMEOUT_S, Phase
from chalicelib.domain.step_context import OutcomeUnknown
from tests.support.step_world import World, build_world
from tests.unit.test_late_action_rule import MARGIN_S, SAGA, _answers

T = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
S = timedelta(seconds=1)


def test_the_rule() -> None:
    assert expected_by.at_start(T) == T
    assert expected_by.attempt_bound(T, 5) == T + 5 * S
    assert expected_by.wait_bound(T + 30 * 86400 * S, 5) == T + (30 * 86400 + 5) * S
    assert expected_by.ATTEMPT_SPAN == LAMBDA_MAX_TIMEOUT_S * S
    assert expected_by.moved(None, T) == T
    assert expected_by.moved(T, T + S) == T + S  # later: taken
    # Earlier, as a parallel sibling's attempt: the later one stays.
    assert expected_by.moved(T + 600 * S, T) == T + 600 * S
    # A wait's far beyond what any attempt may run: the new move shows it is over.
    assert expected_by.moved(T + 86400 * S, T) == T + expected_by.ATTEMPT_SPAN


@pytest.fixture
def world() -> World:
    world = build_world(SAGA, task_timeout_margin_s=MARGIN_S)
    # Started on the world's clock, as the runtime's attempts are.
    at = world.clock.wall
    world.store.put(world.execution().model_copy(update={
        "started_at": at, "updated_at": at, "expected_by": expected_by.at_start(at)}))
    return world


def test_an_admitted_attempt_is_expected_to_end_by_its_task_timeout(world: World) -> None:
    started = world.execution().started_at
    assert world.execution().expected_by == started
    world.deliver("reserve")  # a built-in step: one transaction, nothing admitted ahead
    assert world.execution().expected_by == started
    sent = _answers(world, OutcomeUnknown("cut at its deadline"), OutcomeUnknown("again"))
    with pytest.raises(OutcomeUnknown):
        world.deliver("pay")
    # Claimed before the call (timeout 4 s), kept whatever the attempt came to.
    assert sent[0].deadline == world.clock.wall + 4 * S
    assert world.execution().expected_by == sent[0].deadline + MARGIN_S * S
    world.clock.sleep(60)
    with pytest.raises(OutcomeUnknown):
        world.deliver("pay")
    assert world.execution().expected_by == sent[1].deadline + MARGIN_S * S
    # Its own compensation waits out the margin, then is admitted with a deadline of its own.
    world.deliver("pay", Phase.COMPENSATION)
    undo = sent[-1]
    assert undo.phase == Phase.COMPENSATION and undo.deadline is not None
    assert world.execution().expected_by == undo.deadline + MARGIN_S * S


def test_a_long_wait_gives_way_to_the_next_attempt(world: World) -> None:
    """A step waited (a callback's 30 days); it ended early and the next attempt is admitted:
    an execution lost from here on must be found within minutes, not in 30 days."""
    world.deliver("reserve")
    with world.ledger.transaction() as tx:
        tx.lock_execution("e1")
        tx.expect_by("e1", expected_by.wait_bound(world.clock.wall + 30 * 86400 * S,
                                                  MARGIN_S))
    world.clock.sleep(3600)
    sent = _answers(world, {})
    world.deliver("pay")
    bound = sent[0].deadline + MARGIN_S * S  # type: ignore[operator]
    assert world.execution().expected_by == bound + expected_by.ATTEMPT_SPAN
