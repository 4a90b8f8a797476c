"""AWS's throttling, simulated in front of boto3 clients (LocalStack never throttles).

Each API has a token bucket (a burst of `capacity` calls, then `refill` calls per second) with
AWS's default quotas (../shared/notes/AWS-QUOTAS.md: the Step Functions Developer Guide's
"Quotas", the Lambda and STS quota pages); a call over its bucket is answered as AWS answers
it, as an HTTP response botocore parses and its retry mode retries like a real one:

- Step Functions (JSON protocol): 400, ThrottlingException, "Rate exceeded";
- Lambda Invoke over the account's concurrency (calls in flight): 429,
  TooManyRequestsException, Reason ConcurrentInvocationLimitExceeded;
- STS (query protocol): 400, Throttling, "Rate exceeded".

A call within its bucket goes on to whatever answers the client (AWS, LocalStack, moto or a
stub): `Throttle.attach(client)` registers the bucket check first among the client's
before-send handlers. The buckets count what they allowed and refused, per API.
"""

from __future__ import annotations

import io
import json
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.awsrequest import AWSResponse

# (bucket, refill per second) per (service id, operation): AWS's defaults in us-east-1,
# us-west-2 and eu-west-1.
DEFAULT_QUOTAS: dict[tuple[str, str], tuple[float, float]] = {
    ("sfn", "StartExecution"): (1300, 300),
    ("sfn", "StartSyncExecution"): (6000, 6000),  # Express: 6,000/s
    ("sfn", "DescribeExecution"): (300, 15),
    ("sfn", "GetExecutionHistory"): (400, 20),
    ("sfn", "ListExecutions"): (200, 5),
    ("sfn", "StopExecution"): (1000, 200),
    ("sfn", "SendTaskSuccess"): (3000, 500),
    ("sfn", "SendTaskFailure"): (3000, 500),
    ("sfn", "SendTaskHeartbeat"): (3000, 500),
    ("sfn", "CreateStateMachine"): (100, 1),
    ("sfn", "UpdateStateMachine"): (100, 1),
    ("sfn", "DeleteStateMachine"): (100, 1),
    ("sfn", "DescribeStateMachine"): (200, 20),
    ("sfn", "DescribeStateMachineForExecution"): (200, 1),
    # STS: 600 requests per second per account and Region.
    ("sts", "GetCallerIdentity"): (600, 600),
    ("sts", "AssumeRole"): (600, 600),
}
# The smaller buckets of the other Regions.
SMALLER_REGION_QUOTAS: dict[tuple[str, str], tuple[float, float]] = {
    **DEFAULT_QUOTAS,
    ("sfn", "StartExecution"): (800, 150),
    ("sfn", "DescribeExecution"): (250, 10),
    ("sfn", "ListExecutions"): (100, 2),
}
# State transitions of Standard workflows (not an API call: the ceiling bench's input).
STATE_TRANSITIONS = {"default": (5000, 1500), "smaller": (800, 500)}
# Lambda: concurrent executions per account and Region.
DEFAULT_LAMBDA_CONCURRENCY = 1000


@dataclass
class TokenBucket:
    """`capacity` calls at once, refilled at `refill` per second (thread-safe)."""

    capacity: float
    refill: float
    clock: Callable[[], float] = time.monotonic
    tokens: float = field(init=False)
    _at: float = field(init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)

    def __post_init__(self) -> None:
        self.tokens, self._at = self.capacity, self.clock()

    def take(self) -> bool:
        with self._lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self._at) * self.refill)
            self._at = now
            if self.tokens >= 1:
                self.tokens -= 1
                return True
            return False


class ResponseBody(io.BytesIO):
    """A canned response body, as botocore reads one."""

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


def _answer(url: str, status: int, headers: dict[str, str], body: bytes) -> AWSResponse:
    return AWSResponse(url, status, {"x-amzn-RequestId": "throttled", **headers},
                       ResponseBody(body))


def _throttled(service: str, url: str) -> AWSResponse:
    """What AWS answers a call over its rate, in the service's own protocol."""
    if service == "sts":
        return _answer(url, 400, {"Content-Type": "text/xml"}, (
            b"<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code>"
            b"<Message>Rate exceeded</Message></Error><RequestId>throttled</RequestId>"
            b"</ErrorResponse>"))
    return _answer(url, 400, {"Content-Type": "application/x-amz-json-1.0"}, json.dumps(
        {"__type": "ThrottlingException", "message": "Rate exceeded"}).encode())


def _too_many_lambdas(url: str) -> AWSResponse:
    return _answer(url, 429, {"Content-Type": "application/json",
                              "x-amzn-ErrorType": "TooManyRequestsException"},
                   json.dumps({"Reason": "ConcurrentInvocationLimitExceeded", "Type": "User",
                               "message": "Rate Exceeded."}).encode())


class Throttle:
    """Token buckets for the APIs in `quotas`, and Lambda's concurrency, shared by every client
    attached (as AWS shares them across an account's callers)."""

    def __init__(self, quotas: Mapping[tuple[str, str], tuple[float, float]] | None = None, *,
                 lambda_concurrency: int = DEFAULT_LAMBDA_CONCURRENCY,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.buckets = {key: TokenBucket(capacity, refill, clock)
                        for key, (capacity, refill) in (quotas or DEFAULT_QUOTAS).items()}
        self.lambda_concurrency = lambda_concurrency
        self.allowed: Counter[str] = Counter()
        self.throttled: Counter[str] = Counter()
        self._in_flight = 0
        self._lock = threading.Lock()

    def attach(self, client: Any) -> Any:
        """The client, its calls now checked against the buckets before they are sent."""
        service = client.meta.service_model.service_id.hyphenize()
        events = client.meta.events
        events.register_first(f"before-send.{service}", self._before_send)
        if service == "lambda":
            events.register_first("after-call.lambda.Invoke", self._invoked)
            events.register_first("after-call-error.lambda.Invoke", self._invoked)
        return client

    def _before_send(self, request: Any, event_name: str = "", **_: Any) -> AWSResponse | None:
        # botocore's event: before-send.<service id>.<operation>.
        _, service, operation = [*event_name.split(".", 2), "", ""][:3]
        key = f"{service}.{operation}"
        if service == "lambda" and operation == "Invoke":
            with self._lock:
                if self._in_flight >= self.lambda_concurrency:
                    self.throttled[key] += 1
                    return _too_many_lambdas(request.url)
                self._in_flight += 1
            self.allowed[key] += 1
            return None
        bucket = self.buckets.get((service, operation))
        if bucket is None or bucket.take():
            self.allowed[key] += 1
            return None
        self.throttled[key] += 1
        return _throttled(service, request.url)

    def _invoked(self, **_: Any) -> None:
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)
