"""Whether a delivery may run, decided under the step run's row lock from the recorded
statuses (chalicelib.domain.decisions), with the faults a test injected on the way."""

from __future__ import annotations

from chalicelib.domain.decisions import StepRequest, Verdict, decide
from chalicelib.domain.executions import Fault
from chalicelib.domain.models import Step
from chalicelib.domain.step_context import PermanentError
from chalicelib.domain.step_runs import LockedExecution
from chalicelib.domain.verdicts import Admission, Admitted, AlreadyDone, Refused, Skipped
from chalicelib.usecases.steps.failures import StepAborted, injected_error
from chalicelib.usecases.steps.ledger import LedgerTransaction


def admit(tx: LedgerTransaction, request: StepRequest, step: Step,
          execution: LockedExecution, *, starting: bool, faults_enabled: bool) -> Admission:
    """Locks the step run and decides. starting: before the attempt works (faults are
    injected, and no new attempt starts once a step of the execution failed for good); else
    recording a participant's answer, which is kept."""
    run = tx.lock_step(request.execution_id, request.step_id)
    if run is None:
        raise PermanentError(f"execution {request.execution_id!r} has no step "
                             f"{request.step_id!r}")
    decision = decide(request, run.status, execution.status,
                      failed_elsewhere=starting and execution.error is not None)
    if decision.verdict is Verdict.DUPLICATE:
        return AlreadyDone(run.status)
    if decision.verdict is Verdict.ABORT:
        return Refused(StepAborted(f"step {step.id} {decision.reason}"))
    if decision.verdict is Verdict.SKIP:
        return Skipped(run.status, finishes_compensation=decision.finish_compensation)
    attempts_so_far = run.attempts(request.phase)
    parsed = tx.load_execution(request.execution_id)  # only now: the input may be large
    fault = fault_for(parsed.faults, request) if faults_enabled else None
    if starting and fault is not None and attempts_so_far < fault.times:
        message = f"injected {fault.error} on attempt {attempts_so_far + 1}"
        if fault.permanent:
            return Refused(PermanentError(f"{fault.error}: {message}"))
        return Refused(injected_error(fault.error, message))
    return Admitted(attempts_so_far, parsed, run)


def fault_for(faults: list[Fault], request: StepRequest) -> Fault | None:
    """The fault injected on this step's phase, if any."""
    return next((f for f in faults
                 if f.step_id == request.step_id and f.phase == request.phase), None)
