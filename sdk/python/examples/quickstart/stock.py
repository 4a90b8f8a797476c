"""The stock service: an HTTP participant that reserves stock, and releases it when the saga
compensates. Serves on 127.0.0.1:8201 (or the port given).

    python stock.py [PORT]
"""

import sys
import threading
from wsgiref.simple_server import make_server

from saga_participant import Refusal, Request, wsgi_app

STOCK = {"sku-1": 100, "sku-2": 0}         # what is on the shelf (a real service: its database)
RESERVATIONS = {}                           # idempotency key -> the reservation the action made
LOCK = threading.Lock()


def reserve(request: Request) -> dict:
    """The action: take `quantity` of `sku` off the shelf, or refuse for good."""
    sku, quantity = request.input["sku"], request.input["quantity"]
    with LOCK:
        available = STOCK.get(sku, 0)
        if quantity > available:
            raise Refusal("OutOfStock", f"only {available} of {sku} left",
                          {"sku": sku, "available": available, "wanted": quantity})
        request.check_deadline()             # nothing is committed once the call is cut
        STOCK[sku] = available - quantity
        reservation = {"reservation_id": f"R-{len(RESERVATIONS) + 1}", "sku": sku,
                       "quantity": quantity}
        RESERVATIONS[request.idempotency_key] = reservation
    print(f"reserved {quantity} x {sku}: {reservation['reservation_id']}", flush=True)
    return reservation


def release(request: Request) -> dict:
    """The compensation: put back what the action took. Its result is `action_result`, or
    null if the saga never learned it (the call was cut): then find it by the action's key."""
    with LOCK:
        reservation = RESERVATIONS.pop(request.action_key, None)
        if reservation:
            STOCK[reservation["sku"]] += reservation["quantity"]
    why = request.reason.type if request.reason else None
    print(f"released {reservation and reservation['reservation_id']} because of {why}",
          flush=True)
    return {"released": reservation["reservation_id"] if reservation else None}


app = wsgi_app(reserve, release)

if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8201
    with make_server("127.0.0.1", port, app) as server:
        print(f"stock service on http://127.0.0.1:{port}", flush=True)
        server.serve_forever()
