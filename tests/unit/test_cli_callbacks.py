"""`saga callbacks list|succeed|fail`: what each sends (the API's client stood in for), what it
prints, and its misuses refused with exit 2 before anything is sent. (Against the local
stack: tests/e2e/test_cli.py.)"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from infra.api_client import ApiClient, ApiError
from infra.cli import main
from infra.cli_callbacks import listing_text
from infra.exit_codes import Exit

ITEM = {"callback_id": "cb_Qm3abc", "execution_id": "8d0c6c1e-0000-4000-8000-000000000001",
        "saga_id": "refund", "version": "1.0.0", "revision": 1, "step_id": "approve",
        "step_name": "Manager approval", "step_description": "A manager approves",
        "since": "2026-12-07T12:03:05.120000Z", "until": "2026-12-09T12:03:05.120000Z",
        "approval": True, "input": {"amount": "25.00", "note": "x" * 80}}
PARTNER = {**ITEM, "callback_id": "cb_partner", "step_id": "confirm", "step_name": None,
           "approval": False, "input": None}
DONE = {"callback_id": "cb_Qm3abc", "execution_id": ITEM["execution_id"],
        "step_id": "approve", "outcome": "succeed", "step_status": "SUCCEEDED",
        "sent_to_engine": True}


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, Any]]:
    """Every call the command makes, answered as the API would."""
    calls: list[tuple[str, str, Any]] = []

    def call(self: ApiClient, method: str, path: str, body: Any = None) -> Any:
        calls.append((method, path, body))
        if path.startswith("/callbacks?"):
            return {"items": [ITEM, PARTNER], "next_cursor": "more", "count": 2, "total": 5}
        if path.endswith("/fail"):
            return {**DONE, "outcome": "fail", "step_status": "FAILED"}
        return DONE

    monkeypatch.setattr(ApiClient, "call", call)
    return calls


def test_list_asks_for_approvals_of_a_saga_and_prints_a_table(
        sent: list[tuple[str, str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["callbacks", "list", "--approvals", "--saga", "refund", "--limit", "7"]) == 0
    assert sent == [("GET", "/callbacks?approval=true&saga_id=refund&limit=7", None)]
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["CALLBACK", "KIND", "SAGA", "EXECUTION", "STEP", "SINCE",
                                "UNTIL", "INPUT"]
    assert lines[1].startswith("cb_Qm3abc   approval  refund 1.0.0  8d0c6c1e-")
    assert "approve (Manager approval)" in lines[1] and "2026-12-07T12:03:05" in lines[1]
    assert lines[1].endswith("…") and '{"amount": "25.00", "note": "xxx' in lines[1]
    assert lines[2].startswith("cb_partner  callback") and lines[2].rstrip().endswith("-")
    assert lines[3] == "2 shown of 5 open approvals; more with --limit"


def test_list_json_is_the_apis_page(sent: list[tuple[str, str, Any]],
                                    capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["callbacks", "list", "--json"]) == 0
    assert sent[0][1] == "/callbacks?limit=50"
    assert json.loads(capsys.readouterr().out)["total"] == 5


def test_an_empty_listing_says_so() -> None:
    page = {"items": [], "next_cursor": None, "count": 0, "total": 0}
    assert listing_text(page, approvals=True) == "no open approvals"
    assert listing_text(page, approvals=False) == "no open callbacks"


def test_succeed_approves_with_a_comment_or_sends_the_result_given(
        sent: list[tuple[str, str, Any]], capsys: pytest.CaptureFixture[str],
        tmp_path: Path) -> None:
    assert main(["callbacks", "succeed", "cb_Qm3abc", "--comment", "fine by me"]) == 0
    assert sent[-1] == ("POST", "/callbacks/cb_Qm3abc/succeed",
                        {"result": {"approved": True, "comment": "fine by me"}})
    assert capsys.readouterr().out.strip() == (
        f"cb_Qm3abc: step approve of execution {ITEM['execution_id']} is SUCCEEDED")
    assert main(["callbacks", "succeed", "cb_Qm3abc", "--result", '{"payment_id": "p-9"}']) == 0
    assert sent[-1][2] == {"result": {"payment_id": "p-9"}}
    result = tmp_path / "result.yaml"
    result.write_text("approved: false\nlimit: 10\n")
    assert main(["callbacks", "succeed", "cb_Qm3abc", "--result", f"@{result}",
                 "--comment", "c"]) == 0
    assert sent[-1][2] == {"result": {"approved": False, "limit": 10, "comment": "c"}}
    # An id is one path segment, whatever it holds.
    assert main(["callbacks", "succeed", "../sagas/x"]) == 0
    assert sent[-1][1] == "/callbacks/..%2Fsagas%2Fx/succeed"


def test_fail_rejects_with_the_reason(sent: list[tuple[str, str, Any]],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["callbacks", "fail", "cb_Qm3abc", "--reason", "too expensive"]) == 0
    assert sent[-1] == ("POST", "/callbacks/cb_Qm3abc/fail",
                        {"error": "Rejected", "reason": "too expensive"})
    assert capsys.readouterr().out.strip().endswith(" is FAILED")
    assert main(["callbacks", "fail", "cb_Qm3abc", "--reason", "no", "--error",
                 "PaymentDeclined", "--json"]) == 0
    assert sent[-1][2] == {"error": "PaymentDeclined", "reason": "no"}
    assert json.loads(capsys.readouterr().out)["step_status"] == "FAILED"


@pytest.mark.parametrize(("argv", "says"), [
    (["callbacks", "succeed"], "the following arguments are required: id"),
    (["callbacks", "fail", "cb_1"], "the following arguments are required: --reason"),
    # Each action lists only its own options.
    (["callbacks", "succeed", "cb_1", "--reason", "x"], "unrecognized arguments: --reason"),
    (["callbacks", "list", "--result", "{}"], "unrecognized arguments: --result"),
])
def test_what_argparse_refuses_exits_2_and_sends_nothing(
        sent: list[tuple[str, str, Any]], capsys: pytest.CaptureFixture[str],
        argv: list[str], says: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == Exit.REFUSED == 2
    assert sent == [] and says in capsys.readouterr().err


@pytest.mark.parametrize(("argv", "says"), [
    (["callbacks", "fail", "cb_1", "--reason", " "], "callbacks fail needs a --reason"),
    (["callbacks", "succeed", "cb_1", "--result", "{not json"], "--result is not valid JSON"),
    (["callbacks", "succeed", "cb_1", "--result", "[1, 2]"],
     "--result must be a JSON object, not list"),
    (["callbacks", "succeed", "cb_1", "--result", "@/no/such/file.json"], "cannot read"),
])
def test_misuses_exit_2_and_send_nothing(sent: list[tuple[str, str, Any]],
                                         capsys: pytest.CaptureFixture[str],
                                         argv: list[str], says: str) -> None:
    assert main(argv) == Exit.REFUSED == 2
    assert sent == []
    err = capsys.readouterr().err
    assert err.startswith("saga: ") and says in err, err


def test_a_refusal_of_the_api_exits_2_with_its_reason(monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    def refused(self: ApiClient, method: str, path: str, body: Any = None) -> Any:
        raise ApiError(409, "this callback was already completed (succeeded) at ...")

    monkeypatch.setattr(ApiClient, "call", refused)
    assert main(["callbacks", "succeed", "cb_1"]) == Exit.REFUSED
    assert "already completed" in capsys.readouterr().err
