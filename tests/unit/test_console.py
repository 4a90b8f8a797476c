"""The console's files are served from the package with their types and a strict policy, only
by name; the caller view lists exactly the actions the caller's role may call."""

from __future__ import annotations

import json
import re

import pytest
from chalice.test import Client

from app import ROUTE_ROLES, app
from chalicelib.http.auth import Principal, Role
from chalicelib.http.console import ACTIONS, FOLDER, caller_view


@pytest.fixture(scope="module")
def client() -> Client:
    with Client(app) as test_client:
        yield test_client


def test_the_page_and_its_modules_are_served_with_their_types(client: Client) -> None:
    page = client.http.get("/console")
    assert page.status_code == 200
    assert page.headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in page.headers["Content-Security-Policy"]
    for name in re.findall(r'(?:src|href)="console/([^"]+)"', page.body.decode()):
        answer = client.http.get(f"/console/{name}")
        assert answer.status_code == 200, name
    module = client.http.get("/console/app.js")
    assert module.headers["Content-Type"].startswith("text/javascript")
    assert client.http.get("/console/console.css").headers["Content-Type"].startswith("text/css")


def test_every_module_imports_only_files_that_exist() -> None:
    for module in FOLDER.glob("*.js"):
        for name in re.findall(r'from "\./([^"]+)"', module.read_text()):
            assert (FOLDER / name).is_file(), f"{module.name} imports {name}"


def test_an_unchanged_file_is_answered_304(client: Client) -> None:
    first = client.http.get("/console/app.js")
    again = client.http.get("/console/app.js", headers={"If-None-Match": first.headers["ETag"]})
    assert again.status_code == 304 and again.body == b""


@pytest.mark.parametrize("name", ["nope.js", "..%2Fapp.py", "App.js", "app.py", ".hidden.js"])
def test_names_outside_the_folder_or_pattern_are_404(client: Client, name: str) -> None:
    answer = client.http.get(f"/console/{name}")
    assert answer.status_code == 404
    assert answer.json_body["error"]["code"] == "not_found"


@pytest.mark.parametrize(("role", "actions"), [
    (Role.NONE, []),
    (Role.READER, []),
    (Role.APPROVER, ["approve", "reject"]),
    (Role.OPERATOR, ["approve", "compensate", "execute", "reject", "resolve",
                     "retry_compensation", "retry_forward"]),
    (Role.ADMIN, ["approve", "compensate", "execute", "manage_definitions", "reject",
                  "resolve", "retry_compensation", "retry_forward"]),
])
def test_the_caller_view_follows_the_route_roles(role: Role, actions: list[str]) -> None:
    view = caller_view(Principal("ops@example", role), auth_enabled=True,
                       route_roles=ROUTE_ROLES, websocket_url="wss://push.example/live")
    assert view == {"subject": "ops@example", "role": role.name.lower(), "auth_enabled": True,
                    "actions": actions, "websocket_url": "wss://push.example/live"}


def test_the_page_carries_the_lifecycle_the_console_reads(client: Client) -> None:
    """dom.js and actions.js spell no status: they read the page's lifecycle block, which
    is the lifecycle module's sets."""
    from chalicelib.domain import lifecycle

    page = client.http.get("/console").body.decode()
    block = re.search(r'<script type="application/json" id="lifecycle">(.*?)</script>', page)
    assert block is not None
    served = json.loads(block.group(1))
    assert served["statuses"] == [status.value for status in lifecycle.ExecutionStatus]
    assert set(served["final"]) == {status.value for status in lifecycle.FINAL}
    assert {name: set(sources) for name, sources in served["actions"].items()} == {
        name: {status.value for status in sources}
        for name, sources in lifecycle.OPERATOR_ACTIONS.items()}
    assert set(served["actions"]["resolve"]) == {s.value for s in lifecycle.RESOLVABLE}
    # Every action the console offers a button for starts somewhere the lifecycle says.
    assert set(served["actions"]) <= set(ACTIONS)
    # The timeline's: a step's statuses, those with an attempt at work (an open bar), the one
    # of a step that waits, and the kinds of wait (what a waiting bar says it waits for).
    assert served["steps"]["statuses"] == [status.value for status in lifecycle.StepStatus]
    assert set(served["steps"]["at_work"]) < set(served["steps"]["statuses"])
    assert served["steps"]["waiting"] == lifecycle.StepStatus.WAITING.value
    assert served["steps"]["waiting"] not in served["steps"]["at_work"]
    # A step whose condition was false (the timeline marks it skipped).
    assert served["steps"]["skipped"] == lifecycle.StepStatus.SKIPPED.value
    assert served["steps"]["skipped"] not in served["steps"]["at_work"]
    assert served["wait_kinds"] == {kind.value: kind.value for kind in lifecycle.WaitKind}
    # After these the open approvals may differ: the header's count is read again.
    from chalicelib.domain import event_types

    assert set(served["approval_events"]) == {event_types.STEP_WAITING,
                                              event_types.STEP_CALLBACK_RECEIVED,
                                              *lifecycle.STATUS_OF_EVENT}
    assert {event_types.SAGA_COMPLETED, event_types.COMPENSATION_STARTED} <= set(
        served["approval_events"])


def test_the_modules_that_apply_the_lifecycle_spell_no_status() -> None:
    from chalicelib.domain import lifecycle

    for name in ("dom.js", "actions.js", "history.js", "attention.js"):
        text = (FOLDER / name).read_text()
        for status in lifecycle.ExecutionStatus:
            assert f'"{status.value}"' not in text, f"{name} spells {status.value}"
    # The timeline and the execution's page read a step's statuses and the kinds of wait
    # from the page too (and count a fan-out's items in the lifecycle's order of them).
    for name in ("dom.js", "timeline.js", "execution.js", "branches.js", "approvals.js"):
        text = (FOLDER / name).read_text()
        for step_status in lifecycle.StepStatus:
            assert f'"{step_status.value}"' not in text, f"{name} spells {step_status.value}"
        for kind in lifecycle.WaitKind:
            assert f'"{kind.value}"' not in text, f"{name} spells the wait kind {kind.value}"
