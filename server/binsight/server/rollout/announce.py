"""Signed, retained model announcements on ``<root>/<bin_id>/model`` (docs/contracts.md, "Model releases")."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from binsight.protocol import ModelRelease, Topics
from binsight.secrets import read_secret
from binsight.server.rollout.errors import RolloutError
from binsight.signing import make_release

if TYPE_CHECKING:
    from binsight.server.config import RolloutConfig
    from binsight.server.db.models import ModelRecord

__all__ = ["Publisher", "load_signing_key", "release_for"]

logger = logging.getLogger(__name__)


class Publisher(Protocol):
    """Where retained announcements go: the server's :class:`~binsight.server.broker.BrokerConnection`.

    ``publish_retained`` raises :class:`RolloutError` (503) when the broker cannot take it.
    """

    def publish_retained(self, topic: str, payload: bytes) -> None: ...


def load_signing_key(cfg: RolloutConfig) -> Ed25519PrivateKey:
    """The release signing key: secret ``model_signing_key`` or ``[rollout] signing_key``.

    Raises
    ------
    RolloutError
        (503) none configured, unreadable, or not an unencrypted Ed25519 PEM key.
    """
    try:
        text = read_secret("model_signing_key", cfg.signing_key)
    except Exception as exc:  # ConfigError naming the file
        raise RolloutError(str(exc), 503) from exc
    if text is None:
        raise RolloutError(
            "no model signing key: set [rollout] signing_key (binsight model keygen) or "
            "BINSIGHT_MODEL_SIGNING_KEY(_FILE)",
            503,
        )
    try:
        key = serialization.load_pem_private_key(text.encode(), password=None)
    except (ValueError, TypeError) as exc:
        raise RolloutError(
            f"the model signing key is not an unencrypted PEM private key: {exc}", 503
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise RolloutError(f"the model signing key is {type(key).__name__}, expected Ed25519", 503)
    return key


def model_file(record: ModelRecord, models_dir: Path) -> Path:
    path = Path(record.path)
    return path if path.is_absolute() else models_dir / path


def release_for(
    record: ModelRecord, models_dir: Path, key: Ed25519PrivateKey, number: int, issued_at: int
) -> ModelRelease:
    """Sign release ``number`` of ``record``; its URL is the server's ``/models/<version>.onnx`` (relative).

    ``number`` and ``issued_at`` come from the release's row in ``model_releases``
    (:class:`~binsight.server.db.models.ReleaseRecord`): re-signing the same row gives the same
    release, so bins that appear later get exactly what the others got.

    Raises
    ------
    RolloutError
        (410) the file is gone or no longer matches the sha256 it was registered with.
    """
    path = model_file(record, models_dir)
    if not path.is_file():
        raise RolloutError(f"model {record.version} is registered but its file {path} is gone", 410)
    release = make_release(path, key, record.version, release_number=number, issued_at=issued_at)
    if release.sha256 != record.sha256 or release.size != record.size:
        raise RolloutError(f"model file {path} changed since {record.version} was registered", 410)
    return release


def announce(publisher: Publisher, topics: Topics, bins: list[str], release: ModelRelease | None) -> None:
    """Retain ``release`` on each bin's model topic (None clears it)."""
    payload = release.model_dump_json().encode() if release is not None else b""
    for bin_id in bins:
        publisher.publish_retained(topics.model(bin_id), payload)
    what = f"{release.version} (release {release.release_number})" if release else "(cleared)"
    logger.info("model %s announced to %d bins", what, len(bins))
