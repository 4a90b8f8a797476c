"""Final means final: the domain's transition table."""

from __future__ import annotations

import pytest

from chalicelib.domain.executions import ExecutionStatus as S
from chalicelib.domain.executions import allowed_from, can_transition

FINAL = [S.COMPLETED, S.COMPENSATED, S.FAILED, S.COMPENSATION_FAILED, S.TIMED_OUT]


@pytest.mark.parametrize("final", FINAL)
@pytest.mark.parametrize("to", list(S))
def test_the_orchestration_never_moves_a_final_execution(final: S, to: S) -> None:
    assert not can_transition(final, to)


def test_a_late_step_cannot_complete_or_recompensate() -> None:
    assert allowed_from(S.COMPLETED) == {S.RUNNING}
    assert not can_transition(S.COMPENSATING, S.COMPLETED)
    assert allowed_from(S.COMPENSATING) == {S.RUNNING}


def test_only_operator_actions_reopen_a_final_execution() -> None:
    assert allowed_from(S.COMPENSATING, by_operator=True) == {S.COMPLETED,
                                                              S.COMPENSATION_FAILED}
    for final in (S.COMPENSATED, S.FAILED, S.TIMED_OUT):
        assert not any(can_transition(final, to, by_operator=True) for to in S)
