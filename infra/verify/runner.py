"""Runs `saga verify`'s cases against the API, concurrently, each bounded by the saga's own
timeouts: start the execution with the case's faults, wait for it to end, take the operator's
actions, check the rules and the user's check hook."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.parse
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.callbacks import APPROVED
from chalicelib.domain.lifecycle import FINAL, StepStatus
from infra.api_client import ApiClient, ApiError
from infra.verify.checks import problems
from infra.verify.plan import Case

_FINAL = {status.value for status in FINAL}
_ACTIONS = {"compensate": "/sagas/{saga_id}/compensate",
            "retry-forward": "/executions/{execution_id}/retry-forward",
            "retry-compensation": "/executions/{execution_id}/retry-compensation"}
# How long a check hook may run.
CHECK_TIMEOUT_S = 120
# The error a failed completion of the runner's carries.
REJECTED = "VerifyRejected"


@dataclass
class Result:
    case: Case
    execution_id: str = ""
    status: str = ""
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class Verifier:
    api: ApiClient
    saga_id: str
    saga_input: dict[str, Any]
    budget_s: float  # one run's bound (plan.run_budget_s)
    check: str | None = None  # a shell command told each case's execution by environment
    sleep: Callable[[float], None] = time.sleep

    def run_all(self, cases: Sequence[Case], concurrency: int) -> list[Result]:
        with ThreadPoolExecutor(max(1, concurrency)) as pool:
            return list(pool.map(self.run, cases))

    def run(self, case: Case) -> Result:
        result = Result(case)
        started = time.monotonic()
        try:
            execution = self.api.call("POST", f"/sagas/{self.saga_id}/execute",
                                      {"input": self.saga_input, "faults": case.faults})
            result.execution_id = execution["id"]
            execution = self._until_final(case, result.execution_id, _sequence(execution))
            expected = case.expected
            for action, then_expected in case.then:
                if execution.get("status") != expected:
                    break  # the run already went wrong: the checks below say how
                path = _ACTIONS[action].format(saga_id=self.saga_id,
                                               execution_id=result.execution_id)
                body = {"execution_id": result.execution_id} if action == "compensate" else None
                moved = self.api.call("POST", path, body)
                execution = self._until_final(case, result.execution_id, _sequence(moved))
                expected = then_expected
            result.status = str(execution.get("status"))
            result.problems = problems(case, execution, expected)
            if self.check is not None:
                result.problems += self._hook(case, result)
        except ApiError as error:
            result.problems.append(f"the API answered {error.status}: {error.message}")
        except TimeoutError as error:
            result.problems.append(str(error))
        result.seconds = time.monotonic() - started
        return result

    def _until_final(self, case: Case, execution_id: str, floor: int) -> dict[str, Any]:
        """The execution once it is final (PARKED included) in a view newer than `floor`,
        the sequence of the write that started this leg (a read model behind it still shows
        the status before), its open callbacks completed as the case says on the way;
        TimeoutError past the run's budget."""
        deadline = time.monotonic() + self.budget_s
        answered: set[str] = set()
        while True:
            execution = self.api.call("GET", f"/executions/{execution_id}")
            status = execution.get("status")
            if status in _FINAL and _sequence(execution) > floor:
                return dict(execution)
            self._complete_callbacks(case, execution, answered)
            if time.monotonic() > deadline:
                raise TimeoutError(f"did not end within {self.budget_s:.0f} s (it is "
                                   f"{status})")
            self.sleep(0.5)

    def _complete_callbacks(self, case: Case, execution: dict[str, Any],
                            answered: set[str]) -> None:
        """What a partner or a person would do: each open callback completed once, as
        succeeded (an approval approved), failed, or left to time out, as the case says."""
        for step in execution.get("steps", []):
            wait = step.get("waiting") or {}
            callback_id = wait.get("callback_id")
            if (step.get("status") != StepStatus.WAITING or not callback_id
                    or wait.get("completed_at") or callback_id in answered
                    or step["step_id"] in case.unanswered):
                continue
            answered.add(callback_id)
            path = f"/callbacks/{urllib.parse.quote(callback_id, safe='')}"
            try:
                if step["step_id"] in case.fail_callbacks:
                    self.api.call("POST", f"{path}/fail", {
                        "error": REJECTED, "reason": "saga verify fails this callback"})
                else:
                    self.api.call("POST", f"{path}/succeed", {"result": APPROVED
                                                              if wait.get("approval") else {}})
            except ApiError as error:
                if error.status != 409:  # 409: it ended meanwhile (timed out, superseded)
                    raise

    def _hook(self, case: Case, result: Result) -> list[str]:
        """The user's check: did the participants really undo what they did? Told the
        execution, the case and how it ended; a non-zero exit is a failed case."""
        env = {**os.environ, "SAGA_EXECUTION_ID": result.execution_id,
               "SAGA_SAGA_ID": self.saga_id, "SAGA_CASE": case.name,
               "SAGA_STATUS": result.status,
               "SAGA_UNDONE": ",".join(sorted(case.undone))}
        try:
            done = subprocess.run(self.check or "", shell=True, env=env, capture_output=True,
                                  text=True, timeout=CHECK_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired:
            return [f"the check hook did not end within {CHECK_TIMEOUT_S} s"]
        if done.returncode == 0:
            return []
        said = (done.stdout + done.stderr).strip().splitlines()[-3:]
        return [f"the check hook failed (exit {done.returncode}): {' | '.join(said)}"]


def _sequence(execution: dict[str, Any]) -> int:
    return int((execution.get("consistency") or {}).get("sequence") or 0)
