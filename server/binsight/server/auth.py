"""Bearer tokens with roles. Only a token's sha256 is stored; the token is shown once, at creation.

Roles: ``admin`` (everything), ``operator`` (dispatching), ``labeller`` (the labelling queue) and
``driver``: read-only but for its own stop reports, it sees the published manifests and nothing else,
and its token names its truck so that signing in opens that truck's manifest.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from binsight.server.db.engine import now_ms
from binsight.server.db.models import ApiToken

__all__ = [
    "PRINCIPAL_SCOPE_KEY",
    "ROLES",
    "Principal",
    "Role",
    "bearer_token",
    "create_token",
    "hash_token",
    "principal_for_token",
    "require",
    "revoke_token",
    "role_refusal",
    "token_rows",
]

Role = Literal["operator", "labeller", "admin", "driver"]
ROLES: tuple[Role, ...] = ("operator", "labeller", "admin", "driver")
_PREFIX = "bst_"

_bearer = HTTPBearer(auto_error=False, description="`binsight server token create --role ROLE`")


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(session: Session, role: str, name: str | None = None, truck: str | None = None) -> str:
    """Store a new token's hash and return the token (the only time it exists in clear).

    A ``driver`` token needs ``truck``: the manifest its holder opens; other roles take none.
    """
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    if role == "driver" and not truck:
        raise ValueError("a driver token needs its truck (--truck TRUCK_ID)")
    if role != "driver" and truck:
        raise ValueError(f"only driver tokens name a truck, not {role} tokens")
    token = _PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(
            name=name or (f"driver-{truck}" if truck else f"{role}-token"),
            role=role,
            token_hash=hash_token(token),
            created_at=now_ms(),
            truck=truck,
        )
    )
    return token


def token_rows(session: Session, *, include_revoked: bool = False) -> list[ApiToken]:
    """The tokens, oldest first (never a token itself: only names, roles and times are stored)."""
    query = select(ApiToken).order_by(ApiToken.id)
    if not include_revoked:
        query = query.where(ApiToken.revoked_at.is_(None))
    return list(session.execute(query).scalars())


def revoke_token(session: Session, token_id: int) -> ApiToken:
    """Revoke token ``token_id`` from now on; revoking it again keeps the first time.

    Raises ``LookupError`` for an unknown id.
    """
    tok = session.get(ApiToken, token_id)
    if tok is None:
        raise LookupError(f"no token with id {token_id}")
    if tok.revoked_at is None:
        tok.revoked_at = now_ms()
    return tok


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: Role
    #: A driver's truck (from its token); None for other roles.
    truck: str | None = None


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(status.HTTP_401_UNAUTHORIZED, detail, headers={"WWW-Authenticate": "Bearer"})


#: Where :class:`~binsight.server.http_limits.BodyLimitMiddleware` leaves the caller it authenticated
#: before reading a body, so that :func:`authenticate` does not look the token up a second time.
PRINCIPAL_SCOPE_KEY = "binsight.principal"


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header value, or None for any other value."""
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def principal_for_token(sessions: sessionmaker[Session], token: str) -> Principal | None:
    """The holder of ``token``, or None when it is unknown or revoked (``last_used_at``: once a minute)."""
    digest = hash_token(token)
    with sessions() as session, session.begin():
        tok = session.execute(
            select(ApiToken).where(ApiToken.token_hash == digest, ApiToken.revoked_at.is_(None))
        ).scalar_one_or_none()
        if tok is None:
            return None
        now = now_ms()
        if tok.last_used_at is None or now - tok.last_used_at > 60_000:
            session.execute(update(ApiToken).where(ApiToken.id == tok.id).values(last_used_at=now))
        role = tok.role
        name = tok.name
        truck = tok.truck
    assert role in ROLES
    return Principal(name=name, role=role, truck=truck)


def authenticate(
    request: Request, creds: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> Principal:
    """The caller, from ``Authorization: Bearer <token>``; 401 when missing, unknown or revoked."""
    known = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if isinstance(known, Principal):
        return known
    if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials:
        raise _unauthorized("missing bearer token")
    principal = principal_for_token(request.app.state.binsight.sessions, creds.credentials)
    if principal is None:
        raise _unauthorized("unknown or revoked token")
    return principal


def role_refusal(principal: Principal, roles: Iterable[Role]) -> str | None:
    """Why ``principal`` may not do what ``roles`` (and admin) may, or None when it may."""
    allowed = {*roles, "admin"}
    if principal.role in allowed:
        return None
    return f"role {principal.role!r} may not do this (needs {' or '.join(sorted(allowed))})"


def require(*roles: Role) -> Callable[[Principal], Principal]:
    """A dependency admitting ``roles`` (admin is always admitted); 403 for other roles."""

    def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        refusal = role_refusal(principal, roles)
        if refusal is not None:
            raise HTTPException(status.HTTP_403_FORBIDDEN, refusal)
        return principal

    return check
