"""Runs `saga verify`'s cases against the API, concurrently, each bounded by the saga's own
timeouts: start the execution with the case's faults, wait for it to end, take the operator's
actions, check the rules and the user's check hook."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from chalicelib.domain.lifecycle import FINAL
from infra.api_client import ApiClient, ApiError
from infra.verify.checks import problems
from infra.verify.plan import Case

_FINAL = {status.value for status in FINAL}
_ACTIONS = {"compensate": "/sagas/{saga_id}/compensate",
            "retry-forward": "/executions/{execution_id}/retry-forward",
            "retry-compensation": "/executions/{execution_id}/retry-compensation"}
# How long a check hook may run.
CHECK_TIMEOUT_S = 120


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
            execution = self._until_final(result.execution_id, _sequence(execution))
            expected = case.expected
            for action, then_expected in case.then:
                if execution.get("status") != expected:
                    break  # the run already went wrong: the checks below say how
                path = _ACTIONS[action].format(saga_id=self.saga_id,
                                               execution_id=result.execution_id)
                body = {"execution_id": result.execution_id} if action == "compensate" else None
                moved = self.api.call("POST", path, body)
                execution = self._until_final(result.execution_id, _sequence(moved))
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

    def _until_final(self, execution_id: str, floor: int) -> dict[str, Any]:
        """The execution once it is final (PARKED included) in a view newer than `floor`,
        the sequence of the write that started this leg (a read model behind it still shows
        the status before); TimeoutError past the run's budget."""
        deadline = time.monotonic() + self.budget_s
        while True:
            execution = self.api.call("GET", f"/executions/{execution_id}")
            status = execution.get("status")
            if status in _FINAL and _sequence(execution) > floor:
                return dict(execution)
            if time.monotonic() > deadline:
                raise TimeoutError(f"did not end within {self.budget_s:.0f} s (it is "
                                   f"{status})")
            self.sleep(0.5)

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
