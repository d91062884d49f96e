"""The feature cache: location, atomic entries, bad entries ignored."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from binsight.training.cache import CACHE_ENV, FeatureCache, default_cache_dir


def test_default_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Argument over BINSIGHT_CACHE_DIR over ~/.cache/binsight/features."""
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert default_cache_dir() == Path.home() / ".cache" / "binsight" / "features"
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "env"))
    assert default_cache_dir() == tmp_path / "env"
    assert default_cache_dir(tmp_path / "arg") == tmp_path / "arg"


def test_put_get_and_namespaces(tmp_path: Path) -> None:
    """Entries round-trip; other settings are another namespace; a corrupt entry reads as a miss."""
    a = FeatureCache(tmp_path, {"backbone": "x"})
    b = FeatureCache(tmp_path, {"backbone": "y"})
    vec = np.arange(4, dtype=np.float32)
    a.put("ab" * 32, vec)
    got = a.get("ab" * 32, 4)
    assert got is not None and np.array_equal(got, vec)
    assert b.get("ab" * 32, 4) is None
    assert a.get("ab" * 32, 5) is None  # wrong size: extract again
    a._path("cd" * 32).parent.mkdir(parents=True, exist_ok=True)
    a._path("cd" * 32).write_bytes(b"garbage")
    assert a.get("cd" * 32, 4) is None
    assert not list(tmp_path.rglob(".tmp-*"))
