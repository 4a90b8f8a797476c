"""The airline: a Lambda participant. `deploy_flight.py` creates it as `trip-flight`.

The action books a seat on the route for the lead guest and answers the ticket; a full flight
(`seats_left` 0 in the input, standing in for the airline's own inventory) is refused, which the
saga does not retry: it compensates the hotel, then the car. The compensation releases the seat
its action booked.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from saga_participant import ParticipantRequest, Refusal, lambda_handler


def _seen(request: ParticipantRequest) -> None:
    # Where the example's test reads what the airline was sent (unset: nothing is kept).
    if log := os.environ.get("TRIP_FLIGHT_LOG"):
        with Path(log).open("a") as out:
            out.write(request.model_dump_json() + "\n")


def book(request: ParticipantRequest) -> dict[str, Any]:
    _seen(request)
    if request.input["seats_left"] <= 0:
        raise Refusal("FlightFull", f"flight {request.input['route']} is full",
                      {"route": request.input["route"]})
    return {"ticket": f"TKT-{request.execution_id[:8]}", "route": request.input["route"],
            "passenger": request.input["guest"]}


def cancel(request: ParticipantRequest) -> dict[str, Any]:
    _seen(request)
    return {"released": json.dumps(request.action_result) if request.action_result else None}


handler = lambda_handler(book, cancel)
