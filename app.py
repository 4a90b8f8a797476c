"""The Chalice app: API Gateway routes and Lambda handlers. Parsing and calling only."""

from __future__ import annotations

from typing import Any

from chalice import Chalice, Response

from chalicelib.api import JSON, actor, handles_errors, json_body
from chalicelib.config import get_settings
from chalicelib.health import check_health
from chalicelib.runtime import definition_service, openapi_document

app = Chalice(app_name="saga-orchestrator")
API = "/api/v1/saga"


def _saga(saga: Any) -> dict[str, Any]:
    return saga.model_dump(mode="json")


def _query(name: str) -> str | None:
    return (app.current_request.query_params or {}).get(name)


# -- health -----------------------------------------------------------------------------------

def _health_response() -> Response:
    settings = get_settings()
    report = check_health(settings)
    report.update(service=settings.saga.name, version=settings.saga.version, stage=settings.stage)
    return Response(body=report, status_code=200 if report["status"] == "up" else 503,
                    headers=JSON)


@app.route("/health", methods=["GET"])
def health() -> Response:
    return _health_response()


@app.route(f"{API}/health", methods=["GET"])
def detailed_health() -> Response:
    return _health_response()


@app.route(f"{API}/openapi.json", methods=["GET"])
def openapi() -> dict[str, Any]:
    return openapi_document()


# -- saga definitions -------------------------------------------------------------------------

@app.route(f"{API}/sagas", methods=["POST"])
@handles_errors
def create_saga() -> Response:
    saga = definition_service().create(json_body(app.current_request),
                                               actor(app.current_request))
    return Response(body=_saga(saga), status_code=201,
                    headers={**JSON, "Location": f"{API}/sagas/{saga.id}?version={saga.version}"})


@app.route(f"{API}/sagas", methods=["GET"])
@handles_errors
def list_sagas() -> dict[str, Any]:
    page = definition_service().list(limit=_query("limit"), cursor=_query("cursor"),
                                     active=_query("active"), saga_type=_query("type"))
    return {"items": [_saga(s) for s in page.items], "next_cursor": page.next_cursor}


@app.route(f"{API}/sagas/stats", methods=["GET"])
@handles_errors
def all_saga_stats() -> dict[str, Any]:
    return definition_service().all_stats()


@app.route(f"{API}/sagas/{{saga_id}}", methods=["GET"])
@handles_errors
def get_saga(saga_id: str) -> dict[str, Any]:
    return _saga(definition_service().get(saga_id, _query("version")))


@app.route(f"{API}/sagas/{{saga_id}}", methods=["DELETE"])
@handles_errors
def destroy_saga(saga_id: str) -> Response:
    definition_service().destroy(saga_id, actor(app.current_request))
    return Response(body="", status_code=204)


@app.route(f"{API}/sagas/{{saga_id}}/versions", methods=["GET"])
@handles_errors
def saga_versions(saga_id: str) -> dict[str, Any]:
    versions = definition_service().versions(saga_id)
    return {"saga_id": saga_id,
            "versions": [{**v, "created_at": v["created_at"].isoformat()} for v in versions]}


@app.route(f"{API}/sagas/{{saga_id}}/stats", methods=["GET"])
@handles_errors
def saga_stats(saga_id: str) -> dict[str, Any]:
    return definition_service().saga_stats(saga_id)


@app.route(f"{API}/sagas/{{saga_id}}/active", methods=["PUT"])
@handles_errors
def set_saga_active(saga_id: str) -> dict[str, Any]:
    return _saga(definition_service().set_active(saga_id, json_body(app.current_request),
                                                 actor(app.current_request)))


@app.route(f"{API}/sagas/{{saga_id}}/steps", methods=["POST"])
@handles_errors
def add_saga_step(saga_id: str) -> Response:
    saga = definition_service().add_step(saga_id, json_body(app.current_request),
                                         actor(app.current_request))
    return Response(body=_saga(saga), status_code=201, headers=JSON)


@app.route(f"{API}/sagas/{{saga_id}}/steps/{{step_id}}", methods=["DELETE"])
@handles_errors
def remove_saga_step(saga_id: str, step_id: str) -> dict[str, Any]:
    return _saga(definition_service().remove_step(saga_id, step_id, actor(app.current_request)))


@app.route(f"{API}/stats", methods=["GET"])
@handles_errors
def service_stats() -> dict[str, Any]:
    settings = get_settings()
    return {"service": settings.saga.name, "version": settings.saga.version,
            "stage": settings.stage, "definitions": definition_service().all_stats()}
