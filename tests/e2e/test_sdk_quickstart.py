"""The SDK's quickstart, run as written (sdk/python/README.md) from fresh venvs on Python 3.9
and 3.13 against the API as `make run` serves it: its two participants on their ports, its
run.py storing the saga and running it twice; the second run's declined card shows as the
participant's own error type in the API and in the CLI."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from infra.stack.paths import PROJECT_ROOT
from infra.stack.process import port_open
from tests.support.served import Served, free_port, http, served

QUICKSTART = PROJECT_ROOT / "sdk" / "python" / "examples" / "quickstart"


@pytest.fixture(scope="module")
def api() -> Iterator[Served]:
    with served({}) as app:
        yield app


def _serve(python: Path, script: str, port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([str(python), str(QUICKSTART / script), str(port)],
                               cwd=QUICKSTART, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while not port_open("127.0.0.1", port):
        assert process.poll() is None and time.monotonic() < deadline, f"{script} did not start"
        time.sleep(0.1)
    return process


@pytest.mark.parametrize("version", ["3.9", "3.13"])
def test_the_quickstart_runs_as_written_and_a_refusal_keeps_its_type(
        api: Served, sdk_venvs: Callable[[str], Path], version: str) -> None:
    python = sdk_venvs(version)
    stock_port, payments_port = free_port(), free_port()
    services = [_serve(python, "stock.py", stock_port),
                _serve(python, "payments.py", payments_port)]
    try:
        run = subprocess.run(
            [str(python), str(QUICKSTART / "run.py"), "--api", api.base,
             "--stock", f"http://127.0.0.1:{stock_port}",
             "--payments", f"http://127.0.0.1:{payments_port}",
             "--saga-id", f"quickstart-{version.replace('.', '')}-{uuid.uuid4().hex[:6]}"],
            cwd=QUICKSTART, capture_output=True, text=True, timeout=240, check=False)
    finally:
        for process in services:
            process.terminate()
            process.wait(timeout=10)
    assert run.returncode == 0, run.stdout + run.stderr
    ids = dict((status, execution) for execution, status in
               re.findall(r"execution (\S+): (COMPLETED|COMPENSATED)", run.stdout))
    assert set(ids) == {"COMPLETED", "COMPENSATED"}, run.stdout
    # The payment participant's Refusal("CardDeclined", ...) is the step's error type.
    execution = http("GET", f"{api.base}/api/v1/saga/executions/{ids['COMPENSATED']}").json()
    charge = next(s for s in execution["steps"] if s["status"] == "FAILED")
    assert charge["error"]["type"] == "CardDeclined", charge
    assert execution["error"]["type"] == "CardDeclined"
    shown = subprocess.run([sys.executable, "-m", "infra.cli", "executions", "show",
                            ids["COMPENSATED"], "--api", api.base], cwd=PROJECT_ROOT,
                           capture_output=True, text=True, timeout=60, check=False)
    assert shown.returncode == 0 and "CardDeclined" in shown.stdout, shown.stdout
