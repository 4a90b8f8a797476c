"""The `saga` commands against a recording stand-in of the API client: inline --input, attaching
to an execution (running or ended), compensate, versions, pages with a `more:` line, readable
times and errors, --version and the exit codes in --help. The real API and WebSocket feed are
exercised by tests/e2e/test_cli.py."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

import pytest

from infra import cli_service
from infra.cli import build_parser, main
from infra.cli_format import by_status, error_text, inline_json, more, rate, when
from infra.exit_codes import Exit

ENDED = {"id": "e-1", "saga_id": "pay", "version": "1.0.0", "status": "COMPENSATED",
         "started_at": "2026-12-07T10:00:00+00:00", "ended_at": "2026-12-07T10:00:09+00:00",
         "error": {"step_id": "charge", "phase": "action", "type": "Declined",
                   "message": "card refused"},
         "steps": []}


class _Api:
    """Answers from a table by (method, path); records every call; a feed of events."""

    def __init__(self, answers: dict[tuple[str, str], Any],
                 events: list[dict[str, Any]] | None = None) -> None:
        self.answers, self.calls = answers, []  # type: ignore[var-annotated]
        self.feed = events or []

    def call(self, method: str, path: str, body: Any = None) -> Any:
        self.calls.append((method, path, body))
        return self.answers[(method, path)]

    def events(self, *, execution_id: str, timeout_s: float) -> Iterator[dict[str, Any]]:
        yield {"type": "connected"}
        yield from self.feed


def _args(argv: list[str]) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def test_the_formatting_helpers() -> None:
    assert when("2026-12-07T14:31:20.882469+01:00") == "2026-12-07T13:31:20Z"
    assert when("2026-12-07T14:31:20") == "2026-12-07T14:31:20Z"  # no zone: UTC
    assert when(None) == "-" and when("soon") == "soon"
    assert error_text(ENDED["error"]) == "charge (action) Declined: card refused"
    assert error_text({"type": "RunLost", "message": "lost", "failed_steps": ["a", "b"]}) == (
        "RunLost: lost (compensation failed for a, b)")
    assert by_status({"COMPLETED": 17, "COMPENSATED": 1}) == "17 COMPLETED, 1 COMPENSATED"
    assert rate(0.94444) == "94.4 %" and rate(None) == "-"
    assert more("abc", "saga sagas list") == "\nmore: saga sagas list --cursor abc"
    assert more(None, "x") == ""
    assert inline_json('{"sku": "a"}') == {"sku": "a"} and inline_json("input.yaml") is None
    with pytest.raises(ValueError, match="not valid"):
        inline_json("{sku: a}")


def test_inline_json_input_is_sent_as_the_body() -> None:
    api = _Api({("POST", "/sagas/pay/execute"): {"id": "e-9", "status": "RUNNING"}})
    args = _args(["run", "pay", "--input", '{"sku": "a", "n": [1, 2]}'])
    assert cli_service.run(args, api) == Exit.OK  # type: ignore[arg-type]
    assert api.calls[0][2]["input"] == {"sku": "a", "n": [1, 2]}


def test_malformed_inline_json_is_refused_without_a_call(
        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "pay", "--input", "{sku: a}", "--api", "http://127.0.0.1:9"]) == \
        Exit.REFUSED
    assert capsys.readouterr().err.startswith("saga: the inline JSON is not valid:")


@pytest.mark.parametrize("argv", [["executions", "follow", "e-1"],
                                  ["executions", "show", "e-1", "--follow"]])
def test_attaching_to_an_ended_execution_tells_it_at_once_with_its_exit_code(
        argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    api = _Api({("GET", "/executions/e-1"): ENDED})  # no event will ever come
    assert cli_service.executions(_args(argv), api) == Exit.FAILED  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "e-1  pay 1.0.0  COMPENSATED"
    assert "error: charge (action) Declined: card refused" in out
    assert "started 2026-12-07T10:00:00Z, ended 2026-12-07T10:00:09Z" in out


def test_attaching_to_a_running_execution_prints_where_it_is_then_its_events(
        capsys: pytest.CaptureFixture[str]) -> None:
    running = {**ENDED, "status": "RUNNING", "error": None, "ended_at": None}
    feed = [{"type": "saga.step.succeeded", "key": "e-1",
             "data": {"step_id": "charge", "attempt": 1, "duration_ms": 12}},
            {"type": "saga.completed", "key": "e-1", "data": {"status": "COMPLETED"}}]
    api = _Api({("GET", "/executions/e-1"): running}, feed)
    assert cli_service.executions(_args(["executions", "follow", "e-1"]), api) == Exit.OK  # type: ignore[arg-type]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "e-1  pay 1.0.0  RUNNING"
    assert "  ✓ charge succeeded (attempt 1, 12 ms)" in lines
    assert lines[-1].startswith("COMPLETED in ")


def test_a_run_with_the_id_of_an_execution_that_ended_does_not_wait_for_events(
        capsys: pytest.CaptureFixture[str]) -> None:
    api = _Api({("POST", "/sagas/pay/execute"): {**ENDED, "status": "COMPLETED",
                                                  "error": None}})
    args = _args(["run", "pay", "--execution-id", "e-1", "--follow", "--timeout", "1"])
    assert cli_service.run(args, api) == Exit.OK  # type: ignore[arg-type]
    assert "COMPLETED" in capsys.readouterr().out.splitlines()[0]


def test_compensate_names_the_execution_to_its_sagas_route() -> None:
    api = _Api({("GET", "/executions/e-1"): {**ENDED, "status": "COMPLETED"},
                ("POST", "/sagas/pay/compensate"): {"id": "e-1", "status": "COMPENSATING"}})
    assert cli_service.executions(_args(["executions", "compensate", "e-1"]), api) == Exit.OK  # type: ignore[arg-type]
    assert api.calls[-1] == ("POST", "/sagas/pay/compensate", {"execution_id": "e-1"})


def test_lists_say_when_there_are_more_pages_and_take_the_cursor(
        capsys: pytest.CaptureFixture[str]) -> None:
    page = {"items": [{"id": "e-1", "saga_id": "pay", "version": "1.0.0",
                       "status": "COMPLETED", "started_at": "2026-12-07T10:00:00+00:00"}],
            "next_cursor": "c2"}
    api = _Api({("GET", "/executions?limit=1&cursor=c1"): page})
    args = _args(["executions", "list", "--limit", "1", "--cursor", "c1"])
    assert cli_service.executions(args, api) == Exit.OK  # type: ignore[arg-type]
    out = capsys.readouterr().out
    assert "2026-12-07T10:00:00Z" in out
    assert out.rstrip().endswith("more: saga executions list --cursor c2")


def test_sagas_versions_lists_each_version(capsys: pytest.CaptureFixture[str]) -> None:
    api = _Api({("GET", "/sagas/pay/versions"): {"saga_id": "pay", "versions": [
        {"version": "1.0.0", "revision": 1, "workflow_type": "standard",
         "created_at": "2026-12-01T08:00:00+00:00", "created_by": "admin@x"},
        {"version": "1.1.0", "revision": 2, "workflow_type": "express",
         "created_at": "2026-12-02T08:00:00+00:00", "created_by": "admin@x"}]}})
    assert cli_service.sagas(_args(["sagas", "versions", "pay"]), api) == Exit.OK  # type: ignore[arg-type]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["VERSION", "REVISION", "WORKFLOW", "CREATED", "BY"]
    assert lines[-1].split() == ["1.1.0", "2", "express", "2026-12-02T08:00:00Z", "admin@x"]


def test_json_output_is_the_apis_answer(capsys: pytest.CaptureFixture[str]) -> None:
    api = _Api({("GET", "/executions/e-1"): ENDED})
    cli_service.executions(_args(["executions", "show", "e-1", "--json"]), api)  # type: ignore[arg-type]
    assert json.loads(capsys.readouterr().out) == ENDED


def test_version_and_exit_codes_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.startswith("saga ")
    with pytest.raises(SystemExit):
        main(["executions", "--help"])
    assert "exit codes:\n  0    done" in capsys.readouterr().out


def test_each_executions_action_lists_only_its_own_options(
        capsys: pytest.CaptureFixture[str]) -> None:
    def help_of(*argv: str) -> str:
        with pytest.raises(SystemExit):
            main([*argv, "--help"])
        return capsys.readouterr().out.split("exit codes:")[0]  # the options, not the table

    listing, showing, resolving = (help_of("executions", "list"), help_of("executions", "show"),
                                   help_of("executions", "resolve"))
    assert "--needs-attention" in listing and "--reason" not in listing
    assert "--follow" in showing and "--saga" not in showing and "--reason" not in showing
    assert "--reason" in resolving and "--follow" not in resolving
    # A required option left out is a misuse: exit 2, before anything is sent.
    with pytest.raises(SystemExit) as misused:
        main(["executions", "resolve", "e-1", "--api", "http://127.0.0.1:9"])
    assert misused.value.code == Exit.REFUSED
