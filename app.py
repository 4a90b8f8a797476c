"""The Chalice app: API Gateway routes and Lambda handlers. Parsing and calling only."""

from __future__ import annotations

from chalice import Chalice, Response

from chalicelib.config import get_settings
from chalicelib.health import check_health

app = Chalice(app_name="saga-orchestrator")


@app.route("/health", methods=["GET"])
def health() -> Response:
    settings = get_settings()
    report = check_health(settings)
    report.update(service=settings.saga.name, version=settings.saga.version, stage=settings.stage)
    return Response(body=report, status_code=200 if report["status"] == "up" else 503,
                    headers={"Content-Type": "application/json"})
