"""Create (or replace) the airline's Lambda, `trip-flight`, in the stack's Lambda service
(LocalStack for `make run`).

    .venv/bin/python examples/trip-booking/deploy_flight.py
"""

from __future__ import annotations

import contextlib
import io
import zipfile
from pathlib import Path
from typing import Any

FUNCTION = "trip-flight"
HERE = Path(__file__).resolve().parent


def deploy(lam: Any, name: str = FUNCTION, environment: dict[str, str] | None = None) -> str:
    """The function's name, once it is active. Its package is flight.py; the SDK it imports
    (saga_participant, sdk/python) comes with the project's environment locally (the local
    executor runs functions with it); on AWS, `pip install --target` it into the package."""
    package = io.BytesIO()
    with zipfile.ZipFile(package, "w") as archive:
        archive.write(HERE / "flight.py", "flight.py")
    with contextlib.suppress(lam.exceptions.ResourceNotFoundException):
        lam.delete_function(FunctionName=name)
    lam.create_function(FunctionName=name, Runtime="python3.11",
                        Role="arn:aws:iam::000000000000:role/saga-orchestrator-lambda",
                        Handler="flight.handler", Code={"ZipFile": package.getvalue()},
                        Timeout=10, Environment={"Variables": environment or {}})
    lam.get_waiter("function_active_v2").wait(FunctionName=name)
    return name


if __name__ == "__main__":
    from chalicelib.adapters import aws
    from chalicelib.config import load_settings

    print(f"deployed lambda:{deploy(aws.client('lambda', load_settings().aws))}")
