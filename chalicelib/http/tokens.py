"""Bearer tokens: JWTs signed HS256 with a configured secret or RS256 with a key from a
configured JWKS file (PyJWT checks signature, expiry, not-before, and issuer and audience when
set). Apart from the roles (chalicelib/http/auth.py) because PyJWT and the cryptography it
loads are imported only when auth is on and a token is to be checked.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt

from chalicelib.config import AuthSettings
from chalicelib.http.auth import MISSING_TOKEN, Principal, Unauthenticated, highest_role


class TokenVerifier:
    def __init__(self, settings: AuthSettings, config_dir: Path) -> None:
        self._settings = settings
        self._jwks: jwt.PyJWKSet | None = None
        if settings.jwks_file:
            path = Path(settings.jwks_file)
            path = path if path.is_absolute() else config_dir / path
            self._jwks = jwt.PyJWKSet.from_json(path.read_text())
        if not settings.hs256_secret and self._jwks is None:
            raise ValueError("auth is enabled but neither auth.hs256_secret nor "
                             "auth.jwks_file is configured")

    def verify(self, authorization: str | None) -> Principal:
        """The caller of an `Authorization: Bearer <jwt>` header, or Unauthenticated."""
        if not authorization:
            raise Unauthenticated(MISSING_TOKEN)
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthenticated("the Authorization header must be 'Bearer <jwt>'")
        claims = self._decode(token.strip())
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise Unauthenticated("the token has no subject (sub)")
        return Principal(subject[:200], highest_role(claims.get(self._settings.roles_claim)))

    def _decode(self, token: str) -> dict[str, Any]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"the token is malformed: {error}") from None
        algorithm = header.get("alg")
        if algorithm == "HS256" and self._settings.hs256_secret:
            key: Any = self._settings.hs256_secret
        elif algorithm == "RS256" and self._jwks is not None:
            key = self._rsa_key(header.get("kid"))
        else:
            raise Unauthenticated(f"tokens signed with {algorithm!r} are not accepted")
        options = {"require": ["exp", "sub"]}
        try:
            return dict(jwt.decode(
                token, key, algorithms=[algorithm], options=options,
                leeway=self._settings.leeway_seconds,
                issuer=self._settings.issuer or None,
                audience=self._settings.audience or None))
        except jwt.ExpiredSignatureError:
            raise Unauthenticated("the token has expired") from None
        except jwt.InvalidSignatureError:
            raise Unauthenticated("the token's signature is not valid") from None
        except jwt.PyJWTError as error:
            raise Unauthenticated(f"the token is not valid: {error}") from None

    def _rsa_key(self, kid: Any) -> Any:
        assert self._jwks is not None
        keys = [key for key in self._jwks.keys if kid is None or key.key_id == kid]
        if not keys:
            raise Unauthenticated(f"no key {kid!r} in the configured JWKS")
        return keys[0].key
