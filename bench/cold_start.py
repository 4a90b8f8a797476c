"""Cold start: how long a fresh Python takes to import each Lambda's handler module, against
importing boto3 alone (the floor every AWS Lambda in Python pays), and what each one loads.

    .venv/bin/python -m bench.cold_start [--runs 15]

Each figure is the median over fresh processes of the top-level module's cumulative time from
`python -X importtime`. Prints a table and writes bench/results/cold_start.json. Needs no
server: importing a handler must not connect anywhere.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

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


def import_time_us(module: str) -> int:
    """Cumulative microseconds of `import module` in a fresh interpreter."""
    env = {**os.environ, "SAGA_STAGE": "bench", "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run([sys.executable, "-X", "importtime", "-c", f"import {module}"],
                            cwd=PROJECT, env=env, capture_output=True, text=True, timeout=120,
                            check=True)
    for line in reversed(result.stderr.splitlines()):
        parts = [part.strip() for part in line.split("|")]
        if len(parts) == 3 and parts[2] == module:
            return int(parts[1])
    raise RuntimeError(f"no import time for {module}:\n{result.stderr[-2000:]}")


def loaded(module: str) -> list[str]:
    """Which of the heavy packages importing the module brings in."""
    code = (f"import sys, {module}; "
            f"print(' '.join(m for m in {HEAVY!r} if m in sys.modules))")
    env = {**os.environ, "SAGA_STAGE": "bench"}
    out = subprocess.run([sys.executable, "-c", code], cwd=PROJECT, env=env,
                         capture_output=True, text=True, timeout=120, check=True).stdout
    return out.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    import_time_us("boto3")  # warm the file system cache once, for every module alike
    results = {}
    for label, module in MODULES.items():
        samples = [import_time_us(module) / 1000 for _ in range(args.runs)]
        results[label] = {"module": module, "median_ms": round(statistics.median(samples), 1),
                          "min_ms": round(min(samples), 1), "max_ms": round(max(samples), 1),
                          "loads": loaded(module)}
    floor = results["boto3 (floor)"]["median_ms"]
    rows = [[label, r["median_ms"], r["min_ms"], r["max_ms"], round(r["median_ms"] / floor, 2),
             " ".join(r["loads"])] for label, r in results.items()]
    print(table(rows, ["module", "median ms", "min", "max", "x floor", "loads"]))
    path = save("cold_start", {"runs": args.runs, "floor_ms": floor, "modules": results})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
