"""Retraining-loop fixtures: signing keys, synthetic lid frames, a live server with real agents."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from retrain_support import Stack, start_stack

from binsight.signing import format_public_key, generate_key


@pytest.fixture(scope="session")
def signing_key(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """An Ed25519 key file for the server and the one-line public key for devices."""
    key = generate_key()
    path = tmp_path_factory.mktemp("keys") / "release.key"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return path, format_public_key(key.public_key())


@pytest.fixture
def make_stack(
    mosquitto: Any, tmp_path: Path, signing_key: tuple[Path, str]
) -> Iterator[Callable[..., Stack]]:
    """``make_stack(canary_bins=[...], **rollout)``: a started ServerRuntime, admin and labeller tokens."""
    stacks: list[Stack] = []

    def make(**rollout: Any) -> Stack:
        stack = start_stack(mosquitto.port, tmp_path, signing_key, **rollout)
        stacks.append(stack)
        return stack

    yield make
    for stack in stacks:
        stack.stop()


@pytest.fixture(scope="session")
def feature_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("feature-cache")


@pytest.fixture(scope="session")
def lite0() -> Any:
    """The real EfficientNet-Lite0 backbone, loaded once."""
    pytest.importorskip("torch")
    from binsight.training.backbone import load_backbone

    return load_backbone("efficientnet_lite0")
