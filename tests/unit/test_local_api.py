"""What `saga serve` reads of a client's Accept-Encoding."""

from __future__ import annotations

import pytest

from infra.local_api import accepts_gzip


@pytest.mark.parametrize(("header", "accepted"), [
    ("gzip", True), ("deflate, gzip;q=0.5", True), ("*", True), ("GZIP", True),
    (None, False), ("", False), ("br, deflate", False), ("gzip;q=0", False),
    ("gzip;q=0.0, identity", False), ("gzip;q=nonsense", False),
])
def test_gzip_is_used_only_when_the_client_accepts_it(header: str | None, accepted: bool) -> None:
    assert accepts_gzip(header) is accepted
