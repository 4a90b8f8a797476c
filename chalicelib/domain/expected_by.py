"""When an execution is next expected to move: its `expected_by`, the reconciler's cue. Pure.

The reconciler asks the engine about an active execution (a DescribeExecution on Step
Functions, from a quota the whole account shares) only once this moment has passed by its
grace. An execution that legitimately waits (a callback's partner, a timer, a long attempt)
costs nothing until then, and one whose run was lost is found soon after the moment by which
something should have happened to it.

The moment is set as an execution starts (`at_start`), as each attempt of a step's action or
compensation is admitted (`attempt_bound`), and as a step starts waiting (`wait_bound`); each
new one is folded into the kept one by `moved`. A final execution expects nothing (None).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from chalicelib.domain.lifecycle import LAMBDA_MAX_TIMEOUT_S, RETRIABLE_RETRY, RetryPolicy

# No attempt runs longer than a Lambda may (a Task's timeout, its margin included, is capped
# there), so nothing an attempt admitted earlier still needs lies further than this past the
# moment a newer attempt gives.
ATTEMPT_SPAN = timedelta(seconds=LAMBDA_MAX_TIMEOUT_S)


def at_start(started_at: datetime) -> datetime:
    """A new execution: its run starts, and its first step is delivered, at once."""
    return started_at


def attempt_bound(deadline: datetime, margin_s: int) -> datetime:
    """An admitted attempt: its call is cut at its deadline and its Task times out a margin
    later (config saga.task_timeout_margin), so the engine moves on by then."""
    return deadline + timedelta(seconds=margin_s)


def wait_bound(until: datetime, margin_s: int) -> datetime:
    """A step that starts waiting (a callback: until its deadline; a timer: until its
    moment): the engine's Task ends by then plus the margin."""
    return until + timedelta(seconds=margin_s)


def moved(current: datetime | None, at: datetime) -> datetime:
    """The moment kept once the execution is next expected to move by `at`.

    A later moment already kept stays, but only as far as an attempt may still run past
    `at`: the attempts of a parallel group are admitted side by side, and the group moves on
    when the last of them ends. Further out than that, the kept moment is a wait's, and this
    move shows the wait is over (a waiting step is alone in its group: nothing else of its
    execution is admitted while it waits), so it gives way. Keeping it would hide an
    execution lost after its wait ended for as long as the wait could have lasted
    (saga.max_wait, 30 days by default).
    """
    if current is None or current <= at:
        return at
    return min(current, at + ATTEMPT_SPAN)


# An Express run keeps no history, so nothing but the write model says it is alive. Between
# two attempts of a step it waits out the retry's backoff without a word to the write model:
# at most the longest backoff of a retry policy (lifecycle's).
EXPRESS_RETRY_GAP = timedelta(seconds=max(RetryPolicy().max_delay_seconds,
                                          RETRIABLE_RETRY.max_delay_seconds))


def express_run_lost(expected: datetime, now: datetime, grace_s: float) -> bool:
    """Whether an execution whose forward run is on Express, still RUNNING, has lost its run:
    it should have moved by `expected`, and neither its grace nor a retry's longest backoff
    explains the silence since."""
    return now > expected + timedelta(seconds=grace_s) + EXPRESS_RETRY_GAP
