"""`saga verify --check` for the state participant: every step the case undoes shows undone
in the participant's own state. `python -m tests.support.verify_check <participant url>`."""

from __future__ import annotations

import json
import os
import sys
import urllib.request


def main(url: str) -> int:
    execution = os.environ["SAGA_EXECUTION_ID"]
    with urllib.request.urlopen(f"{url}/state?execution={execution}", timeout=10) as answer:
        state = json.loads(answer.read())
    undone = [s for s in os.environ.get("SAGA_UNDONE", "").split(",") if s]
    wrong = [s for s in undone if state.get(s) != "undone"]
    if wrong:
        print(f"not undone by the participant: {', '.join(wrong)} (its state: {state})")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
