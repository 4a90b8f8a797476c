"""The operator console: its static files (chalicelib/http/console/, packaged with the app so every
stage serves them), and what the caller may do there (GET /whoami).

The files are plain ES modules, CSS and HTML with no build step; only names in that folder
matching a strict pattern are served, so a request can never reach another path.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from chalicelib.http.auth import Principal, Role
from chalicelib.http.paths import API_PREFIX
from chalicelib.http.static_files import StaticFiles

if TYPE_CHECKING:
    from chalicelib.domain.lifecycle import ExecutionStatus

FOLDER = Path(__file__).with_name("console")
_NAME = re.compile(r"^[a-z][a-z0-9-]{0,40}\.(html|js|css|svg)$")
# Everything comes from the service itself; the WebSocket API may be on another host or port.
POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
          "connect-src 'self' ws: wss:; base-uri 'none'; form-action 'none'; "
          "frame-ancestors 'none'")

# What the console offers, each the (path, method) of the route it calls: the role a route
# needs is the route's own (app.ROUTE_ROLES), so the two cannot disagree.
API = API_PREFIX
ACTIONS = {
    "execute": (f"{API}/sagas/{{saga_id}}/execute", "POST"),
    "compensate": (f"{API}/sagas/{{saga_id}}/compensate", "POST"),
    "retry_compensation": (f"{API}/executions/{{execution_id}}/retry-compensation", "POST"),
    "retry_forward": (f"{API}/executions/{{execution_id}}/retry-forward", "POST"),
    "resolve": (f"{API}/executions/{{execution_id}}/resolve", "POST"),
    "manage_definitions": (f"{API}/sagas", "POST"),
    # An approval: approved (succeed) or rejected with a comment (fail).
    "approve": (f"{API}/callbacks/{{callback_id}}/succeed", "POST"),
    "reject": (f"{API}/callbacks/{{callback_id}}/fail", "POST"),
}


# Where the page carries the lifecycle's data (a JSON block, never run as a script).
PAGE = "index.html"
LIFECYCLE_SLOT = '<script type="application/json" id="lifecycle"></script>'


def lifecycle_data() -> dict[str, Any]:
    """What the console knows of the lifecycle, from chalicelib/domain/lifecycle.py: every
    execution status (in order), the final ones (it stops polling an execution there) and the
    statuses each operator action starts from (where it offers the action's button); every
    step status (in order: a fan-out's items are counted by status in it), those with an
    attempt at work, the one of a step that waits and the one of a step whose condition was
    false (the timeline's open, waiting and skipped marks), and the kinds of wait (what a
    waiting bar says); and the events after which the open approvals may differ (a wait
    began or was completed, an execution's status moved: the header's count is read again)."""
    # Imported when the page is first served (once per process), not with the app.
    from chalicelib.domain import event_types, lifecycle

    # A step with an attempt at work: the timeline draws it an open bar up to now.
    at_work = (lifecycle.StepStatus.RUNNING, lifecycle.StepStatus.COMPENSATING)
    return {"statuses": [status.value for status in lifecycle.ExecutionStatus],
            "final": _ordered(lifecycle.ExecutionStatus, lifecycle.FINAL),
            "actions": {name: _ordered(lifecycle.ExecutionStatus, sources)
                        for name, sources in lifecycle.OPERATOR_ACTIONS.items()},
            "steps": {"statuses": [status.value for status in lifecycle.StepStatus],
                      "at_work": [status.value for status in at_work],
                      "waiting": lifecycle.StepStatus.WAITING.value,
                      "skipped": lifecycle.StepStatus.SKIPPED.value},
            "wait_kinds": {kind.name.lower(): kind.value for kind in lifecycle.WaitKind},
            "approval_events": sorted({event_types.STEP_WAITING,
                                       event_types.STEP_CALLBACK_RECEIVED,
                                       *lifecycle.STATUS_OF_EVENT})}


def _ordered(order: type[ExecutionStatus], statuses: frozenset[ExecutionStatus]) -> list[str]:
    return [status.value for status in order if status in statuses]


def _with_lifecycle(page: str) -> str:
    """The page with the lifecycle's data in its slot: in the page itself, so the console
    needs no extra request, and the page's ETag changes whenever the data does."""
    # "<" escaped: nothing in the data can close the script element.
    data = json.dumps(lifecycle_data(), separators=(",", ":")).replace("<", "\\u003c")
    if page.count(LIFECYCLE_SLOT) != 1:
        raise RuntimeError(f"the console's {PAGE} lacks its lifecycle slot")
    return page.replace(LIFECYCLE_SLOT, LIFECYCLE_SLOT.replace("><", f">{data}<"))


def _prepare(name: str, body: str) -> str:
    return _with_lifecycle(body) if name == PAGE else body


FILES = StaticFiles(FOLDER, "the console", _NAME, POLICY, _prepare)


def caller_view(caller: Principal, *, auth_enabled: bool,
                route_roles: dict[tuple[str, str], Role], websocket_url: str) -> dict[str, Any]:
    """Who the caller is, their role, and which console actions it permits."""
    from chalicelib.http.payloads import Caller

    permitted = {name: caller.role >= route_roles[route] for name, route in ACTIONS.items()}
    return Caller(subject=caller.subject, role=caller.role.name.lower(),
                  auth_enabled=auth_enabled,
                  actions=sorted(name for name, allowed in permitted.items() if allowed),
                  websocket_url=websocket_url).model_dump()


def websocket_url(configured: str, port: int) -> str:
    return configured or f"ws://127.0.0.1:{port}/ws"
