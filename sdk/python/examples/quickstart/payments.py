"""The payment service: an HTTP participant that charges a card, and refunds it when the saga
compensates. A card ending in 0002 is declined. Serves on 127.0.0.1:8202 (or the port given).

    python payments.py [PORT]
"""

import sys
import threading
from wsgiref.simple_server import make_server

from saga_participant import Refusal, Request, wsgi_app

CHARGES = {}                                # charge id -> amount (a real service: its database)
LOCK = threading.Lock()


def charge(request: Request) -> dict:
    """The action: charge the card, or refuse for good if it is declined."""
    card, amount = request.input["card"], request.input["amount"]
    if card.endswith("0002"):
        raise Refusal("CardDeclined", "the card was declined", {"card_last4": card[-4:]})
    with LOCK:
        charge_id = f"CH-{len(CHARGES) + 1}"
        CHARGES[charge_id] = amount
    print(f"charged {amount} to ...{card[-4:]}: {charge_id}"
          f" (for {request.input['reservation']})", flush=True)
    return {"charge_id": charge_id, "amount": amount}


def refund(request: Request) -> dict:
    """The compensation: refund what the action charged."""
    charge_id = (request.action_result or {}).get("charge_id")
    with LOCK:
        refunded = CHARGES.pop(charge_id, None) if charge_id else None
    print(f"refunded {charge_id}: {refunded}", flush=True)
    return {"refunded": charge_id if refunded is not None else None}


app = wsgi_app(charge, refund)

if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8202
    with make_server("127.0.0.1", port, app) as server:
        print(f"payment service on http://127.0.0.1:{port}", flush=True)
        server.serve_forever()
