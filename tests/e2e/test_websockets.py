"""Live updates over a real WebSocket, through the local gateway, as a browser would get them."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus
from websockets.sync.client import ClientConnection, connect

from chalicelib.roots import runtime
from infra.ws_gateway import LocalWebsocketGateway
from tests.e2e.conftest import Api, new_customer

SEED = json.loads((Path(__file__).parents[1] / "fixtures" / "payment-saga.json").read_text())
FINAL_TYPES = {"saga.completed", "saga.compensated", "saga.failed", "saga.compensation.failed"}


def _events_until_final(ws: ClientConnection, execution_id: str,
                        timeout_s: float = 60) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        message = json.loads(ws.recv(timeout=max(0.1, deadline - time.monotonic())))
        if message["type"] != "event" or message["event"]["key"] != execution_id:
            continue
        got.append(message["event"])
        if message["event"]["type"] in FINAL_TYPES:
            return got
    raise AssertionError(f"no final event for {execution_id}: {[e['type'] for e in got]}")


def _saga(api: Api) -> str:
    definition = copy.deepcopy(SEED) | {"id": f"ws-{uuid.uuid4().hex[:10]}"}
    api.create_saga(definition)
    return definition["id"]


def test_a_subscriber_sees_every_event_of_an_execution_in_order(
    api: Api, ws_gateway: LocalWebsocketGateway, demo: Callable[[], dict[str, Any]]
) -> None:
    saga_id = _saga(api)
    customer = new_customer()
    with connect(f"ws://127.0.0.1:{ws_gateway.ws_port}/ws?saga_id={saga_id}") as ws:
        ws.send(json.dumps({"action": "ping"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "pong"}
        done = api.execute(saga_id, input={"customer_id": customer, "amount": "2.00",
                                           "currency": "EUR"})
        completed = _events_until_final(ws, done["id"])
        undone = api.execute(saga_id, input={"customer_id": customer, "amount": "2.00",
                                             "currency": "EUR"},
                             faults=[{"step_id": "send-notification", "permanent": True}])
        compensated = _events_until_final(ws, undone["id"])
    for events in (completed, compensated):
        assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))
        assert events[0]["type"] == "saga.execution.started"
    assert completed[-1]["type"] == "saga.completed"
    assert [e["data"]["step_id"] for e in completed if e["type"] == "saga.step.succeeded"] == \
        [step["id"] for step in SEED["steps"]]
    assert compensated[-1]["type"] == "saga.compensated"
    assert [e["data"]["step_id"] for e in compensated if e["type"] == "saga.step.compensated"] \
        == ["process-payment", "validate-payment"]


def test_subscriptions_narrow_what_a_client_receives(
    api: Api, ws_gateway: LocalWebsocketGateway, demo: Callable[[], dict[str, Any]]
) -> None:
    watched, other = _saga(api), _saga(api)
    customer = new_customer()
    body = {"customer_id": customer, "amount": "1.00", "currency": "EUR"}
    with connect(f"ws://127.0.0.1:{ws_gateway.ws_port}/ws?saga_id={watched}") as ws:
        ws.send(json.dumps({"action": "subscribe"}))
        assert json.loads(ws.recv(timeout=10))["type"] == "error"
        ws.send("not json")
        assert json.loads(ws.recv(timeout=10))["type"] == "error"
        ignored = api.execute(other, input=body)
        seen = api.execute(watched, input=body)
        events = _events_until_final(ws, seen["id"])
        assert all(e["data"]["saga_id"] == watched for e in events)
        api.wait(ignored["id"])
        ws.send(json.dumps({"action": "unsubscribe", "saga_id": watched}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "unsubscribed", "topics": []}
        # One execution of the other saga: choose its id, subscribe, then start it, so that
        # not even its first event can slip by.
        third_id = f"watched-{uuid.uuid4().hex[:8]}"
        ws.send(json.dumps({"action": "subscribe", "execution_id": third_id}))
        reply = json.loads(ws.recv(timeout=10))
        assert reply == {"type": "subscribed", "topics": [f"execution:{third_id}"]}
        api.execute(other, input=body, execution_id=third_id)
        third = _events_until_final(ws, third_id)
        assert [e["sequence"] for e in third] == list(range(1, len(third) + 1))
        assert third[-1]["type"] == "saga.completed"


@pytest.mark.parametrize(("query", "says"), [
    (f"saga_id={'s' * 101}", "saga_id must be at most 100 characters (it has 101)"),
    (f"execution_id={'e' * 5000}", "execution_id must be at most 100 characters (it has 5000)"),
    ("bogus=1", "unknown filter 'bogus': only saga_id, execution_id, all"),
    ("saga_id=a&sagaid=b", "unknown filter 'sagaid'"),
    ("all=maybe", "all must be true or false"),
    ("saga_id=", "saga_id must not be empty"),
], ids=["long-saga-id", "long-execution-id", "unknown", "misspelt", "all-not-a-bool", "empty"])
def test_a_filter_too_long_or_unknown_refuses_the_connection(
    ws_gateway: LocalWebsocketGateway, query: str, says: str
) -> None:
    """Refused with 400 and the reason (what $connect can answer on API Gateway too), never
    opened with the filter dropped, which would mean every event."""
    registry = runtime.container().subscriptions._connections  # the ws_connections
    # Ids, not a count: an earlier test's client may be unregistered meanwhile.
    before = {doc["_id"] for doc in registry.find({}, {"_id": 1})}
    with pytest.raises(InvalidStatus) as refused:
        connect(f"ws://127.0.0.1:{ws_gateway.ws_port}/ws?{query}", open_timeout=10)
    assert refused.value.response.status_code == 400
    assert says in json.loads(refused.value.response.body)["message"]
    registered = {doc["_id"] for doc in registry.find({}, {"_id": 1})}
    assert registered <= before, "a refused connection was registered"


def test_a_wrong_subscribe_message_gets_an_error_naming_the_field_and_changes_nothing(
    ws_gateway: LocalWebsocketGateway
) -> None:
    with connect(f"ws://127.0.0.1:{ws_gateway.ws_port}/ws?saga_id=kept") as ws:
        ws.send(json.dumps({"action": "subscribe", "execution_id": "e" * 100_000}))
        reply = json.loads(ws.recv(timeout=10))
        assert reply == {"type": "error", "message": "execution_id must be at most 100 "
                         "characters (it has 100000)", "problems": [{
                             "field": "execution_id", "message": reply["message"]}]}
        ws.send(json.dumps({"action": "subscribe", "saga_id": "s", "bogus": True}))
        reply = json.loads(ws.recv(timeout=10))
        assert reply["type"] == "error" and reply["problems"][0]["field"] == "bogus"
        assert reply["message"].startswith("unknown field 'bogus'")
        ws.send(json.dumps({"action": "subscribe", "all": "yes"}))
        assert json.loads(ws.recv(timeout=10))["message"] == "all must be true or false"
        # None of them touched the subscription.
        ws.send(json.dumps({"action": "unsubscribe", "execution_id": "none"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "unsubscribed",
                                                   "topics": ["saga:kept"]}


def test_a_subscribe_replaces_the_everything_of_a_connection_without_filters(
    ws_gateway: LocalWebsocketGateway
) -> None:
    """Row 18: a client that connected without filters and subscribed to one saga kept
    receiving every event (the subscribe added to "all"), so another saga's last events
    reached it. Its first subscribe now replaces the default; later ones add."""
    url = f"ws://127.0.0.1:{ws_gateway.ws_port}/ws"
    with connect(url) as ws:
        ws.send(json.dumps({"action": "subscribe", "saga_id": "mine"}))
        assert json.loads(ws.recv(timeout=10)) == {"type": "subscribed",
                                                   "topics": ["saga:mine"]}
        ws.send(json.dumps({"action": "subscribe", "execution_id": "ex-1"}))
        assert json.loads(ws.recv(timeout=10))["topics"] == ["execution:ex-1", "saga:mine"]
    with connect(f"{url}?all=true") as ws:  # asked for everything: kept
        ws.send(json.dumps({"action": "subscribe", "saga_id": "mine"}))
        assert json.loads(ws.recv(timeout=10))["topics"] == ["all", "saga:mine"]
    with connect(f"{url}?all=false") as ws:  # nothing until it subscribes
        ws.send(json.dumps({"action": "unsubscribe", "saga_id": "mine"}))
        assert json.loads(ws.recv(timeout=10))["topics"] == []


def test_a_client_that_left_is_dropped_from_the_registry(
    api: Api, ws_gateway: LocalWebsocketGateway
) -> None:
    from chalicelib.roots import runtime

    with connect(f"ws://127.0.0.1:{ws_gateway.ws_port}/ws") as ws:
        ws.send(json.dumps({"action": "ping"}))
        ws.recv(timeout=10)
        connection_ids = list(ws_gateway.clients)
        assert set(connection_ids) <= set(runtime.container().subscriptions.listeners(["all"]))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and set(connection_ids) & set(
            runtime.container().subscriptions.listeners(["all"])):
        time.sleep(0.1)
    assert not set(connection_ids) & set(runtime.container().subscriptions.listeners(["all"]))
    # A push to a connection that vanished without saying goodbye forgets it (410 Gone).
    runtime.container().subscriptions.connect("ghost-connection", ["all"], principal="test")
    assert runtime.container().pusher.send("ghost-connection", {"type": "ping"}) is False
    assert "ghost-connection" not in runtime.container().subscriptions.listeners(["all"])


SEED_CLIENT = """
const ws = new WebSocket("ws://localhost:PORT/ws");

ws.onopen = function (event) {
  console.log("Connected to WebSocket");
};

ws.onmessage = function (event) {
  const data = JSON.parse(event.data);
  console.log("Received:", data);
};

ws.onclose = function (event) {
  console.log("WebSocket connection closed");
};
"""
# Added around the documented client: a raw copy of each message for the test, and an exit.
HARNESS = """
ws.addEventListener("message", (e) => {
  process.stdout.write("RAW " + e.data + "\\n");
  if (JSON.parse(e.data).event?.type === "saga.completed") ws.close();
});
ws.addEventListener("close", () => setTimeout(() => process.exit(0), 10));
setTimeout(() => process.exit(3), 30000);
"""


def test_the_documented_javascript_client_receives_the_events(
    api: Api, ws_gateway: LocalWebsocketGateway, demo: Callable[[], dict[str, Any]]
) -> None:
    import subprocess

    saga_id = _saga(api)
    customer = new_customer()
    script = SEED_CLIENT.replace("PORT", str(ws_gateway.ws_port)) + HARNESS
    # Node 20 has the browser WebSocket behind this flag (22 has it by default).
    client = subprocess.Popen(["node", "--experimental-websocket", "--no-warnings", "-e", script],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 15
        while len(ws_gateway.clients) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        execution = api.execute(saga_id, input={"customer_id": customer, "amount": "1.00",
                                                "currency": "EUR"})
        output, _ = client.communicate(timeout=40)
    finally:
        client.kill()
    assert client.returncode == 0, output
    assert "Connected to WebSocket" in output
    assert "Received:" in output and "WebSocket connection closed" in output
    events = [json.loads(line[4:])["event"] for line in output.splitlines()
              if line.startswith("RAW ")]
    mine = [e for e in events if e["key"] == execution["id"]]
    assert mine[0]["type"] == "saga.execution.started"
    assert mine[-1]["type"] == "saga.completed"
    assert [e["sequence"] for e in mine] == list(range(1, len(mine) + 1))
