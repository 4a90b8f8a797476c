"""The trip-booking example end to end on the local stack: the car and hotel services (HTTP,
written with the participant helper) and the airline's Lambda, the saga of
examples/trip-booking/saga.json with its input mapping and output. Every request a participant
receives is checked against the contract's JSON Schema."""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from socketserver import ThreadingMixIn
from types import ModuleType
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import jsonschema
import pytest

from chalicelib.adapters import aws
from chalicelib.config import Settings
from chalicelib.domain.contract import CONTRACT_SCHEMA_FILE
from chalicelib.domain.lifecycle import OUTCOME_UNKNOWN
from chalicelib.roots import runtime
from infra.cli_service import _timeline
from infra.stack.paths import PROJECT_ROOT
from tests.e2e.conftest import Api
from tests.support.records import matching_views

EXAMPLE = PROJECT_ROOT / "examples" / "trip-booking"
SCHEMA = json.loads(CONTRACT_SCHEMA_FILE.read_text())
TRIP = {"city": "Porto", "nights": 3, "guests": ["Ana", "Rui"], "route": "LIS-OPO",
        "seats_left": 12, "car_delay_s": 0}


def _example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"trip_booking_{name}", EXAMPLE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@dataclass
class Service:
    """One of the example's HTTP services, served on 127.0.0.1, recording what it is sent."""

    module: ModuleType
    url: str = ""
    received: list[tuple[dict[str, str], dict[str, Any]]] = field(default_factory=list)

    def recording(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {k[5:].replace("_", "-").title(): v for k, v in environ.items()
                   if k.startswith("HTTP_")}
        self.received.append((headers, json.loads(body)))
        environ["wsgi.input"] = io.BytesIO(body)
        return self.module.app(environ, start_response)

    def requests(self, execution_id: str, phase: str) -> list[dict[str, Any]]:
        return [body for _, body in self.received
                if body["execution_id"] == execution_id and body["phase"] == phase]


@pytest.fixture(scope="module")
def services() -> Iterator[dict[str, Service]]:
    started = {name: Service(_example(name)) for name in ("car", "hotel")}
    servers = []
    for service in started.values():
        server = make_server("127.0.0.1", 0, service.recording, server_class=_ThreadingServer,
                             handler_class=_Quiet)
        service.url = f"http://127.0.0.1:{server.server_address[1]}"
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        servers.append((server, thread))
    yield started
    for server, thread in servers:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def airline(settings_e2e: Settings, tmp_path_factory: pytest.TempPathFactory
            ) -> Iterator[tuple[str, Path]]:
    log = tmp_path_factory.mktemp("airline") / "requests.jsonl"
    log.touch()
    lam = aws.client("lambda", settings_e2e.aws)
    name = _example("deploy_flight").deploy(lam, f"trip-flight-{uuid.uuid4().hex[:8]}",
                                            {"TRIP_FLIGHT_LOG": str(log)})
    yield name, log
    lam.delete_function(FunctionName=name)


@pytest.fixture(scope="module")
def trip(api: Api, services: dict[str, Service], airline: tuple[str, Path]) -> str:
    """The example's saga, pointed at where this test serves its participants."""
    definition = json.loads((EXAMPLE / "saga.json").read_text())
    definition["id"] = f"trip-{uuid.uuid4().hex[:8]}"
    text = (json.dumps(definition)
            .replace("http://127.0.0.1:8101", services["car"].url)
            .replace("http://127.0.0.1:8102", services["hotel"].url)
            .replace("lambda:trip-flight", f"lambda:{airline[0]}"))
    stored = json.loads(text)
    stored["steps"][0]["max_retries"] = 0  # a timed-out car is compensated without retrying
    api.create_saga(stored)
    return str(stored["id"])


def _run(api: Api, saga_id: str, **changes: Any) -> dict[str, Any]:
    started = api.execute(saga_id, input={**TRIP, **changes})
    return api.wait(started["id"], timeout_s=90, after=started)


def _airline_requests(log: Path, execution_id: str) -> list[dict[str, Any]]:
    return [r for r in map(json.loads, log.read_text().splitlines())
            if r["execution_id"] == execution_id]


def _completed_event(execution_id: str) -> dict[str, Any]:
    with runtime.container().connector.transaction() as cur:
        cur.execute("SELECT envelope FROM outbox WHERE partition_key = %s AND type = %s",
                    (execution_id, "saga.completed"))
        return json.loads(cur.fetchone()["envelope"])


def test_the_hotel_gets_the_cars_booking_and_the_trip_completes_with_its_output(
        api: Api, trip: str, services: dict[str, Service], airline: tuple[str, Path],
        settings_e2e: Settings) -> None:
    done = _run(api, trip)
    assert done["status"] == "COMPLETED", done
    results = {s["step_id"]: s["result"] for s in done["steps"]}
    [hotel_booking] = services["hotel"].requests(done["id"], "action")
    assert hotel_booking["input"] == {"city": "Porto", "nights": 3, "guest": "Ana",
                                      "car": results["car"]["booking_id"]}
    assert hotel_booking["results"] == {"car": results["car"]}
    [flight] = _airline_requests(airline[1], done["id"])
    assert flight["input"] == {"route": "LIS-OPO", "guest": "Ana", "seats_left": 12}
    output = {"car": results["car"]["booking_id"], "hotel": results["hotel"]["booking_id"],
              "ticket": results["flight"]["ticket"], "trip": done["id"]}
    assert done["output"] == output
    # The read model holds exactly what the write model does, output included.
    assert matching_views(settings_e2e, done["id"]).output == output
    event = _completed_event(done["id"])
    assert event["data"]["output"] == output and event["data"]["status"] == "COMPLETED"


def test_a_refused_flight_undoes_hotel_then_car_each_with_its_own_result_and_the_reason(
        api: Api, trip: str, services: dict[str, Service], airline: tuple[str, Path]) -> None:
    undone = _run(api, trip, seats_left=0)
    assert undone["status"] == "COMPENSATED", undone
    results = {s["step_id"]: s["result"] for s in undone["steps"]}
    for name in ("hotel", "car"):
        [cancel] = services[name].requests(undone["id"], "compensation")
        assert cancel["action_result"] == results[name]
        assert cancel["action_error"] is None
        assert cancel["reason"]["step_id"] == "flight"
        # The airline's own error type (a Lambda's Refusal("FlightFull", ...)), not the
        # name the machines know it by.
        assert cancel["reason"]["type"] == "FlightFull"
        assert "LIS-OPO is full" in cancel["reason"]["message"]
    assert services["hotel"].module.ROOMS.cancelled[-1] == results["hotel"]["booking_id"]
    flight = next(s for s in undone["steps"] if s["step_id"] == "flight")
    assert flight["error"]["type"] == "FlightFull" and undone["error"]["type"] == "FlightFull"
    assert [a["error_type"] for a in flight["attempts"]] == ["FlightFull"]  # never retried
    # `saga executions show` tells the Lambda's type too, for the execution and its step.
    shown = _timeline(undone)
    assert "error: flight (action) FlightFull: " in shown, shown
    assert shown.count("FlightFull") >= 2, shown
    assert services["car"].module.CARS.cancelled[-1] == results["car"]["booking_id"]
    # Undone in reverse order: the hotel's cancellation reached its service first.
    steps = {s["step_id"]: s for s in undone["steps"]}
    assert steps["hotel"]["compensated_at"] < steps["car"]["compensated_at"]
    assert undone["output"] is None


def test_a_timed_out_car_is_cancelled_though_its_outcome_is_unknown(
        api: Api, trip: str, services: dict[str, Service]) -> None:
    undone = _run(api, trip, car_delay_s=7)  # the car step cuts its call after 5 s
    assert undone["status"] == "COMPENSATED", undone
    [cancel] = services["car"].requests(undone["id"], "compensation")
    assert cancel["action_result"] is None
    # The step, not the engine, cut the call at its deadline (the late-action rule).
    assert cancel["action_error"]["type"] == OUTCOME_UNKNOWN
    assert "deadline" in cancel["action_error"]["message"]
    assert cancel["reason"]["step_id"] == "car"
    # The booking was made before the desk went slow; the cancellation found it by the
    # action's idempotency key, so no car stays booked for this trip.
    [booked] = services["car"].requests(undone["id"], "action")
    assert not any(details["key"] == booked["idempotency_key"]
                   for details in services["car"].module.CARS.bookings.values())
    car = next(s for s in undone["steps"] if s["step_id"] == "car")
    assert car["result"] is None  # the late answer was not recorded


def test_a_bad_reference_is_refused_and_an_absent_value_fails_its_step_saying_which(
        api: Api, trip: str) -> None:
    definition = json.loads((EXAMPLE / "saga.json").read_text())
    definition["id"] = f"trip-bad-{uuid.uuid4().hex[:8]}"
    bad = copy.deepcopy(definition)
    bad["steps"][1]["input"]["car"] = "$.results.flight.ticket"
    status, body = api.call("POST", "/sagas", bad)
    assert status == 400, body
    [violation] = body["error"]["violations"]
    assert violation["field"] == "steps[1].input.car" and violation["rule"] == "reference"
    assert "does not run before this one" in violation["message"]

    without_route = {key: value for key, value in TRIP.items() if key != "route"}
    started = api.execute(trip, input=without_route)
    failed = api.wait(started["id"], timeout_s=90, after=started)
    assert failed["status"] == "COMPENSATED", failed
    flight = next(s for s in failed["steps"] if s["step_id"] == "flight")
    assert flight["status"] == "FAILED" and flight["action_attempts"] == 1  # not retried
    assert "$.input.route" in failed["error"]["message"]
    assert failed["error"]["step_id"] == "flight"


def test_every_request_the_participants_received_fits_the_contract(
        services: dict[str, Service], airline: tuple[str, Path]) -> None:
    validator = jsonschema.Draft202012Validator(SCHEMA)
    received = [body for service in services.values() for _, body in service.received]
    received += list(map(json.loads, airline[1].read_text().splitlines()))
    assert len(received) >= 8
    for request in received:
        validator.validate(request)
    for service in services.values():
        for headers, body in service.received:
            assert headers["Saga-Contract"] == "saga-participant/1"
            assert headers["Idempotency-Key"] == body["idempotency_key"]
