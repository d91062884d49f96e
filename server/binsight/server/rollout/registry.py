"""Registering candidate model files: metadata read from the ONNX file itself, copied into the models folder.

The server extra has neither ``onnx`` nor ``onnxruntime``, so :func:`read_metadata` reads the
``metadata_props`` of the ONNX protobuf directly (field 14 of ``ModelProto``, entries of key=1 and
value=2); everything else in the file is skipped by length, never parsed.
"""

from __future__ import annotations

import json
import logging
import os
import re
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from binsight.server.db.engine import now_ms
from binsight.server.db.models import ModelRecord
from binsight.server.rollout.errors import RolloutError
from binsight.signing import file_sha256

__all__ = ["VERSION_PATTERN", "read_metadata", "register_model"]

logger = logging.getLogger(__name__)

VERSION_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")
_METADATA_PROPS = 14


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        if not b & 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _fields(buf: bytes) -> list[tuple[int, bytes | int]]:
    """Top-level (field number, value) pairs of one protobuf message."""
    out: list[tuple[int, bytes | int]] = []
    pos = 0
    while pos < len(buf):
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
            out.append((field, value))
        elif wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > len(buf):
                raise ValueError("truncated field")
            out.append((field, buf[pos : pos + length]))
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
    return out


def read_metadata(path: Path) -> dict[str, str]:
    """``metadata_props`` of an ONNX file as a dict.

    Raises
    ------
    RolloutError
        (422) The file is not an ONNX model.
    """
    try:
        data = path.read_bytes()
        props: dict[str, str] = {}
        for field, value in _fields(data):
            if field == _METADATA_PROPS and isinstance(value, bytes):
                entry = {f: v for f, v in _fields(value) if isinstance(v, bytes)}
                props[entry.get(1, b"").decode()] = entry.get(2, b"").decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise RolloutError(f"{path.name}: not an ONNX model file ({exc})", 422) from exc
    return props


def register_model(
    sessions: sessionmaker[Session], models_dir: Path, upload: Path, report: dict[str, Any] | None
) -> ModelRecord:
    """Copy ``upload`` into ``models_dir`` as ``<version>.onnx`` and add it to the models table.

    The version, precision and held-out metrics come from the file's metadata (docs/contracts.md);
    ``report`` is the training report (``train fit --report``), whose ``comparison`` the promotion
    gate reads.

    Raises
    ------
    RolloutError
        (422) not a binsight model file; (409) the version is already registered.
    """
    meta = read_metadata(upload)
    version = meta.get("binsight.model_version")
    if not version:
        raise RolloutError("the model file's metadata has no binsight.model_version", 422)
    if not VERSION_PATTERN.match(version):
        raise RolloutError(f"model version {version!r} has characters outside [A-Za-z0-9._-]", 422)
    if meta.get("binsight.task") not in ("regression", "classification"):
        raise RolloutError("the model file's metadata has no binsight.task (regression|classification)", 422)
    try:
        metrics = json.loads(meta.get("binsight.metrics") or "null")
    except json.JSONDecodeError as exc:
        raise RolloutError(f"binsight.metrics is not JSON: {exc}", 422) from exc
    with sessions() as s:
        if s.get(ModelRecord, version) is not None:
            raise RolloutError(f"model {version} is already registered", 409)
    models_dir.mkdir(parents=True, exist_ok=True)
    dest = models_dir / f"{version}.onnx"
    if dest.exists():
        raise RolloutError(f"{dest} exists but is not registered: refusing to overwrite it", 409)
    tmp = dest.with_name(f".{dest.name}.tmp")
    os.replace(upload, tmp) if upload.parent == models_dir else tmp.write_bytes(upload.read_bytes())
    os.replace(tmp, dest)
    sha, size = file_sha256(dest)
    record = ModelRecord(
        version=version,
        created_at=now_ms(),
        path=dest.name,
        sha256=sha,
        size=size,
        precision=meta.get("binsight.precision"),
        metrics=metrics if isinstance(metrics, dict) else None,
        report=report,
        active=False,
    )
    with sessions() as s, s.begin():
        s.add(record)
    logger.info("model %s registered (%d bytes, sha256 %s)", version, size, sha[:12])
    return record
