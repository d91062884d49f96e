"""The on-disk feature cache: one ``.npy`` per image, keyed by image content and feature settings.

``<cache>/<namespace>/<sha[:2]>/<sha>.npy`` where ``namespace`` is a hash of everything that
changes the vector (backbone, its weights file, input size, normalisation, taps, poolings,
extractor version) and ``sha`` the sha256 of the image file's bytes. Refitting after ten new
labels therefore extracts ten images; changing the backbone starts a new namespace.

The default location is ``~/.cache/binsight/features``; the environment variable
``BINSIGHT_CACHE_DIR`` (read here and nowhere else) or an explicit argument overrides it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["CACHE_ENV", "FeatureCache", "default_cache_dir", "settings_key"]

logger = logging.getLogger(__name__)

CACHE_ENV = "BINSIGHT_CACHE_DIR"


def default_cache_dir(explicit: str | Path | None = None) -> Path:
    """The feature cache: ``explicit``, else ``$BINSIGHT_CACHE_DIR``, else ``~/.cache/binsight/features``."""
    if explicit is not None:
        return Path(explicit)
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    return Path.home() / ".cache" / "binsight" / "features"


def settings_key(settings: Mapping[str, Any]) -> str:
    """A short stable hash of JSON-able feature settings."""
    blob = json.dumps(settings, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


class FeatureCache:
    """Vectors of one namespace. Writes are atomic (temp file + rename), so a crash leaves no half file."""

    def __init__(self, root: str | Path, settings: Mapping[str, Any]) -> None:
        self.settings = dict(settings)
        self.key = settings_key(settings)
        self.dir = Path(root) / self.key
        self.dir.mkdir(parents=True, exist_ok=True)
        meta = self.dir / "settings.json"
        if not meta.exists():
            _atomic_write(meta, json.dumps(self.settings, indent=2, sort_keys=True).encode())

    def _path(self, digest: str) -> Path:
        return self.dir / digest[:2] / f"{digest}.npy"

    def get(self, digest: str, dim: int) -> np.ndarray | None:
        """The cached vector, or None when absent or unreadable (a bad entry is extracted again)."""
        path = self._path(digest)
        try:
            vec = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            logger.warning("ignoring unreadable cache entry %s: %s", path, exc)
            return None
        if vec.shape != (dim,) or vec.dtype != np.float32:
            logger.warning("ignoring cache entry %s of shape %s", path, vec.shape)
            return None
        return np.asarray(vec)

    def put(self, digest: str, vec: np.ndarray) -> None:
        path = self._path(digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = _npy_bytes(np.ascontiguousarray(vec, dtype=np.float32))
        _atomic_write(path, buf)


def _npy_bytes(vec: np.ndarray) -> bytes:
    import io

    bio = io.BytesIO()
    np.save(bio, vec, allow_pickle=False)
    return bio.getvalue()


def _atomic_write(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
