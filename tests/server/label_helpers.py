"""Rows for the label tests: images and labels written straight into a migrated database.

(A plain module: the server conftest puts tests/server on the path.)
"""

from __future__ import annotations

import hashlib
from typing import Any

from sqlalchemy.orm import Session

from binsight.server.db.models import Image, Label

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF" + bytes(range(256))


def add_image(s: Session, bin_id: str, ts: int, seq: int = 0, jpeg: bytes | None = None) -> int:
    """One stored labelling image (by default a stub JPEG unique per bin and seq); returns its id."""
    jpeg = jpeg if jpeg is not None else JPEG + f"{bin_id}/{seq}".encode()
    im = Image(
        bin_id=bin_id,
        seq=seq,
        ts=ts,
        received_at=ts,
        reason="periodic",
        predicted_fill=0.5,
        model="m1",
        sha256=hashlib.sha256(jpeg).hexdigest(),
        size=len(jpeg),
        jpeg=jpeg,
    )
    s.add(im)
    s.flush()
    return im.id


def add_label(s: Session, image_id: int, at: int, **kw: Any) -> None:
    """A label (``fill=``, ``label=``, ``unusable=True``) or a skip (``skipped=True``) made at ``at``."""
    s.add(Label(image_id=image_id, who=kw.pop("who", "ann"), created_at=at, **kw))
    s.flush()
