"""Store the quickstart's saga and run it twice against the orchestrator (`make run`): an order
that completes, and one whose card is declined, which releases the stock it reserved.

    python run.py [--api URL] [--stock URL] [--payments URL] [--saga-id ID]

Exits 0 when the first execution is COMPLETED and the second COMPENSATED, 1 when either ended
otherwise, 2 when the API cannot be reached or an execution does not end in time.
"""

import argparse
import json
import sys
from pathlib import Path

from saga_participant.client import ApiError, SagaApi

HERE = Path(__file__).resolve().parent
ORDER = {"sku": "sku-1", "quantity": 2, "card": "4242-4242-4242-4242", "amount": "20.00"}
DECLINED = {**ORDER, "card": "4000-0000-0000-0002"}


def definition(stock: str, payments: str, saga_id: str) -> dict:
    """saga.json, pointed at where the two services are."""
    text = (HERE / "saga.json").read_text()
    text = text.replace("http://127.0.0.1:8201", stock.rstrip("/"))
    text = text.replace("http://127.0.0.1:8202", payments.rstrip("/"))
    return {**json.loads(text), "id": saga_id}


def show(execution: dict) -> None:
    print(f"execution {execution['id']}: {execution['status']}")
    for step in execution["steps"]:
        print(f"  {step['step_id']:8} {step['status']:12} {json.dumps(step.get('result'))}")
    if execution.get("error"):
        error = execution["error"]
        print(f"  error: {error['type']} at {error['step_id']}: {error['message']}")
    if execution.get("output"):
        print(f"  output: {json.dumps(execution['output'])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--api", help="the API's base URL (default: $SAGA_API, else "
                                      "http://127.0.0.1:8000)")
    parser.add_argument("--stock", default="http://127.0.0.1:8201")
    parser.add_argument("--payments", default="http://127.0.0.1:8202")
    parser.add_argument("--saga-id", default="quickstart-order")
    args = parser.parse_args()

    api = SagaApi(args.api)
    saga = api.create_saga(definition(args.stock, args.payments, args.saga_id), exist_ok=True)
    print(f"saga {saga['id']} {saga['version']}")

    completed = api.run(saga["id"], ORDER, timeout_s=90)
    show(completed)
    compensated = api.run(saga["id"], DECLINED, timeout_s=90)
    show(compensated)
    ok = completed["status"] == "COMPLETED" and compensated["status"] == "COMPENSATED"
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (ApiError, TimeoutError) as error:
        print(f"run.py: {error}", file=sys.stderr)
        sys.exit(2)
