"""boto3 clients pointed at AWS, or at LocalStack when aws.endpoint_url is set."""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.config import AwsSettings

_CLIENT_CONFIG = Config(retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5,
                        read_timeout=30)


@functools.cache
def _session(region: str) -> boto3.session.Session:
    return boto3.session.Session(region_name=region)


def client(service: str, settings: AwsSettings) -> Any:
    kwargs: dict[str, Any] = {"config": _CLIENT_CONFIG}
    if settings.endpoint_url:
        kwargs["endpoint_url"] = settings.endpoint_url
        # LocalStack accepts any credentials; real AWS takes them from the usual chain.
        kwargs.setdefault("aws_access_key_id", "test")
        kwargs.setdefault("aws_secret_access_key", "test")
    return _session(settings.region).client(service, **kwargs)
