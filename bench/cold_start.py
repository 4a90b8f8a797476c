"""Cold start: how long a fresh Python takes to import each Lambda's handler module, against
importing boto3 alone (the floor every AWS Lambda in Python pays), what each one loads, and
how long the API's first request takes once it is imported.

    .venv/bin/python -m bench.cold_start [--runs 15] [--tree DIR]

Each import figure is the median over fresh processes of the top-level module's cumulative time
from `python -X importtime`; the modules' runs alternate (floor, step, API, floor, ...), so a
busy machine weighs on each alike. The modules are imported from a copy of what a deployed
Lambda carries (infra/deploy/aws.py packages it so): app.py and chalicelib/ as source, no
.pyc (a cold Lambda compiles them, as each process here does), the settings as JSON, the
participant SDK beside them. Installed packages load as the environment has them, the floor
alike.

First request: in a fresh process, `import app`, then one call of the API's Lambda handler
(`app.app`, as Lambda makes it) with an API Gateway proxy event, timed from the call to the
answer:

- GET /console: needs no database and no token, so it is what routing a request costs.
- GET /api/v1/saga/sagas with MySQL refusing at once (a closed local port): every /api route
  counts the caller's requests in MySQL before it runs, so this is a read route's path up to
  its first connection (the guard, the Container, the MySQL pool and driver), ending in 503.

Prints tables and writes bench/results/cold_start.json. Needs no server: importing a handler
must not connect anywhere. `--tree` measures another checkout (an older commit, say) the same
way, to compare two on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

# Importing this module changes no setting: the children get the environment below.
from bench.results_io import save, table

PROJECT = Path(__file__).resolve().parents[1]
MODULES = {
    "boto3 (floor)": "boto3",
    "step Lambda (chalicelib.roots.step_entry)": "chalicelib.roots.step_entry",
    "API Lambda (app)": "app",
}
HEAVY = ("pymongo", "kafka", "chalice", "boto3", "botocore", "aws_lambda_powertools", "yaml",
         "pydantic", "pymysql", "jwt")
# Where MySQL refuses at once: nothing listens on the discard port locally.
REFUSING_MYSQL = {"DB_HOST": "127.0.0.1", "DB_PORT": "9"}
REQUESTS = {
    "GET /console (no database)": ("/console", {}),
    "GET /api/v1/saga/sagas (MySQL refusing)": ("/api/v1/saga/sagas", REFUSING_MYSQL),
}

# Run in the child: import the app, then call its handler as Lambda would, once.
FIRST_REQUEST = """
import json, sys, time
started = time.perf_counter()
import app
imported = time.perf_counter()
path, heavy = sys.argv[1], json.loads(sys.argv[2])
event = {
    "resource": path, "path": path, "httpMethod": "GET",
    "headers": {"Accept": "application/json"},
    "multiValueHeaders": {"Accept": ["application/json"]},
    "queryStringParameters": None, "multiValueQueryStringParameters": None,
    "pathParameters": None, "stageVariables": None, "body": None, "isBase64Encoded": False,
    "requestContext": {
        "resourcePath": path, "httpMethod": "GET", "path": path, "stage": "api",
        "requestId": "bench", "identity": {"sourceIp": "127.0.0.1"},
        "authorizer": {"principalId": "bench", "role": "reader"},
    },
}
class Context:
    function_name = "saga-orchestrator-bench"
    aws_request_id = "bench"
    def get_remaining_time_in_millis(self):
        return 30000
answer = app.app(event, Context())
answered = time.perf_counter()
print(json.dumps({"import_ms": (imported - started) * 1000,
                  "request_ms": (answered - imported) * 1000,
                  "status": answer["statusCode"],
                  "loads": [m for m in heavy if m in sys.modules]}))
"""


def lambda_tree(source: Path, into: Path) -> Path:
    """What a deployed Lambda carries of `source`, as infra/deploy/aws.py packages it: app.py,
    chalicelib/ without .pyc, the settings as JSON in chalicelib/configs/, and the participant
    SDK (vendored at the package's root) when the checkout has one."""
    shutil.copy2(source / "app.py", into / "app.py")
    no_bytecode = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(source / "chalicelib", into / "chalicelib", ignore=no_bytecode)
    configs = source / "configs"
    bundled = into / "chalicelib" / "configs"
    shutil.copytree(configs, bundled, ignore=shutil.ignore_patterns("*.yaml"),
                    dirs_exist_ok=True)
    settings = yaml.safe_load((configs / "config.yaml").read_text())
    (bundled / "config.json").write_text(json.dumps(settings))
    sdk = source / "sdk" / "python" / "saga_participant"
    if sdk.is_dir():
        shutil.copytree(sdk, into / "saga_participant", ignore=no_bytecode)
    return into


def _env(**extra: str) -> dict[str, str]:
    # The tree is the working directory, first on sys.path; nothing else of a checkout is.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    return {**env, "SAGA_STAGE": "bench", "PYTHONDONTWRITEBYTECODE": "1", **extra}


def import_time_us(tree: Path, module: str) -> int:
    """Cumulative microseconds of `import module` in a fresh interpreter."""
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                            cwd=tree, env=_env(), capture_output=True, text=True, timeout=120,
                            check=True)
    for line in reversed(result.stderr.splitlines()):
        parts = [part.strip() for part in line.split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1])
    raise RuntimeError(f"no import time for {module}:\n{result.stderr[-2000:]}")


def loaded(tree: Path, module: str) -> list[str]:
    """Which of the heavy packages importing the module brings in."""
    code = (f"import sys, {module}; "
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], cwd=tree, env=_env(),
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return out.split()


def first_request(tree: Path, path: str, env: dict[str, str]) -> dict[str, Any]:
    """Import the app and answer one GET of `path` in a fresh process: its timings."""
    out = subprocess.run([sys.executable, "-c", FIRST_REQUEST, path, json.dumps(HEAVY)],
                         cwd=tree,
                         env=_env(**env), capture_output=True, text=True, timeout=120,
                         check=True).stdout
    return dict(json.loads(out.splitlines()[-1]))


def _summary(samples: list[float]) -> dict[str, float]:
    return {"median_ms": round(statistics.median(samples), 1),
            "min_ms": round(min(samples), 1), "max_ms": round(max(samples), 1)}


def measure_imports(tree: Path, runs: int) -> dict[str, dict[str, Any]]:
    import_time_us(tree, "boto3")  # warm the file system cache once, for every module alike
    samples: dict[str, list[float]] = {label: [] for label in MODULES}
    for _ in range(runs):
        for label, module in MODULES.items():
            samples[label].append(import_time_us(tree, module) / 1000)
    return {label: {"module": module, **_summary(samples[label]),
                    "loads": loaded(tree, module)} for label, module in MODULES.items()}


def measure_requests(tree: Path, runs: int) -> dict[str, dict[str, Any]]:
    results: dict[str, list[dict[str, Any]]] = {label: [] for label in REQUESTS}
    for _ in range(runs):
        for label, (path, env) in REQUESTS.items():
            results[label].append(first_request(tree, path, env))
    return {label: {"path": REQUESTS[label][0],
                    "status": sorted({r["status"] for r in rs}),
                    "import": _summary([r["import_ms"] for r in rs]),
                    "request": _summary([r["request_ms"] for r in rs]),
                    "loads_after": rs[-1]["loads"]} for label, rs in results.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--tree", type=Path, default=PROJECT,
                        help="the checkout to measure (default: this one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cold-start-") as tmp:
        tree = lambda_tree(args.tree.resolve(), Path(tmp))
        modules = measure_imports(tree, args.runs)
        requests = measure_requests(tree, args.runs)
    floor = modules["boto3 (floor)"]["median_ms"]
    rows = [[label, r["median_ms"], r["min_ms"], r["max_ms"], round(r["median_ms"] / floor, 2),
             " ".join(r["loads"])] for label, r in modules.items()]
    print(table(rows, ["module", "median ms", "min", "max", "x floor", "loads"]))
    rows = [[label, " ".join(map(str, r["status"])), r["request"]["median_ms"],
             r["request"]["min_ms"], r["request"]["max_ms"], r["import"]["median_ms"],
             " ".join(r["loads_after"])] for label, r in requests.items()]
    print()
    print(table(rows, ["first request after `import app`", "status", "median ms", "min", "max",
                       "import ms", "loaded after"]))
    path = save("cold_start", {"runs": args.runs, "tree": str(args.tree), "floor_ms": floor,
                               "modules": modules, "first_request": requests})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
