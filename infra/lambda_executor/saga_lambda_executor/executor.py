"""RuntimeExecutor running each Lambda execution environment as a local Python subprocess.

One execution environment = one long-lived `$SAGA_LAMBDA_PYTHON -u bootstrap.py` process in the
unzipped code directory. Requests/replies are JSON lines on the child's stdin/stdout; whatever the
handler writes lands on the child's stderr pipe and becomes the invocation's logs (LocalStack then
puts them into CloudWatch Logs).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import math
import os
import selectors
import shutil
import signal
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from localstack import config
from localstack.aws.api.lambda_ import PackageType
from localstack.services.lambda_.invocation.executor_endpoint import StatusErrorException
from localstack.services.lambda_.invocation.lambda_models import FunctionVersion, InvocationResult
from localstack.services.lambda_.invocation.runtime_executor import (
    LambdaRuntimeException,
    RuntimeExecutor,
)

LOG = logging.getLogger(__name__)
BOOTSTRAP = Path(__file__).with_name("bootstrap.py")
KEPT_LOG_CHARS = 100_000  # tail kept for get_logs() (LocalStack prints it when startup fails)

# Every live child, so none survives LocalStack exiting without stopping its environments.
_LIVE: set[subprocess.Popen] = set()


def _python() -> str:
    return os.environ.get("SAGA_LAMBDA_PYTHON") or "python3.11"


def _kill(proc: subprocess.Popen) -> None:
    # The child leads its own session, so this also kills whatever the handler spawned.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    _LIVE.discard(proc)


atexit.register(lambda: [_kill(proc) for proc in list(_LIVE)])


def _gateway_host() -> str:
    host = config.GATEWAY_LISTEN[0].host
    return "127.0.0.1" if host in ("", "0.0.0.0", "::") else host


class SubprocessRuntimeExecutor(RuntimeExecutor):
    def __init__(self, id: str, function_version: FunctionVersion) -> None:
        super().__init__(id=id, function_version=function_version)
        self._proc: subprocess.Popen | None = None
        self._env: dict[str, str] = {}
        self._pending = bytearray()  # child output not yet attributed to an invocation
        self._history = ""
        self._stopped = False
        # Held while talking to the child; stop() kills first (unblocking any wait), then takes it.
        self._io_lock = threading.Lock()

    def start(self, env_vars: dict[str, Any]) -> None:
        self._env = {key: str(value) for key, value in env_vars.items()}
        with self._io_lock:
            init_error = self._spawn()
        if init_error:  # handled by LocalStack like an init error reported by the Docker runtime
            raise StatusErrorException(
                "Environment startup failed", payload=json.dumps(init_error).encode()
            )

    def stop(self) -> None:
        self._stopped = True
        if proc := self._proc:
            _kill(proc)
        with self._io_lock:
            self._discard_process()

    def _spawn(self) -> dict[str, Any] | None:
        """Start the child and wait for its init (handler import); returns None or an init error."""
        code_dir = str(self.function_version.config.code.get_unzipped_code_location())
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **self._env}
        env["LAMBDA_TASK_ROOT"] = code_dir  # the real location instead of /var/task
        try:
            self._proc = subprocess.Popen(
                [_python(), "-u", str(BOOTSTRAP)],
                cwd=code_dir,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                start_new_session=True,  # no terminal signals; killpg() reaches grandchildren
            )
        except OSError as e:
            return {"errorType": "Runtime.InvalidEntrypoint", "errorMessage": f"{_python()}: {e}"}
        _LIVE.add(self._proc)
        os.set_blocking(self._proc.stdout.fileno(), False)
        os.set_blocking(self._proc.stderr.fileno(), False)
        reply = self._receive(time.monotonic() + config.LAMBDA_RUNTIME_ENVIRONMENT_TIMEOUT)
        if reply and reply.get("ready"):
            return None
        self._discard_process()
        if reply and "error" in reply:
            return reply["error"]
        return {"errorType": "Runtime.ExitError", "errorMessage": "Runtime failed to start"}

    def _discard_process(self) -> None:
        if proc := self._proc:
            _kill(proc)
            self._drain_logs()
            for pipe in (proc.stdin, proc.stdout, proc.stderr):
                with contextlib.suppress(OSError):
                    pipe.close()
            self._proc = None

    def _receive(self, deadline: float) -> dict[str, Any] | None:
        """Wait for one reply line while collecting log output; None on timeout or child exit."""
        proc = self._proc
        reply = bytearray()
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            selector.register(proc.stderr, selectors.EVENT_READ)
            while (remaining := deadline - time.monotonic()) > 0:
                for key, _ in selector.select(remaining):
                    chunk = os.read(key.fd, 1 << 16)
                    if key.fileobj is proc.stderr:
                        self._pending += chunk
                        if not chunk:
                            selector.unregister(proc.stderr)
                    elif not chunk:
                        return None
                    else:
                        reply += chunk
                        if reply.endswith(b"\n"):
                            # The child flushed its output before replying: whatever it logged
                            # for this request is already in the pipe.
                            self._drain_logs()
                            return json.loads(reply)
        return None

    def _drain_logs(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError, ValueError):
            while chunk := os.read(self._proc.stderr.fileno(), 1 << 16):
                self._pending += chunk

    def invoke(self, payload: dict[str, str]) -> InvocationResult:
        request_id = payload["invoke-id"]
        timeout = float(self.function_version.config.timeout)
        with self._io_lock:
            if self._stopped:
                raise LambdaRuntimeException(f"Execution environment {self.id} was stopped")
            # After a timeout or crash the process is gone: start a fresh one, as Lambda re-inits.
            error = self._spawn() if self._proc is None else None
            started = time.monotonic()
            reply = {"error": error} if error else self._request(payload, started + timeout)
            duration_ms = min(time.monotonic() - started, timeout) * 1000
            logs = self._take_logs(request_id, duration_ms)
        if "error" in reply:
            return InvocationResult(request_id, json.dumps(reply["error"]).encode(), True, logs)
        return InvocationResult(request_id, reply["result"].encode(), False, logs)

    def _request(self, payload: dict[str, str], deadline: float) -> dict[str, Any]:
        """Send one invocation: the child's reply, or a timeout/exit error (child discarded)."""
        request = {
            "id": payload["invoke-id"],
            "arn": payload["invoked-function-arn"],
            "payload": payload["payload"],
            "trace": payload.get("trace-id"),
            "deadline_ms": (time.time() + deadline - time.monotonic()) * 1000,
        }
        try:
            self._proc.stdin.write(json.dumps(request).encode() + b"\n")
            self._proc.stdin.flush()
            reply = self._receive(deadline)
        except OSError:  # broken pipe: the child died between invocations
            reply = None
        if self._stopped:
            raise LambdaRuntimeException(f"Execution environment {self.id} was stopped")
        if reply is not None:
            return reply
        proc = self._proc
        self._discard_process()
        if time.monotonic() >= deadline:  # message format as LocalStack's Docker runtime / AWS
            timeout = self.function_version.config.timeout
            now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            message = f"{now} {request['id']} Task timed out after {timeout:.2f} seconds"
            error_type = "Sandbox.Timedout"
        else:
            code = proc.returncode
            status = f"exit status {code}" if code >= 0 else f"signal {-code}"
            message = f"RequestId: {request['id']} Error: Runtime exited with error: {status}"
            error_type = "Runtime.ExitError"
        self._pending += message.encode() + b"\n"  # AWS logs these lines too
        return {"error": {"errorType": error_type, "errorMessage": message}}

    def _take_logs(self, request_id: str, duration_ms: float) -> str:
        # Same START/END/REPORT framing as LocalStack's Docker runtime init.
        config_ = self.function_version.config
        logs = (
            f"START RequestId: {request_id} Version: {self.function_version.id.qualifier}\n"
            f"{self._pending.decode(errors='replace')}"
            f"END RequestId: {request_id}\n"
            f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms\t"
            f"Billed Duration: {math.ceil(duration_ms)} ms\t"
            f"Memory Size: {config_.memory_size} MB\tMax Memory Used: {config_.memory_size} MB\t\n"
        )
        self._pending.clear()
        self._history = (self._history + logs)[-KEPT_LOG_CHARS:]
        return logs

    def get_address(self) -> str:
        return "127.0.0.1"

    def get_endpoint_from_executor(self) -> str:
        return _gateway_host()  # the child runs on the host, next to LocalStack

    def get_runtime_endpoint(self) -> str:
        port = config.GATEWAY_LISTEN[0].port
        return f"http://{_gateway_host()}:{port}/_localstack_lambda/{self.id}"

    def get_logs(self) -> str:
        return self._history + self._pending.decode(errors="replace")

    @classmethod
    def prepare_version(cls, function_version: FunctionVersion) -> None:
        config_ = function_version.config
        if config_.package_type != PackageType.Zip or not config_.code:
            raise LambdaRuntimeException("local-process executor only runs Zip functions")
        if not (config_.runtime or "").startswith("python3"):
            raise LambdaRuntimeException(f"local-process cannot run runtime {config_.runtime}")
        config_.code.prepare_for_execution()  # unzip once per version

    @classmethod
    def cleanup_version(cls, function_version: FunctionVersion) -> None:
        pass  # nothing beyond the unzipped code, which LocalStack removes itself

    @classmethod
    def validate_environment(cls) -> bool:
        if shutil.which(_python()) is None:
            LOG.warning("Lambda Python %s not found; set SAGA_LAMBDA_PYTHON", _python())
            return False
        return True
