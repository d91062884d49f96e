"""Small builders shared by the server tests (imported via the path conftest.py adds)."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from binsight.protocol import Topics
from binsight.server.ingest.messages import Item, parse

T = Topics("binsight")


def now_ms() -> int:
    return int(time.time() * 1000)


def reading(
    bin_id: str, seq: int, fill: float | None = 0.5, ts: int | None = None, **kw: Any
) -> dict[str, Any]:
    return {
        "bin_id": bin_id,
        "seq": seq,
        "ts": ts if ts is not None else now_ms(),
        "fill": fill,
        "quality": "ok" if fill is not None else "dark",
        "model": kw.pop("model", "m1"),
        **kw,
    }


def stats(bin_id: str, **kw: Any) -> dict[str, Any]:
    return {
        "bin_id": bin_id,
        "ts": now_ms(),
        "uptime_s": 100.0,
        "outbox_depth": 3,
        "dropped": 0,
        "model": "m1",
        "interval_s": 600.0,
        **kw,
    }


JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(range(256)) * 4


def image(bin_id: str, seq: int, reason: str = "unsure", jpeg: bytes = JPEG, **kw: Any) -> dict[str, Any]:
    return {
        "bin_id": bin_id,
        "seq": seq,
        "ts": kw.pop("ts", now_ms()),
        "reason": reason,
        "fill": kw.pop("fill", 0.4),
        "model": "m1",
        "jpeg_b64": base64.b64encode(jpeg).decode(),
    }


def item(kind: str, bin_id: str, payload: dict[str, Any] | str) -> Item:
    body = payload if isinstance(payload, str) else json.dumps(payload)
    return parse(T, f"binsight/{bin_id}/{kind}", body.encode(), now_ms(), 86_400_000)


class Api:
    """A TestClient plus one token per role."""

    def __init__(self, client: TestClient, tokens: dict[str, str]) -> None:
        self.client = client
        self.tokens = tokens

    def h(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def get(self, path: str, role: str = "admin", **kw: Any) -> Any:
        return self.client.get(path, headers=self.h(role), **kw)

    def post(self, path: str, role: str = "admin", **kw: Any) -> Any:
        return self.client.post(path, headers=self.h(role), **kw)

    @property
    def sessions(self) -> sessionmaker[Session]:
        s: sessionmaker[Session] = self.client.app.state.binsight.sessions  # type: ignore[attr-defined]
        return s
