"""boto3 clients pointed at AWS, or at LocalStack when aws.endpoint_url is set."""

from __future__ import annotations

import functools
from typing import Any

import boto3
from botocore.config import Config

from chalicelib.config import AwsSettings


@functools.cache
def _client_config(mode: str, max_attempts: int) -> Config:
    # botocore's standard/adaptive modes retry throttling (and transient 5xx) with full-jitter
    # exponential backoff. Retrying loses or doubles nothing here: a throttled call was
    # refused before it took effect, and the calls with effects are idempotent by design
    # (StartExecution carries the execution id as its name, so a repeat of one that did land
    # answers with the same run or ExecutionAlreadyExists, never a second run).
    return Config(retries={"total_max_attempts": max_attempts, "mode": mode}, connect_timeout=5,
                  read_timeout=30)


@functools.cache
def _session(region: str) -> boto3.session.Session:
    return boto3.session.Session(region_name=region)


def client(service: str, settings: AwsSettings) -> Any:
    kwargs: dict[str, Any] = {"config": _client_config(settings.retry_mode,
                                                       settings.max_attempts)}
    if settings.endpoint_url:
        kwargs["endpoint_url"] = settings.endpoint_url
        # LocalStack accepts any credentials; real AWS takes them from the usual chain.
        kwargs.setdefault("aws_access_key_id", "test")
        kwargs.setdefault("aws_secret_access_key", "test")
    return _session(settings.region).client(service, **kwargs)
