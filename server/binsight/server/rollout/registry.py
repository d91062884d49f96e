"""Registering candidate model files: metadata read from the ONNX file itself, copied into the models folder.

The server extra has neither ``onnx`` nor ``onnxruntime``: :func:`binsight.modelfile.read_model_info`
reads and checks the file's ``metadata_props`` straight from its protobuf bytes, the same reader
and the same checks as the device's.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from binsight.modelfile import MODEL_VERSION, ModelFileError, file_sha256, read_model_info
from binsight.server.db.engine import now_ms
from binsight.server.db.models import ModelRecord
from binsight.server.rollout.errors import RolloutError

__all__ = ["VERSION_PATTERN", "register_model"]

logger = logging.getLogger(__name__)

VERSION_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,128}$")


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
    try:
        info = read_model_info(upload)
    except ModelFileError as exc:  # named by its file name: an upload's full path is the server's business
        raise RolloutError(f"{upload.name}: {exc.problem}", 422) from exc
    version = info.model_version
    if not VERSION_PATTERN.match(version):
        raise RolloutError(
            f"model version {version!r} ({MODEL_VERSION}) has characters outside [A-Za-z0-9._-]", 422
        )
    with sessions() as s:
        if s.get(ModelRecord, version) is not None:
            raise RolloutError(f"model {version} is already registered", 409)
    models_dir.mkdir(parents=True, exist_ok=True)
    dest = models_dir / f"{version}.onnx"
    if dest.exists():
        # Named by its file name only: the server's folders are not the uploader's business.
        raise RolloutError(
            f"a file {dest.name} is in the models folder but not registered: refusing to overwrite it", 409
        )
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
        precision=info.precision,
        metrics=dict(info.metrics) if info.metrics is not None else None,
        report=report,
        active=False,
        dataset_fingerprint=(info.dataset_fingerprint or "")[:64] or None,
    )
    with sessions() as s, s.begin():
        s.add(record)
    logger.info("model %s registered (%d bytes, sha256 %s)", version, size, sha[:12])
    return record
