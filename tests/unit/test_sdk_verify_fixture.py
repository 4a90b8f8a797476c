"""The SDK plugin's `saga_verify`: it runs the orchestrator's `saga verify --json` (here a
stand-in CLI printing what the real one prints) and fails the test with each failing case."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from saga_participant.testing import VerifyFailed, run_verify

RESULTS = [{"case": "a fails for good", "execution_id": "e-1", "status": "FAILED",
            "passed": True, "problems": []},
           {"case": "c fails for good", "execution_id": "e-2", "status": "COMPENSATED",
            "passed": False, "problems": ["the check hook failed (exit 1): b not undone"]}]


@pytest.fixture
def cli(tmp_path: Path) -> str:
    """A stand-in `saga`: records its arguments and prints the results as JSON."""
    script = tmp_path / "saga.py"
    record = str(tmp_path / "args.json")
    script.write_text("import json, sys\n"
                      f"open({record!r}, 'w').write(json.dumps(sys.argv[1:]))\n"
                      f"print(json.dumps({RESULTS!r}))\n")
    return f"{sys.executable} {script}"


def test_run_verify_passes_its_options_on_and_returns_every_case(cli: str,
                                                                 tmp_path: Path) -> None:
    results = run_verify("orders", api="http://127.0.0.1:9", saga_input="in.json",
                         check="./check.sh", cases=["fails"], cli=cli)
    assert results == RESULTS
    assert json.loads((tmp_path / "args.json").read_text()) == [
        "verify", "orders", "--json", "--api", "http://127.0.0.1:9", "--input", "in.json",
        "--check", "./check.sh", "--case", "fails"]


def test_saga_verify_fails_the_test_with_each_failing_case(saga_verify: object, cli: str,
                                                            monkeypatch: pytest.MonkeyPatch
                                                            ) -> None:
    monkeypatch.setenv("SAGA_CLI", cli)
    with pytest.raises(VerifyFailed, match="c fails for good: the check hook failed"):
        saga_verify("orders")  # type: ignore[operator]
    assert saga_verify("orders", expect_failures=True) == RESULTS  # type: ignore[operator]


def test_no_results_is_an_error_that_says_what_the_cli_printed(tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="gave no results"):
        run_verify("orders", api="http://127.0.0.1:9", cli=f"{sys.executable} -c print(1/0)")


def test_a_python_check_looks_at_each_case_and_fails_the_ones_it_finds_wrong(
        saga_verify: object, cli: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SAGA_CLI", cli)
    # The participants' own state: a booking left for execution e-1, none for e-2.
    left = {"e-1": ["B-7"], "e-2": []}
    told: list[str] = []

    def nothing_left_booked(result: dict[str, object]) -> list[str]:
        told.append(str(result["execution_id"]))
        return [f"{booking} still booked" for booking in left[str(result["execution_id"])]]

    with pytest.raises(VerifyFailed) as failed:
        saga_verify("orders", check=nothing_left_booked)  # type: ignore[operator]
    assert "a fails for good: the check found: B-7 still booked" in str(failed.value)
    assert told == ["e-1", "e-2"]
    # Not passed on to the CLI as a command.
    assert "--check" not in json.loads((tmp_path / "args.json").read_text())

    def asserting(result: dict[str, object]) -> None:
        assert result["status"] != "FAILED", "the run ended FAILED"

    results = saga_verify("orders", check=asserting, expect_failures=True)  # type: ignore[operator]
    assert [r["passed"] for r in results] == [False, False]
    [problem] = results[0]["problems"]
    assert problem.startswith("the check found: the run ended FAILED")
