"""Pagination cursors are the API's own: sealed with an HMAC over the listing that handed
them out, so a forged, altered or foreign cursor is refused (row 17), never paged from."""

from __future__ import annotations

import base64
import json

import pytest

from chalicelib.adapters.cursors import CursorSeal, encode_cursor
from chalicelib.config import load_settings
from chalicelib.roots.container import Container

SEAL = CursorSeal(b"k" * 32)
INNER = encode_cursor("payment-saga")


def _forged(after: str) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": after}).encode()).decode()


def test_a_sealed_cursor_opens_on_its_own_listing_only() -> None:
    sealed = SEAL.seal("sagas", INNER)
    assert sealed is not None and sealed != INNER
    assert SEAL.open("sagas", sealed) == INNER
    with pytest.raises(ValueError, match=r"invalid cursor.*\(executions\)"):
        SEAL.open("executions", sealed)


def test_no_cursor_is_the_first_page_and_no_next_page_has_no_cursor() -> None:
    assert SEAL.open("sagas", None) is None and SEAL.open("sagas", "") is None
    assert SEAL.seal("sagas", None) is None


@pytest.mark.parametrize("cursor", [
    _forged("zzz-not-handed-out"),  # what the API handed out before cursors were sealed
    f"{_forged('zzz-not-handed-out')}.AAAAAAAAAAAAAAAAAAAAAA",
    "%%%", ".", "a.b.c",
])
def test_a_forged_cursor_is_refused(cursor: str) -> None:
    with pytest.raises(ValueError, match="invalid cursor"):
        SEAL.open("sagas", cursor)


def test_an_altered_cursor_or_one_sealed_with_another_key_is_refused() -> None:
    sealed = SEAL.seal("sagas", INNER)
    assert sealed is not None
    inner, mac = sealed.rsplit(".", 1)
    other_inner = encode_cursor("other-saga")
    for altered in (f"{other_inner}.{mac}", f"{inner}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",
                    CursorSeal(b"x" * 32).seal("sagas", INNER)):
        with pytest.raises(ValueError, match="invalid cursor"):
            SEAL.open("sagas", altered)


def test_the_key_is_the_configured_secret_else_derived_from_the_deployments_secrets() -> None:
    def seal(**environ: str) -> CursorSeal:
        return Container(load_settings(environ=environ)).cursor_seal

    configured = seal(SAGA__LIMITS__CURSOR_SECRET="s3cret")
    assert configured.key == b"s3cret"
    derived = seal(SAGA__DATABASE__MYSQL__PASSWORD="pw-1")
    assert len(derived.key) == 32 and derived == seal(SAGA__DATABASE__MYSQL__PASSWORD="pw-1")
    # Another deployment (another password, another stage) cannot open this one's cursors.
    assert derived != seal(SAGA__DATABASE__MYSQL__PASSWORD="pw-2")
    assert derived != seal(SAGA__DATABASE__MYSQL__PASSWORD="pw-1", SAGA_STAGE="dev")
