"""Every AWS client retries throttling with botocore's jittered backoff, as configured."""

from __future__ import annotations

from chalicelib.adapters import aws
from chalicelib.config import AwsSettings


def test_clients_use_the_configured_retry_mode_and_attempts() -> None:
    settings = AwsSettings(endpoint_url="http://127.0.0.1:1", retry_mode="adaptive",
                           max_attempts=7)
    for service in ("stepfunctions", "lambda", "sts"):
        retries = aws.client(service, settings).meta.config.retries
        assert retries["mode"] == "adaptive"
        assert retries["total_max_attempts"] == 7
