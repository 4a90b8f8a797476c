"""The car rental service: an HTTP participant (WSGI), on 127.0.0.1:8101.

    .venv/bin/python examples/trip-booking/car.py

POST /book books a car in the input's city for the trip's days and answers its booking id;
POST /cancel cancels the booking its own action made (the request carries that action's result
as `action_result`). A slow desk (`car_delay_s` in the input) makes the booking outlive its
step's timeout: the saga then compensates it without knowing its outcome (`action_result` is
null), and the cancellation looks the booking up by the request's idempotency key instead.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any
from wsgiref.simple_server import make_server

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bookings import Ledger
from saga_participant import ParticipantRequest, wsgi_app

CARS = Ledger("CAR")


def book(request: ParticipantRequest) -> dict[str, Any]:
    booking_id = CARS.book(city=request.input["city"], days=request.input["days"],
                           key=request.idempotency_key)
    time.sleep(float(request.input.get("delay_s") or 0))
    return {"booking_id": booking_id, "city": request.input["city"]}


def cancel(request: ParticipantRequest) -> dict[str, Any]:
    if request.action_result is not None:
        booking_id = request.action_result["booking_id"]
    else:  # the booking timed out: find it by the action's idempotency key, if it was made
        action_key = request.idempotency_key.rsplit(":", 1)[0] + ":action"
        booking_id = next((b for b, d in CARS.bookings.items() if d["key"] == action_key), "")
    return {"cancelled": booking_id if CARS.cancel(booking_id) else None}


# The request's phase says which one runs: /book and /cancel are names for people.
app = wsgi_app(book, cancel)

if __name__ == "__main__":
    with make_server("127.0.0.1", 8101, app) as server:
        print("car rental on http://127.0.0.1:8101 (POST /book, /cancel)", flush=True)
        server.serve_forever()
