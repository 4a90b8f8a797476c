"""The hotel service: an HTTP participant (WSGI), on 127.0.0.1:8102.

    .venv/bin/python examples/trip-booking/hotel.py

POST /book books a room near the car's pick-up for the trip's nights; its input mapping hands
it the car's booking id (`$.results.car.booking_id`), which it keeps with the booking. POST
/cancel cancels the room its own action booked (`action_result.booking_id`).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from wsgiref.simple_server import make_server

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bookings import Ledger
from saga_participant import ParticipantRequest, Refusal, wsgi_app

ROOMS = Ledger("HOTEL")


def book(request: ParticipantRequest) -> dict[str, Any]:
    if request.input["nights"] > 14:
        raise Refusal("NoRoom", f"no room for {request.input['nights']} nights",
                      {"nights": request.input["nights"], "max_nights": 14})
    booking_id = ROOMS.book(city=request.input["city"], nights=request.input["nights"],
                            car=request.input["car"], guest=request.input["guest"])
    return {"booking_id": booking_id, "car": request.input["car"]}


def cancel(request: ParticipantRequest) -> dict[str, Any]:
    booking_id = (request.action_result or {}).get("booking_id", "")
    return {"cancelled": booking_id if ROOMS.cancel(booking_id) else None,
            "because": request.reason.type if request.reason else None}


app = wsgi_app(book, cancel)

if __name__ == "__main__":
    with make_server("127.0.0.1", 8102, app) as server:
        print("hotel on http://127.0.0.1:8102 (POST /book, /cancel)", flush=True)
        server.serve_forever()
