"""The lifecycle of an execution and of its steps, written once. Pure data, no I/O.

Everything that decides what an execution or a step may do next reads it from here: the
compiler (the error names its machines raise and catch, which errors are never retried, the
compensation retry policy), the step runtime, the recorder, the reconciler, the projector, the
read model and the SQL adapters (which get these names as query parameters). A test walks the
tables below and another greps the source tree for any of these names spelled elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from chalicelib.domain import event_types


class ExecutionStatus(StrEnum):
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    COMPENSATING = "COMPENSATING"
    COMPENSATED = "COMPENSATED"
    COMPENSATION_FAILED = "COMPENSATION_FAILED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    # A retriable step after the pivot ran out of attempts: nothing is undone, nothing runs
    # until an operator retries it forward (or resolves it with a reason).
    PARKED = "PARKED"

    @property
    def is_final(self) -> bool:
        return self not in ACTIVE


class StepStatus(StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    COMPENSATING = "COMPENSATING"
    COMPENSATED = "COMPENSATED"
    COMPENSATION_FAILED = "COMPENSATION_FAILED"
    # Its action may or may not have taken effect (its call was cut at the deadline, or it
    # answered something that cannot be recorded): it is undone like a step that succeeded.
    OUTCOME_UNKNOWN = "OUTCOME_UNKNOWN"
    # A callback step whose participant took the call and will complete it later, or a timer
    # running: the engine waits (no compute is spent) until it is completed or times out.
    WAITING = "WAITING"
    # Its `when` condition was false when its turn came: it never ran, and is never undone.
    SKIPPED = "SKIPPED"


class StepKind(StrEnum):
    """Garcia-Molina and Salem's step kinds: what a failure at or after the step does."""

    COMPENSATABLE = "compensatable"  # undone when a later step fails for good
    PIVOT = "pivot"  # the go/no-go point: once it succeeds, the saga only goes forward
    RETRIABLE = "retriable"  # after the pivot: retried, never compensated; parks when stuck
    # Called once, then waits until a partner or a person completes it through the API (or
    # it times out: an unknown outcome). Before the pivot it is compensatable; after it, it
    # behaves as retriable (a timeout parks the execution). Never the pivot.
    CALLBACK = "callback"
    # A timer: waits a duration or until a timestamp. No action, no compensation: never undone.
    WAIT = "wait"


DEFAULT_KIND = StepKind.COMPENSATABLE
# Kinds that wait in the engine: each is alone in its group (a Parallel branch holds one Task).
WAITING_KINDS: frozenset[StepKind] = frozenset({StepKind.CALLBACK, StepKind.WAIT})


def is_compensated(kind: StepKind, *, has_action: bool = True) -> bool:
    """Whether a failure later on undoes a step of this kind (before the pivot): not a timer,
    not a retriable step, and not a callback with no action (an approval did nothing)."""
    if kind in (StepKind.WAIT, StepKind.RETRIABLE):
        return False
    return has_action


def needs_action(kind: StepKind) -> bool:
    """A timer has none; a callback may have none (an approval: someone completes it)."""
    return kind not in WAITING_KINDS


class Phase(StrEnum):
    """Which half of a step an attempt runs: its action, or the compensation undoing it."""

    ACTION = "action"
    COMPENSATION = "compensation"


class Outcome(StrEnum):
    """How one attempt ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    # The participant may have done its work: no answer by the deadline, or one that cannot
    # be stored. Never "nothing happened": the step is compensated.
    UNKNOWN = "unknown"


class RunStatus(StrEnum):
    """What the engine says of one of its runs (Step Functions' statuses); MISSING: never
    started."""

    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    TIMED_OUT = "TIMED_OUT"
    ABORTED = "ABORTED"
    MISSING = "MISSING"
    # The engine keeps no record of the run (an Express run): what happened to it is decided
    # from the write model and the moment the execution was next expected to move.
    UNKNOWN = "UNKNOWN"


# Still going: the orchestration may move these; everything else is final.
ACTIVE: frozenset[ExecutionStatus] = frozenset({ExecutionStatus.RUNNING,
                                                ExecutionStatus.COMPENSATING})
FINAL: frozenset[ExecutionStatus] = frozenset(s for s in ExecutionStatus if s not in ACTIVE)
# A failed end an operator may mark resolved.
RESOLVABLE: frozenset[ExecutionStatus] = frozenset({ExecutionStatus.COMPENSATION_FAILED,
                                                    ExecutionStatus.FAILED,
                                                    ExecutionStatus.TIMED_OUT,
                                                    ExecutionStatus.PARKED})


# Where each operator action may start (the console offers its button there): compensate a
# COMPLETED execution, retry a failed compensation, retry a parked one forward (the three
# by_operator rows of TRANSITIONS), or resolve a failed end.
OPERATOR_ACTIONS: dict[str, frozenset[ExecutionStatus]] = {
    "compensate": frozenset({ExecutionStatus.COMPLETED}),
    "retry_compensation": frozenset({ExecutionStatus.COMPENSATION_FAILED}),
    "retry_forward": frozenset({ExecutionStatus.PARKED}),
    "resolve": RESOLVABLE,
}


def accepts_decision(resolved_by: str | None) -> bool:
    """Whether an operator may still decide what becomes of an execution. Resolving is a
    decision taken once: a resolved execution accepts no further operator decision (another
    resolve, a retry forward, a retry of its compensation), so two operators can never both
    act on it. The stores check it under the execution's row lock (in SQL: `resolved_by IS
    NULL` in the guard of every operator's change)."""
    return resolved_by is None


def can_resolve(status: ExecutionStatus, resolved_by: str | None) -> bool:
    """A failed end no one has decided on yet."""
    return status in RESOLVABLE and accepts_decision(resolved_by)


# The triage queue: ends a person must look at (a compensation that failed, a parked forward
# path, a run that timed out), and running executions that wait for a person's approval. A
# plain FAILED end undid what it did and needs no one.
NEEDS_ATTENTION: frozenset[ExecutionStatus] = frozenset({ExecutionStatus.COMPENSATION_FAILED,
                                                         ExecutionStatus.PARKED,
                                                         ExecutionStatus.TIMED_OUT})
# The status of an execution whose approval step waits (it is in the queue until decided).
AWAITING_APPROVAL = ExecutionStatus.RUNNING


def needs_attention(status: ExecutionStatus, resolved_by: str | None, *,
                    awaiting_approval: bool = False) -> bool:
    """Whether an execution is in the triage queue: one of NEEDS_ATTENTION's ends, not yet
    resolved, or a RUNNING one with an approval step waiting for a person
    (awaiting_approval: chalicelib.domain.executions.awaits_approval). Every store's
    `needs_attention` filter is this rule (the SQL and MongoDB queries get these names as
    parameters)."""
    if status is AWAITING_APPROVAL:
        return awaiting_approval
    return status in NEEDS_ATTENTION and accepts_decision(resolved_by)


@dataclass(frozen=True)
class Transition:
    source: ExecutionStatus
    target: ExecutionStatus
    event: str  # the event type the change writes to the outbox
    by_operator: bool = False  # only an operator's action (compensate, retry) makes it


_S = ExecutionStatus
# Who may move an execution from one status to another, and the event each move emits. The
# orchestration (step Lambdas, the recorder, the reconciler, a failed start) only moves
# executions that are still going; once final, only an operator's action moves one (compensate
# a COMPLETED one, retry a failed compensation; resolving records a decision without changing
# the status), and none once it is resolved (accepts_decision). A late writer (a step whose
# Task timed out) is thereby refused instead of rewriting the outcome.
TRANSITIONS: tuple[Transition, ...] = (
    Transition(_S.RUNNING, _S.COMPLETED, event_types.SAGA_COMPLETED),
    Transition(_S.RUNNING, _S.COMPENSATING, event_types.COMPENSATION_STARTED),
    Transition(_S.RUNNING, _S.FAILED, event_types.SAGA_FAILED),
    Transition(_S.RUNNING, _S.TIMED_OUT, event_types.SAGA_FAILED),
    Transition(_S.RUNNING, _S.COMPENSATION_FAILED, event_types.COMPENSATION_FAILED),
    Transition(_S.COMPENSATING, _S.COMPENSATED, event_types.SAGA_COMPENSATED),
    # The reconciler, when the run ended compensated but no undo recorded it (every undo was
    # skipped, or the recorder never ran): it closes whatever path the run took.
    Transition(_S.RUNNING, _S.COMPENSATED, event_types.SAGA_COMPENSATED),
    Transition(_S.COMPENSATING, _S.COMPENSATION_FAILED, event_types.COMPENSATION_FAILED),
    Transition(_S.COMPENSATING, _S.FAILED, event_types.SAGA_FAILED),
    Transition(_S.COMPENSATING, _S.TIMED_OUT, event_types.SAGA_FAILED),
    Transition(_S.COMPLETED, _S.COMPENSATING, event_types.COMPENSATION_STARTED, by_operator=True),
    Transition(_S.COMPENSATION_FAILED, _S.COMPENSATING, event_types.COMPENSATION_STARTED,
               by_operator=True),
    Transition(_S.RUNNING, _S.PARKED, event_types.SAGA_PARKED),
    Transition(_S.PARKED, _S.RUNNING, event_types.SAGA_RESUMED, by_operator=True),
)
_BY_PAIR = {(t.source, t.target, t.by_operator): t for t in TRANSITIONS}
# The event that says an execution reached a status (the same whatever it came from).
EVENT_OF: dict[ExecutionStatus, str] = {t.target: t.event for t in TRANSITIONS}
# The status an execution-level event brings (TIMED_OUT's saga.failed carries its status).
STATUS_OF_EVENT: dict[str, ExecutionStatus] = {
    event_types.SAGA_COMPLETED: _S.COMPLETED,
    event_types.SAGA_COMPENSATED: _S.COMPENSATED,
    event_types.SAGA_FAILED: _S.FAILED,
    event_types.COMPENSATION_FAILED: _S.COMPENSATION_FAILED,
    event_types.COMPENSATION_STARTED: _S.COMPENSATING,
    event_types.SAGA_PARKED: _S.PARKED,
    event_types.SAGA_RESUMED: _S.RUNNING,
}


def transition(source: ExecutionStatus, target: ExecutionStatus, *,
               by_operator: bool = False) -> Transition | None:
    return _BY_PAIR.get((source, target, by_operator))


def can_transition(current: ExecutionStatus, to: ExecutionStatus, *,
                   by_operator: bool = False, resolved_by: str | None = None) -> bool:
    """Whether the table allows the move; an operator's never moves a resolved execution."""
    return transition(current, to, by_operator=by_operator) is not None and (
        not by_operator or accepts_decision(resolved_by))


def allowed_from(to: ExecutionStatus, *, by_operator: bool = False) -> frozenset[ExecutionStatus]:
    """The statuses from which `to` may be reached (what the SQL guard puts in its IN list)."""
    return frozenset(t.source for t in TRANSITIONS
                     if t.target is to and t.by_operator == by_operator)


# -- steps ------------------------------------------------------------------------------

_T = StepStatus
# A step being undone, undone, or whose undoing failed: its action must not run any more.
UNDOING: frozenset[StepStatus] = frozenset({_T.COMPENSATING, _T.COMPENSATED,
                                            _T.COMPENSATION_FAILED})
# Steps with nothing to undo: their action failed (rolled back), never started, or was skipped
# by its condition. A step whose outcome is unknown is not among them: it may have done its work.
NEVER_DONE: frozenset[StepStatus] = frozenset({_T.PENDING, _T.FAILED, _T.SKIPPED})
# A step whose action failed for good did nothing (an attempt's work is atomic), and a skipped
# one never ran: no undo ever runs for them. A PENDING or RUNNING one in a forward run's undo
# may be a timed-out attempt still at work, so only the compensation-only machine skips those.
FAILED_FOR_GOOD: frozenset[StepStatus] = frozenset({_T.FAILED, _T.SKIPPED})
# Steps whose action is settled forward: it succeeded, or its condition skipped it. Another
# delivery of its action is a duplicate, and a forward path whose every step is here is done.
FORWARD_DONE: frozenset[StepStatus] = frozenset({_T.SUCCEEDED, _T.SKIPPED})
# Steps whose effect may still stand (the reconciler's "a person must look").
TOOK_EFFECT: frozenset[StepStatus] = frozenset({_T.SUCCEEDED, _T.COMPENSATION_FAILED,
                                               _T.OUTCOME_UNKNOWN, _T.WAITING})


@dataclass(frozen=True)
class StepTransition:
    phase: Phase
    outcome: Outcome
    final: bool  # the last attempt of the phase (succeeded, or failed for good)
    target: StepStatus
    event: str


# What an attempt's end makes of its step: (phase, outcome, final) -> status and event.
STEP_TRANSITIONS: tuple[StepTransition, ...] = (
    StepTransition(Phase.ACTION, Outcome.SUCCEEDED, True, _T.SUCCEEDED, event_types.STEP_SUCCEEDED),
    StepTransition(Phase.ACTION, Outcome.FAILED, False, _T.RUNNING, event_types.STEP_RETRIED),
    StepTransition(Phase.ACTION, Outcome.FAILED, True, _T.FAILED, event_types.STEP_FAILED),
    # An unknown outcome sticks: a later attempt that fails does not make the step "did
    # nothing" (the unknown one may have done it), only a success replaces it.
    StepTransition(Phase.ACTION, Outcome.UNKNOWN, False, _T.OUTCOME_UNKNOWN,
                   event_types.STEP_RETRIED),
    StepTransition(Phase.ACTION, Outcome.UNKNOWN, True, _T.OUTCOME_UNKNOWN,
                   event_types.STEP_OUTCOME_UNKNOWN),
    StepTransition(Phase.COMPENSATION, Outcome.SUCCEEDED, True, _T.COMPENSATED,
                   event_types.STEP_COMPENSATED),
    StepTransition(Phase.COMPENSATION, Outcome.FAILED, False, _T.COMPENSATING,
                   event_types.STEP_RETRIED),
    StepTransition(Phase.COMPENSATION, Outcome.FAILED, True, _T.COMPENSATION_FAILED,
                   event_types.STEP_COMPENSATION_FAILED),
)
_STEP_BY_KEY = {(t.phase, t.outcome, t.final): t for t in STEP_TRANSITIONS}
# The statuses from which an attempt of each phase may start (the rest are refused or skipped).
STEP_SOURCES: dict[Phase, frozenset[StepStatus]] = {
    Phase.ACTION: frozenset({_T.PENDING, _T.RUNNING, _T.OUTCOME_UNKNOWN, _T.WAITING}),
    Phase.COMPENSATION: frozenset(s for s in StepStatus if s is not _T.COMPENSATED),
}


def step_transition(phase: Phase, outcome: Outcome, *, final: bool) -> StepTransition:
    if phase is Phase.COMPENSATION and outcome is Outcome.UNKNOWN:
        outcome = Outcome.FAILED  # an undo that may not have happened is retried, then fails
    return _STEP_BY_KEY[(phase, outcome, final or outcome is Outcome.SUCCEEDED)]


# A step that starts waiting (its callback's call answered, or its timer set) becomes WAITING
# with this event; heartbeats, the completion and the timer each add one of their own before
# the step's usual succeeded or failed event.
WAITING_MOVE = (StepStatus.WAITING, event_types.STEP_WAITING)
WAIT_EVENTS: frozenset[str] = frozenset({event_types.STEP_WAITING, event_types.STEP_HEARTBEAT,
                                         event_types.STEP_CALLBACK_RECEIVED,
                                         event_types.STEP_TIMER_FIRED})


class WaitKind(StrEnum):
    CALLBACK = "callback"
    TIMER = "timer"


# The phase of a step event, for events written before every one carried its phase.
PHASE_OF_EVENT: dict[str, Phase] = {
    event_types.STEP_STARTED: Phase.ACTION,
    event_types.STEP_SUCCEEDED: Phase.ACTION,
    event_types.STEP_FAILED: Phase.ACTION,
    event_types.STEP_ABORTED: Phase.ACTION,
    event_types.STEP_RETRIED: Phase.ACTION,
    event_types.STEP_OUTCOME_UNKNOWN: Phase.ACTION,
    event_types.STEP_WAITING: Phase.ACTION,
    event_types.STEP_HEARTBEAT: Phase.ACTION,
    event_types.STEP_CALLBACK_RECEIVED: Phase.ACTION,
    event_types.STEP_TIMER_FIRED: Phase.ACTION,
    event_types.STEP_SKIPPED: Phase.ACTION,
    event_types.STEP_FANNED_OUT: Phase.ACTION,
    event_types.STEP_COMPENSATED: Phase.COMPENSATION,
    event_types.STEP_COMPENSATION_FAILED: Phase.COMPENSATION,
}
# Step events that end an attempt: (the step's new status, the attempt's outcome).
STEP_EVENT_RESULT: dict[str, tuple[StepStatus, Outcome]] = {
    t.event: (t.target, t.outcome) for t in STEP_TRANSITIONS if t.final
}


# -- the machines' error names ---------------------------------------------------------------

# A step raises these (chalicelib.domain.step_context.PermanentError and its subclass
# StepAborted) to say "retrying will not help"; Lambda reports an error by its exact class
# name, so each subclass is named. Never retried: straight to compensation.
PERMANENT_ERROR = "PermanentError"
STEP_ABORTED = "StepAborted"
# An action attempt whose outcome is unknown (its call was cut at its deadline, a Lambda
# participant ran past it, or its answer cannot be recorded: not a JSON object, NaN, too deep,
# keys MongoDB refuses, too large, a redirect). Retried like a timeout while attempts remain;
# the last one raises OUTCOME_UNKNOWN_FINAL, never retried. Both are caught like a timeout: the
# step's own compensation runs.
OUTCOME_UNKNOWN = "Saga.OutcomeUnknown"
OUTCOME_UNKNOWN_FINAL = "Saga.OutcomeUnknownFinal"
NEVER_RETRIED: tuple[str, ...] = (PERMANENT_ERROR, STEP_ABORTED, OUTCOME_UNKNOWN_FINAL)
# Step Functions' own names.
TASK_TIMEOUT = "States.Timeout"
HEARTBEAT_TIMEOUT = "States.HeartbeatTimeout"
ANY_ERROR = "States.ALL"
# What leads to a step's own compensation: it may have done its work.
UNDO_ITSELF: tuple[str, ...] = (TASK_TIMEOUT, OUTCOME_UNKNOWN, OUTCOME_UNKNOWN_FINAL)
# A callback completed with /fail: the partner says the action failed for good (it did
# nothing): never retried, compensated like a failure for good. A wait that times out, or
# whose heartbeats stop, is an unknown outcome: its own compensation runs. (Only callback
# Tasks name these, so the machines of the other kinds stay as they were.)
CALLBACK_FAILED = "Saga.CallbackFailed"
# Raised by a callback's Lambda when its callback was completed (succeeded) while its call was
# still out: the step has succeeded, and the machine's Catch takes it as the Task's success.
CALLBACK_COMPLETED = "Saga.CallbackCompleted"
# A fan-out whose items failed beyond its tolerated_failures: the step's error type, and the
# machines' name for it (caught like a timeout: its items may have done their work).
FANOUT_FAILED_TYPE = "FanOutFailed"
FANOUT_FAILED = "Saga.FanOutFailed"
# Raised by a callback's Lambda or a timer's recorder when the step's `when` condition is
# false: the step is recorded SKIPPED and the machine's Catch moves on to the next state (a
# plain Task's skip is simply its success).
STEP_SKIPPED = "Saga.StepSkipped"
# A child step's child has not ended yet when its Task asks (chalicelib.domain.children):
# its Tasks retry this with their own backoff.
CHILD_RUNNING = "Saga.ChildRunning"
CALLBACK_NEVER_RETRIED: tuple[str, ...] = (*NEVER_RETRIED, CALLBACK_FAILED, CALLBACK_COMPLETED)
CALLBACK_UNDO_ITSELF: tuple[str, ...] = (*UNDO_ITSELF, HEARTBEAT_TIMEOUT)
# Lambda's own throttling and service errors: the step never ran (or its outcome is recorded
# idempotently), so they get a Retry of their own that never spends the step's max_retries.
LAMBDA_SERVICE_ERRORS: tuple[str, ...] = (
    "Lambda.TooManyRequestsException", "Lambda.ServiceException",
    "Lambda.AWSLambdaException", "Lambda.SdkClientException")


@dataclass(frozen=True)
class MachineEnd:
    """A Fail state of the machines, and what the write model records for it."""

    error: str
    status: ExecutionStatus


# A saga's deadline (its `deadline`, from the start of its forward run): the error type its
# execution records when the deadline passed before it completed, and the machine's names for
# the deadline branch's verdicts (chalicelib/usecases/steps/deadlines.py decides them). The
# forward path runs beside the deadline's Wait in one Parallel state, which ends only when a
# branch fails: the forward path ends with FORWARD_ENDED instead of succeeding, and the
# deadline branch with DEADLINE_PASSED when what completed is to be compensated.
DEADLINE = "Deadline"
DEADLINE_PASSED = "Saga.DeadlinePassed"
FORWARD_ENDED = "Saga.ForwardEnded"


class DeadlineVerdict(StrEnum):
    """What a deadline that passed makes of its execution."""

    NONE = "none"  # it had already ended, or is compensating: the forward path carries on
    COMPENSATE = "compensate"  # what completed is compensated (the in-flight step included)
    PARK = "park"  # past the pivot: it parks, as a retriable failure does
    FAIL = "fail"  # compensation is disabled: it fails with nothing undone


# An Express forward run's end when a step failed: it started the Standard compensation run
# and stops; that run records how the execution ended (never the Express run).
HANDED_OFF = "Saga.HandedOff"
# The error type the reconciler records when a run the engine keeps no record of was lost.
RUN_LOST = "RunLost"
ENDS: tuple[MachineEnd, ...] = (
    MachineEnd("Saga.Compensated", _S.COMPENSATED),
    MachineEnd("Saga.CompensationFailed", _S.COMPENSATION_FAILED),
    MachineEnd("Saga.Failed", _S.FAILED),
    MachineEnd("Saga.Parked", _S.PARKED),
)
END_OF: dict[ExecutionStatus, MachineEnd] = {end.status: end for end in ENDS}
END_BY_ERROR: dict[str, MachineEnd] = {end.error: end for end in ENDS}
# The outcomes the recorder Lambda is asked to record (see the compiler's Record* states).
# COMPENSATED: only after an undo group of parallel compensations (a single last undo records
# it itself); PARKED: a retriable step out of attempts.
RECORDED_OUTCOMES: frozenset[ExecutionStatus] = frozenset({
    _S.COMPLETED, _S.FAILED, _S.COMPENSATION_FAILED, _S.COMPENSATED, _S.PARKED})


# -- the late-action rule ---------------------------------------------------------------------
# A step cuts its participant's call at the deadline it sends (the attempt's start plus the
# step's timeout); the engine's Task waits that long plus a margin (saga.task_timeout_margin),
# so the step, not the engine, decides how an attempt ended; a compensation is sent only once
# the margin has passed after the last attempt's deadline (the participant must not commit
# after its deadline; the margin covers clocks and the cut's own latency).
DEFAULT_TASK_TIMEOUT_MARGIN_S = 5
# A Lambda runs 15 minutes at most, so a step's Task can wait no longer than that.
LAMBDA_MAX_TIMEOUT_S = 900


def wait_task_timeout_s(wait_ms: int, margin_s: int) -> int:
    """A callback Task's TimeoutSeconds: the whole wait (the step's timeout, from the attempt's
    start) plus the margin, so a completion accepted just before the deadline still reaches
    the engine; no Lambda runs meanwhile, so no 15-minute cap."""
    return max(1, -(-wait_ms // 1000)) + margin_s


def task_timeout_s(call_timeout_ms: int, margin_s: int) -> int:
    """An action Task's TimeoutSeconds: the call's own timeout rounded up to whole seconds
    (ASL takes whole seconds), plus the margin, never past Lambda's own limit."""
    return min(max(1, -(-call_timeout_ms // 1000)) + margin_s, LAMBDA_MAX_TIMEOUT_S)


def max_step_timeout_s(margin_s: int) -> int:
    """The longest timeout a step may have: its Task (timeout + margin) fits in a Lambda."""
    return LAMBDA_MAX_TIMEOUT_S - margin_s


def compensation_task_timeout_s(call_timeout_ms: int, margin_s: int, minimum_s: int) -> int:
    """A compensation Task waits out its action's last deadline plus the margin (at most one
    call timeout plus the margin) and then runs its own call: two of each, capped at Lambda's
    limit. A cap that cuts it short times the compensation out, and its retry finds the wait
    over."""
    one = max(task_timeout_s(call_timeout_ms, margin_s), minimum_s)
    return min(2 * one, LAMBDA_MAX_TIMEOUT_S)


# -- retries ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class RetryPolicy:
    interval_seconds: int = 1
    backoff_rate: float = 2.0
    max_delay_seconds: int = 30
    jitter: bool = True


@dataclass(frozen=True)
class CompensationRetry:
    """Compensations are retried this many times after the first try, with this backoff: the
    compiler writes it into every undo Task, the step runtime counts attempts against it."""

    retries: int = 3
    policy: RetryPolicy = RetryPolicy(interval_seconds=1, backoff_rate=2.0)


COMPENSATION_RETRY = CompensationRetry()


# Retriable steps back off exponentially, each wait capped (ASL's MaxDelaySeconds).
RETRIABLE_RETRY = RetryPolicy(interval_seconds=2, backoff_rate=2.0, max_delay_seconds=60)


def action_retries(kind: StepKind, max_retries: int, retriable_max_attempts: int) -> int:
    """Retries after an action's first attempt: its own max_retries, or for a retriable step
    the configured attempts (saga.retriable_max_attempts) less the first."""
    return retriable_max_attempts - 1 if kind is StepKind.RETRIABLE else max_retries


def failure_outcome(*, unknown: bool, was_unknown: bool) -> Outcome:
    """How a failed action attempt counts: unknown when it may have done its work, or when an
    earlier attempt of the step may have (an unknown outcome sticks until a success)."""
    return Outcome.UNKNOWN if unknown or was_unknown else Outcome.FAILED


def action_final(attempt: int, max_retries: int, *, permanent: bool) -> bool:
    """Whether a failed action attempt (1-based, counted in its round) was the step's last."""
    return permanent or attempt > max_retries


def compensation_final(attempt: int, *, permanent: bool = False) -> bool:
    """Whether a failed compensation attempt (1-based) was the step's last (a permanent
    error is never retried: the machines' NEVER_RETRIED retrier)."""
    return permanent or attempt > COMPENSATION_RETRY.retries
