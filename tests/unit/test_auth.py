"""Bearer tokens: HS256 and RS256 (JWKS), what makes one refused, and the role order."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.config import AuthSettings
from chalicelib.http.auth import Forbidden, Role, Unauthenticated, highest_role
from chalicelib.http.tokens import TokenVerifier

SECRET = "unit-test-secret-of-32-bytes-or-more"


def hs256(claims: dict[str, Any], secret: str = SECRET) -> str:
    return "Bearer " + jwt.encode({"exp": int(time.time()) + 300, **claims}, secret, "HS256")


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def verifier(tmp_path: Path, rsa_key: rsa.RSAPrivateKey) -> TokenVerifier:
    public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(rsa_key.public_key()))
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [{**public, "kid": "k1",
                                                               "use": "sig", "alg": "RS256"}]}))
    return TokenVerifier(AuthSettings(enabled=True, hs256_secret=SECRET,
                                      jwks_file="jwks.json", leeway_seconds=0), tmp_path)


def test_an_hs256_token_names_the_caller_and_their_highest_role(
        verifier: TokenVerifier) -> None:
    caller = verifier.verify(hs256({"sub": "alice", "roles": ["reader", "operator"]}))
    assert caller.subject == "alice" and caller.role is Role.OPERATOR


def test_an_rs256_token_is_checked_against_the_jwks(verifier: TokenVerifier,
                                                    rsa_key: rsa.RSAPrivateKey) -> None:
    token = jwt.encode({"sub": "svc", "roles": "admin", "exp": int(time.time()) + 60},
                       rsa_key, "RS256", headers={"kid": "k1"})
    assert verifier.verify(f"Bearer {token}").role is Role.ADMIN
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode({"sub": "svc", "roles": "admin", "exp": int(time.time()) + 60},
                        other, "RS256", headers={"kid": "k1"})
    with pytest.raises(Unauthenticated, match="signature is not valid"):
        verifier.verify(f"Bearer {forged}")
    unknown = jwt.encode({"sub": "svc", "exp": int(time.time()) + 60}, rsa_key, "RS256",
                         headers={"kid": "k9"})
    with pytest.raises(Unauthenticated, match="no key 'k9'"):
        verifier.verify(f"Bearer {unknown}")


@pytest.mark.parametrize(("header", "reason"), [
    (None, "a bearer token is required"),
    ("", "a bearer token is required"),
    ("Basic dXNlcjpwYXNz", "must be 'Bearer <jwt>'"),
    ("Bearer ", "must be 'Bearer <jwt>'"),
    ("Bearer not.a.jwt", "malformed"),
    (hs256({"sub": "a", "exp": int(time.time()) - 60}), "has expired"),
    (hs256({"sub": "a"}, secret="another-secret-of-32-bytes-or-more!"), "signature is not valid"),
    (hs256({"roles": ["admin"]}), "sub"),
])
def test_refused_tokens_say_why(verifier: TokenVerifier, header: str | None,
                                reason: str) -> None:
    with pytest.raises(Unauthenticated, match=reason):
        verifier.verify(header)


def test_unsigned_and_unexpected_algorithms_are_refused(verifier: TokenVerifier) -> None:
    unsigned = jwt.encode({"sub": "mallory", "roles": "admin",
                           "exp": int(time.time()) + 60}, None, "none")
    with pytest.raises(Unauthenticated, match="'none' are not accepted"):
        verifier.verify(f"Bearer {unsigned}")
    hs512 = jwt.encode({"sub": "m", "exp": int(time.time()) + 60}, SECRET, "HS512")
    with pytest.raises(Unauthenticated, match="'HS512' are not accepted"):
        verifier.verify(f"Bearer {hs512}")


def test_issuer_and_audience_are_checked_when_configured(tmp_path: Path) -> None:
    strict = TokenVerifier(AuthSettings(enabled=True, hs256_secret=SECRET,
                                        issuer="https://idp", audience="saga"), tmp_path)
    good = hs256({"sub": "a", "roles": "reader", "iss": "https://idp", "aud": "saga"})
    assert strict.verify(good).subject == "a"
    with pytest.raises(Unauthenticated, match="not valid"):
        strict.verify(hs256({"sub": "a", "iss": "https://other", "aud": "saga"}))


def test_roles_are_ordered_and_a_token_without_one_can_do_nothing(
        verifier: TokenVerifier) -> None:
    assert highest_role(["reader", "admin"]) is Role.ADMIN
    assert highest_role("superuser") is Role.NONE and highest_role(42) is Role.NONE
    nobody = verifier.verify(hs256({"sub": "bob", "roles": ["guest"]}))
    with pytest.raises(Forbidden, match="needs the reader role; bob has none"):
        nobody.require(Role.READER, "GET /api/v1/saga/sagas")
    reader = verifier.verify(hs256({"sub": "carol", "roles": "reader"}))
    reader.require(Role.READER, "reading")
    with pytest.raises(Forbidden, match="needs the operator role"):
        reader.require(Role.OPERATOR, "POST /api/v1/saga/sagas/{saga_id}/execute")


def test_auth_on_without_any_key_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"neither auth\.hs256_secret nor auth\.jwks_file"):
        TokenVerifier(AuthSettings(enabled=True), tmp_path)
