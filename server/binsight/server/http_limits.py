"""Request bodies: a size limit per route, and the caller authenticated before a body is read.

FastAPI reads a request's body (a multipart upload: spooled to disk) before it resolves the route's
dependencies, so a token check in a dependency comes too late to stop an unauthenticated client from
making the server read a large body. :class:`BodyLimitMiddleware` sits in front of the routes and
decides from the request line and headers alone, before the route reads anything:

- a request under ``/api/`` that carries a body needs a valid token (401), and on a route that takes
  a large body also the role that route needs (403);
- a declared ``Content-Length`` over the route's limit is refused with 413 at once;
- a body without a length (chunked) is counted as the route reads it and refused with 413 the moment
  it passes the limit; what the route would have answered is dropped.

Every refusal names its reason, closes the connection (the rest of the body is never read) and is
counted in :data:`HTTP_REJECTS` (``binsight_http_rejected_total`` on ``/metrics``).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from sqlalchemy.orm import Session, sessionmaker
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from binsight.server.auth import PRINCIPAL_SCOPE_KEY, Role, bearer_token, principal_for_token, role_refusal

__all__ = [
    "HTTP_REJECTS",
    "HTTP_REJECT_REASONS",
    "MAX_BODY_BYTES",
    "MAX_MODEL_UPLOAD_BYTES",
    "BodyLimitMiddleware",
    "LargeBody",
    "large_bodies",
]

#: The JSON bodies the API takes (commands, labels, plan requests, promotions) are well under 1 KiB.
MAX_BODY_BYTES = 64 * 1024
#: A model upload (multipart: the ONNX file and its training report). ``binsight train fit``'s fp32
#: EfficientNet-Lite0 is 13.5 MB; the upload is spooled to disk, never held whole in memory.
MAX_MODEL_UPLOAD_BYTES = 256 * 1024 * 1024

HttpRejectReason = Literal["unauthenticated", "forbidden", "too_large"]
HTTP_REJECT_REASONS: tuple[HttpRejectReason, ...] = ("unauthenticated", "forbidden", "too_large")


class HttpRejects:
    """Requests this process refused before (or while) reading their body, by reason."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(HTTP_REJECT_REASONS, 0)

    def count(self, reason: HttpRejectReason) -> None:
        with self._lock:
            self._counts[reason] += 1

    def snapshot(self) -> dict[HttpRejectReason, int]:
        with self._lock:
            return dict(self._counts)


HTTP_REJECTS = HttpRejects()


@dataclass(frozen=True, slots=True)
class LargeBody:
    """A route that takes more than :data:`MAX_BODY_BYTES`: its limit, and the roles (besides admin)
    that may send that much, checked before the body is read (the route still checks them too)."""

    limit: int
    roles: tuple[Role, ...] = ()


def large_bodies() -> dict[tuple[str, str], LargeBody]:
    """``(method, path)`` of the routes with their own limit: the model upload (admin only)."""
    return {("POST", "/api/models"): LargeBody(MAX_MODEL_UPLOAD_BYTES)}


class _BodyTooLarge(Exception):
    """Raised into the route when its body passes the limit; the middleware answers 413 instead."""


def _size(n: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"


def _declared_length(headers: Headers) -> int | None:
    value = headers.get("content-length")
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        return None  # uvicorn refuses a malformed length before the app sees the request


@dataclass(frozen=True, slots=True)
class _Refusal:
    """An answer given instead of the route's, counted under ``reason`` when it is sent."""

    reason: HttpRejectReason
    status: int
    detail: str
    challenge: bool = False  # a 401: say which scheme (``WWW-Authenticate: Bearer``)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        HTTP_REJECTS.count(self.reason)
        headers = {"Connection": "close"}  # the rest of the body is never read
        if self.challenge:
            headers["WWW-Authenticate"] = "Bearer"
        await JSONResponse({"detail": self.detail}, self.status, headers=headers)(scope, receive, send)


class BodyLimitMiddleware:
    """The ASGI middleware described in the module docstring; ``create_app`` installs it."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        sessions: sessionmaker[Session],
        default_limit: int | None = None,
        large: Mapping[tuple[str, str], LargeBody] | None = None,
    ) -> None:
        self.app = app
        self.sessions = sessions
        self.default_limit = MAX_BODY_BYTES if default_limit is None else default_limit
        self.large = large_bodies() if large is None else dict(large)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = _declared_length(headers)
        if declared == 0 or (declared is None and "transfer-encoding" not in headers):
            await self.app(scope, receive, send)  # no body: nothing to limit or to read early
            return
        method, path = scope["method"], scope["path"].rstrip("/") or "/"
        large = self.large.get((method, path))
        limit = large.limit if large is not None else self.default_limit
        detail = f"request body too large: {method} {path} takes at most {_size(limit)} ({limit} bytes)"
        too_large = _Refusal("too_large", 413, detail)
        refusal = await self._authorize(scope, headers, large) if path.startswith("/api/") else None
        if refusal is None and declared is not None and declared > limit:
            refusal = too_large
        if refusal is not None:
            await refusal(scope, receive, send)
        else:
            await self._counted(scope, receive, send, limit, too_large)

    async def _authorize(self, scope: Scope, headers: Headers, large: LargeBody | None) -> _Refusal | None:
        """A 401/403 for a caller who may not send this body; else None, the caller noted in scope."""
        token = bearer_token(headers.get("authorization"))
        if token is None:
            return _Refusal("unauthenticated", 401, "missing bearer token", challenge=True)
        principal = await run_in_threadpool(principal_for_token, self.sessions, token)
        if principal is None:
            return _Refusal("unauthenticated", 401, "unknown or revoked token", challenge=True)
        why = role_refusal(principal, large.roles) if large is not None else None
        if why is not None:
            return _Refusal("forbidden", 403, why)
        scope[PRINCIPAL_SCOPE_KEY] = principal
        return None

    async def _counted(
        self, scope: Scope, receive: Receive, send: Send, limit: int, refusal: _Refusal
    ) -> None:
        """Run the route, counting the body it reads; past ``limit``, answer ``refusal`` instead."""
        seen = 0
        over = False
        started = False

        async def counting_receive() -> Message:
            nonlocal seen, over
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    over = True
                    raise _BodyTooLarge
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if over:
                return  # the route's answer to a body it could not finish: the 413 replaces it
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not over:
                raise
        if over and not started:
            await refusal(scope, receive, send)
