"""Lambda runtime loop, run by the function's own Python (3.11) in the function's code directory.

Standard library only: this file runs outside LocalStack's venv. Protocol with the executor: one
JSON object per line, requests on fd 0, replies on fd 1. Before any user code runs, fd 0 is pointed
at /dev/null and fd 1 at fd 2 (the log pipe), so print()/logging in the handler cannot corrupt it.
"""

from __future__ import annotations

import decimal
import importlib
import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any


class Context:
    """The subset of the Lambda context object that handlers commonly use."""

    def __init__(self, request: dict[str, Any]) -> None:
        env = os.environ
        self.function_name = env.get("AWS_LAMBDA_FUNCTION_NAME", "")
        self.function_version = env.get("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        self.memory_limit_in_mb = int(env.get("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128"))
        self.log_group_name = env.get("AWS_LAMBDA_LOG_GROUP_NAME", "")
        self.log_stream_name = env.get("AWS_LAMBDA_LOG_STREAM_NAME", "")
        self.aws_request_id: str = request["id"]
        self.invoked_function_arn: str = request["arn"]
        self.identity = None
        self.client_context = None
        self._deadline_ms: float = request["deadline_ms"]

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int(self._deadline_ms - time.time() * 1000))


class _RequestIdFilter(logging.Filter):
    request_id = ""

    def filter(self, record: logging.LogRecord) -> bool:
        record.aws_request_id = self.request_id
        return True


def _setup_logging() -> _RequestIdFilter:
    # Like the AWS runtime: the root logger has a handler in Lambda's format (level stays WARNING).
    handler = logging.StreamHandler(sys.stdout)
    formatter = logging.Formatter(
        "[%(levelname)s]\t%(asctime)s.%(msecs)03dZ\t%(aws_request_id)s\t%(message)s",
        "%Y-%m-%dT%H:%M:%S",
    )
    formatter.converter = time.gmtime
    handler.setFormatter(formatter)
    request_filter = _RequestIdFilter()
    handler.addFilter(request_filter)
    logging.getLogger().addHandler(handler)
    if level := os.environ.get("AWS_LAMBDA_LOG_LEVEL"):
        logging.getLogger().setLevel(level.upper())
    return request_filter


def _error(
    exc: BaseException,
    error_type: str | None = None,
    message: str | None = None,
    trace: bool = True,
) -> dict[str, Any]:
    tb = exc.__traceback__ if trace else None
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next  # hide this runtime's own frames, as AWS does
    error = {
        "errorMessage": str(exc) if message is None else message,
        "errorType": error_type or type(exc).__name__,
        "stackTrace": traceback.format_tb(tb),
    }
    # The AWS runtime logs unhandled errors too; they end up in CloudWatch with the rest.
    print(f"[ERROR] {error['errorType']}: {error['errorMessage']}", file=sys.stderr)
    if error["stackTrace"]:
        sys.stderr.write("Traceback (most recent call last):\n" + "".join(error["stackTrace"]))
    return error


def _load_handler(spec: str) -> tuple[Callable[..., Any] | None, dict[str, Any] | None]:
    """Import "module.func" (or "dir/module.func"): (handler, None) or (None, Lambda init error)."""
    module_name, _, func_name = spec.rpartition(".")
    if not module_name:
        return None, _error(
            ValueError(spec), "Runtime.MalformedHandlerName", f"Bad handler '{spec}'"
        )
    module_name = module_name.replace("/", ".")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        return None, _error(
            e, "Runtime.ImportModuleError", f"Unable to import module '{module_name}': {e}"
        )
    except SyntaxError as e:
        return None, _error(
            e, "Runtime.UserCodeSyntaxError", f"Syntax error in module '{module_name}': {e}"
        )
    except Exception as e:
        return None, _error(e)
    handler = getattr(module, func_name, None)
    if not callable(handler):
        message = f"Handler '{func_name}' missing on module '{module_name}'"
        return None, _error(AttributeError(message), "Runtime.HandlerNotFound")
    return handler, None


def _json_default(value: Any) -> Any:
    # e.g. DynamoDB numbers, which the AWS runtime serializes too
    if isinstance(value, decimal.Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def main() -> None:
    requests = os.fdopen(os.dup(0), "rb")
    replies = os.fdopen(os.dup(1), "wb")
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.close(devnull)
    os.dup2(2, 1)  # the handler's stdout now goes to the log pipe, like its stderr

    def send(message: dict[str, Any]) -> None:
        sys.stdout.flush()  # logs are written before the reply, so the executor can attribute them
        sys.stderr.flush()
        replies.write(json.dumps(message).encode() + b"\n")
        replies.flush()

    # sys.path[0] is this package's directory; the function's code must come first (/var/task).
    sys.path[0] = os.getcwd()
    request_filter = _setup_logging()
    handler, init_error = _load_handler(os.environ.get("_HANDLER", ""))
    send({"ready": True} if handler else {"error": init_error})
    if handler is None:
        return

    for line in requests:  # EOF (executor stopped or LocalStack gone) ends the process
        request = json.loads(line)
        os.environ["_X_AMZN_TRACE_ID"] = request.get("trace") or ""
        request_filter.request_id = request["id"]
        try:
            event = json.loads(request["payload"]) if request["payload"] else {}
            result = handler(event, Context(request))
        except Exception as e:
            reply = {"error": {**_error(e), "requestId": request["id"]}}
        else:
            try:
                reply = {"result": json.dumps(result, default=_json_default)}
            except (TypeError, ValueError) as e:
                message = f"Unable to marshal response: {e}"
                reply = {"error": _error(e, "Runtime.MarshalError", message, trace=False)}
        send(reply)


if __name__ == "__main__":
    main()
