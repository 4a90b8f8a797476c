"""Roles: who is calling, and what they may do.

The roles are ordered: reader < approver < operator < admin; each may do what the ones below it
may (an approver reads and completes callbacks), an admin everything. Tokens are checked by
chalicelib/http/tokens.py, which the routes load only when a token is to be verified.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from chalicelib.domain.errors import ErrorKind, SagaError


class Role(enum.IntEnum):
    NONE = 0  # a valid token that grants no role of this service
    READER = 1  # reads
    APPROVER = 2  # reads, and completes waiting steps (callbacks: approvals, webhooks)
    OPERATOR = 3  # execute, compensate, retry and resolve
    ADMIN = 4  # definitions, cleanup


class Unauthenticated(SagaError):
    kind = ErrorKind.UNAUTHENTICATED


class Forbidden(SagaError):
    kind = ErrorKind.FORBIDDEN


class TokenRejected(Exception):
    """Raised by the authorizer. API Gateway answers 401 when an authorizer fails with exactly
    "Unauthorized"; the reason is kept for the log (and for the local gateway's answer)."""

    def __init__(self, reason: str) -> None:
        super().__init__("Unauthorized")
        self.reason = reason


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role

    def require(self, needed: Role, action: str) -> None:
        if self.role < needed:
            raise Forbidden(f"{action} needs the {needed.name.lower()} role; "
                            f"{self.subject} has {self.role.name.lower()}",
                            needed=needed.name.lower(), role=self.role.name.lower())


ANONYMOUS_ADMIN = Principal("anonymous", Role.ADMIN)  # auth off: local development
MISSING_TOKEN = "a bearer token is required: Authorization: Bearer <jwt>"
_ROLE_NAMES = {role.name.lower(): role for role in Role if role is not Role.NONE}


def role_named(name: Any) -> Role:
    return _ROLE_NAMES.get(name, Role.NONE) if isinstance(name, str) else Role.NONE


def highest_role(claim: Any) -> Role:
    names = [claim] if isinstance(claim, str) else claim if isinstance(claim, list) else []
    roles = [_ROLE_NAMES[name] for name in names if isinstance(name, str) and name in _ROLE_NAMES]
    return max(roles, default=Role.NONE)
