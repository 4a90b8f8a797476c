"""Response compression in `saga serve`, as API Gateway's MinimumCompressionSize does it."""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator

import pytest

from tests.support.sagas import seed_copy
from tests.support.served import Served, http, served

API = "/api/v1/saga"


@pytest.fixture(scope="module")
def server(deployed: None) -> Iterator[Served]:
    with served({}) as running:
        for _ in range(2):
            created = http("POST", f"{running.base}{API}/sagas",
                           json.dumps(seed_copy("gzip")).encode())
            assert created.status == 201, created.raw
        yield running


def test_a_large_list_is_gzipped_for_a_client_that_accepts_it(server: Served) -> None:
    url = f"{server.base}{API}/sagas?limit=50"
    plain = http("GET", url)
    assert plain.status == 200 and len(plain.raw) >= 1024
    assert "Content-Encoding" not in plain.headers
    assert plain.headers["Vary"] == "Accept-Encoding"

    zipped = http("GET", url, headers={"Accept-Encoding": "gzip, deflate"})
    assert zipped.status == 200
    assert zipped.headers["Content-Encoding"] == "gzip"
    assert zipped.headers["Vary"] == "Accept-Encoding"
    assert int(zipped.headers["Content-Length"]) == len(zipped.raw) < len(plain.raw)
    assert json.loads(gzip.decompress(zipped.raw))["items"] == plain.json()["items"]

    refused = http("GET", url, headers={"Accept-Encoding": "gzip;q=0, identity"})
    assert "Content-Encoding" not in refused.headers


def test_a_small_response_is_sent_as_it_is(server: Served) -> None:
    answer = http("GET", f"{server.base}/health", headers={"Accept-Encoding": "gzip"})
    assert len(answer.raw) < 1024 and "Content-Encoding" not in answer.headers
    assert answer.json()["status"]
