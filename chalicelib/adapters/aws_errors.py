"""AWS's error answers the adapters act on, told apart with no boto3 import."""

from __future__ import annotations

# The error codes AWS answers a call over its rate with (Step Functions, Lambda, STS, ...).
THROTTLED = frozenset({"ThrottlingException", "Throttling", "TooManyRequestsException",
                       "RequestLimitExceeded", "ProvisionedThroughputExceededException"})


def throttled(error: Exception) -> bool:
    """Whether a botocore ClientError is AWS refusing the call for its rate."""
    response = getattr(error, "response", None)
    return isinstance(response, dict) and response.get("Error", {}).get("Code") in THROTTLED
