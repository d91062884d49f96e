"""Registering model files: metadata read without onnx, copies into the models folder, bad files refused."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from retrain_support import tiny_model

from binsight.server.db.engine import make_engine, make_sessionmaker
from binsight.server.db.migrate import upgrade
from binsight.server.db.models import ModelRecord
from binsight.server.rollout.errors import RolloutError
from binsight.server.rollout.registry import read_metadata, register_model


def test_metadata_matches_onnx(tmp_path: Path) -> None:
    """The protobuf reader returns exactly what onnx's own parser sees."""
    path = tiny_model(tmp_path / "m.onnx", "v7", a=1.0, b=0.0)
    expected = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert read_metadata(path) == expected and expected["binsight.model_version"] == "v7"


def test_register_copies_and_refuses_duplicates_and_junk(tmp_path: Path) -> None:
    """A model lands as models/<version>.onnx with its hash; a repeated version and non-ONNX are refused."""
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    upgrade(engine)
    sessions = make_sessionmaker(engine)
    models = tmp_path / "models"
    src = tiny_model(tmp_path / "m.onnx", "v7", a=1.0, b=0.0)
    rec = register_model(sessions, models, src, {"comparison": None})
    assert rec.version == "v7" and (models / "v7.onnx").read_bytes() == src.read_bytes()
    with sessions() as s:
        stored = s.get(ModelRecord, "v7")
        assert stored is not None and stored.report == {"comparison": None} and not stored.active
    with pytest.raises(RolloutError, match="already registered") as exc:
        register_model(sessions, models, src, None)
    assert exc.value.status == 409
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\xff" * 64)
    with pytest.raises(RolloutError) as exc:
        register_model(sessions, models, junk, None)
    assert exc.value.status == 422
    engine.dispose()
