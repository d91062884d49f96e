"""Registering model files: metadata read without onnx, copies into the models folder, bad files refused."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest
from retrain_support import tiny_model
from sqlalchemy.orm import Session, sessionmaker

from binsight.server.db.engine import make_engine, make_sessionmaker
from binsight.server.db.migrate import upgrade
from binsight.server.db.models import ModelRecord
from binsight.server.rollout.errors import RolloutError
from binsight.server.rollout.registry import register_model


def _sessions(tmp_path: Path) -> sessionmaker[Session]:
    engine = make_engine(f"sqlite:///{tmp_path / 'r.db'}")
    upgrade(engine)
    return make_sessionmaker(engine)


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


def _with_props(src: Path, dest: Path, **props: str | None) -> Path:
    """A copy of ``src`` with some metadata changed (None: removed)."""
    model = onnx.load(str(src))
    meta = {p.key: p.value for p in model.metadata_props} | {f"binsight.{k}": v for k, v in props.items()}
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, {k: v for k, v in meta.items() if v is not None})
    onnx.save(model, str(dest))
    return dest


@pytest.mark.parametrize(
    ("props", "needle"),
    [
        ({"model_version": None}, "metadata has no binsight.model_version"),
        ({"model_version": "v 7"}, "outside"),
        ({"task": None}, "metadata has no binsight.task"),
        ({"input_size": None}, "metadata has no binsight.input_size"),
        ({"metrics": "{oops"}, "binsight.metrics"),
    ],
)
def test_metadata_that_breaks_the_contract_is_refused(
    tmp_path: Path, props: dict[str, str | None], needle: str
) -> None:
    """The file's name and the key at fault, status 422; nothing lands in the models folder."""
    src = _with_props(tiny_model(tmp_path / "m.onnx", "v7", a=1.0, b=0.0), tmp_path / "bad.onnx", **props)
    models = tmp_path / "models"
    with pytest.raises(RolloutError, match=needle) as exc:
        register_model(_sessions(tmp_path), models, src, None)
    assert exc.value.status == 422 and (needle == "outside" or str(exc.value).startswith("bad.onnx: "))
    assert not models.exists()


def test_precision_and_metrics_come_from_the_metadata(tmp_path: Path) -> None:
    """The record carries the file's precision and held-out metrics."""
    src = _with_props(
        tiny_model(tmp_path / "m.onnx", "v8", a=1.0, b=0.0), tmp_path / "q.onnx", precision="int8",
        metrics='{"mae": 0.04}',
    )  # fmt: skip
    rec = register_model(_sessions(tmp_path), tmp_path / "models", src, None)
    assert (rec.precision, rec.metrics) == ("int8", {"mae": 0.04})
