"""The OpenAPI document a stage serves: what making it costs the first GET /openapi.json of a
Lambda (importing the document's module, the models and pydantic's schema generation, then
its schemas derived for the stage's configuration), against reading the committed file alone
(the floor: what serving it unchanged, with nothing to import, would cost). The API Lambda
has imported app.py before its first request: a third figure starts from there.

    .venv/bin/python -m bench.openapi_document [--runs 9]

Each run is a fresh process (a cold Lambda's first request), timed inside it from the import
of the document's module to the document in hand; the figure is the median over the runs,
the two kinds alternating. A warm figure (the same process making it again) shows what the
derivation itself costs once pydantic's schemas are built. Needs no server.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_FLOOR = """
import json, time
from pathlib import Path
t = time.perf_counter()
document = json.loads(Path("chalicelib/http/openapi.json").read_text())
print(json.dumps({"cold_ms": (time.perf_counter() - t) * 1000}))
"""

_SERVED = """
import json, time
PRELUDE
t = time.perf_counter()
from chalicelib.config import load_settings
from chalicelib.http.openapi import OPENAPI_FILE, stage_document
settings = load_settings(environ={})
committed = json.loads(OPENAPI_FILE.read_text())
document = stage_document(committed, auth_enabled=False, stage="local", saga=settings.saga)
cold = (time.perf_counter() - t) * 1000
t = time.perf_counter()
stage_document(committed, auth_enabled=False, stage="local", saga=settings.saga)
warm = (time.perf_counter() - t) * 1000
print(json.dumps({"cold_ms": cold, "warm_ms": warm,
                  "schemas": len(document["components"]["schemas"]),
                  "bytes": len(json.dumps(document))}))
"""


# The API Lambda has imported its handler module (app.py: the routing, the edge, the
# settings) before any request comes.
_IN_THE_API = "import app"


def _run(code: str) -> dict[str, float]:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=9)
    runs = max(1, min(parser.parse_args().runs, 50))
    floor: list[float] = []
    served: list[dict[str, float]] = []
    in_api: list[float] = []
    for _ in range(runs):
        floor.append(_run(_FLOOR)["cold_ms"])
        served.append(_run(_SERVED.replace("PRELUDE", "")))
        in_api.append(_run(_SERVED.replace("PRELUDE", _IN_THE_API))["cold_ms"])
    cold = statistics.median(s["cold_ms"] for s in served)
    warm = statistics.median(s["warm_ms"] for s in served)
    print(f"OpenAPI document, median of {runs} fresh processes")
    print(f"  read the committed file (floor)        {statistics.median(floor):8.1f} ms")
    print(f"  imported and made for the stage, cold  {cold:8.1f} ms")
    print(f"  the same once app.py is imported       {statistics.median(in_api):8.1f} ms")
    print(f"  made again in the same process, warm   {warm:8.1f} ms")
    print(f"  {int(served[0]['schemas'])} schemas, {int(served[0]['bytes']):,} bytes")


if __name__ == "__main__":
    main()
