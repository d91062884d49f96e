"""`binsight server export-labels` -> `binsight train fit --from-server DIR`: training reads the
server's labelled set as a folder, never its database."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import pytest
from label_helpers import add_image, add_label
from retrain_support import tiny_model

from binsight.cli import main
from binsight.errors import DataError
from binsight.server.bins_import import BinRow, import_bins
from binsight.server.db.engine import make_engine, make_sessionmaker
from binsight.server.db.migrate import upgrade
from binsight.server.db.models import ModelRecord
from binsight.training.synth import render_frame

T = 1_764_000_000_000
BINS = {"bin-a": "north", "bin-b": "north", "bin-c": "south"}
PER_BIN = 8


def _binsight(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    """``binsight ARGS`` in this process: its exit status and stderr."""
    code = main(list(args))
    return code, capsys.readouterr().err


def _server(tmp_path: Path) -> Path:
    """A server.toml over a SQLite database holding labelled frames of three bins and an active model."""
    conf = tmp_path / "server.toml"
    conf.write_text('database = "sqlite:///server.db"\n[models]\ndir = "models"\n')
    (tmp_path / "models").mkdir()
    tiny_model(tmp_path / "models" / "v1-factory.onnx", "v1-factory", a=0.0, b=0.05)
    engine = make_engine(f"sqlite:///{tmp_path / 'server.db'}")
    upgrade(engine)
    with make_sessionmaker(engine)() as s, s.begin():
        import_bins(s, [BinRow(b, 52.0, 4.0, 660, site=site) for b, site in BINS.items()])
        for k, bin_id in enumerate(BINS):
            for i in range(PER_BIN):
                fill = round((i + 0.5) / PER_BIN, 3)
                ok, jpeg = cv2.imencode(".jpg", render_frame(k, fill, seed=3, frame=i))
                assert ok
                image_id = add_image(s, bin_id, T + i, seq=i, jpeg=jpeg.tobytes())
                add_label(s, image_id, T + 100, fill=1.0 - fill)  # a slip, corrected below
                add_label(s, image_id, T + 200, fill=fill)
        s.add(
            ModelRecord(
                version="v1-factory",
                created_at=T,
                path="v1-factory.onnx",
                sha256="0" * 64,
                size=1,
                active=True,
            )
        )
    engine.dispose()
    return conf


def test_export_labels_writes_what_train_fit_reads(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The folder: labels.csv (the corrected fills), images/, server.json, the active model's file."""
    conf = _server(tmp_path)
    out = tmp_path / "export"
    code, err = _binsight(capsys, "server", "export-labels", "--config", str(conf), "--out", str(out))
    assert code == 0, err
    assert f"exported {len(BINS) * PER_BIN} labelled images" in err and "v1-factory" in err
    context = json.loads((out / "server.json").read_text())
    assert context["sites"] == BINS and context["active"]["version"] == "v1-factory"
    from binsight.training.data import load_dataset
    from binsight.training.from_server import read_export_context

    active, sites = read_export_context(out)
    assert active == out / "active-v1-factory.onnx" and sites == BINS
    ds = load_dataset(out)
    assert len(ds.samples) == len(BINS) * PER_BIN
    assert sorted(s.fill for s in ds.samples if s.bin_id == "bin-a") == sorted(
        round((i + 0.5) / PER_BIN, 3) for i in range(PER_BIN)
    )


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (["--from-server", "sqlite:////var/lib/binsight/binsight.db"], "sqlite:////var/lib"),
        (["--from-server", "postgresql://binsight@db/binsight"], "postgresql://"),
        (["--from-server", "folder", "--models-dir", "models"], "--models-dir went with the database mode"),
    ],
)
def test_train_fit_refuses_the_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], hint: str
) -> None:
    """A database URL (or the old --models-dir) is one line naming the command to run instead."""
    code, err = _binsight(capsys, "train", "fit", *args, "--out", str(tmp_path / "m.onnx"))
    assert code == 1 and hint in err
    assert "binsight server export-labels --config server.toml --out DIR" in err
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.torch
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_fit_from_an_exported_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], lite0: Any, feature_cache: Path
) -> None:
    """train fit --from-server DIR compares the candidate with the folder's active model, per site."""
    from binsight.training.from_server import fit_from_server

    out = tmp_path / "export"
    code, err = _binsight(
        capsys, "server", "export-labels", "--config", str(_server(tmp_path)), "--out", str(out)
    )
    assert code == 0, err
    report = fit_from_server(
        str(out),
        tmp_path / "candidate.onnx",
        backbone=lite0,
        cache_dir=feature_cache,
        progress=False,
        report_path=tmp_path / "report.json",
    )
    comp = report["comparison"]
    written = json.loads((tmp_path / "report.json").read_text())
    assert written["comparison"] == comp and (tmp_path / "report.png").stat().st_size > 1000, "the PNG too"
    for side in (comp["candidate"], comp["active"]):
        for site in side["per_site"].values():
            assert (site["r2"] is None) == (site["n"] < 5), site
    assert report["source"] == {"from": str(out), "labels": len(BINS) * PER_BIN}
    assert comp["active"]["version"] == "v1-factory"
    held = {BINS[b] for b in comp["test_bins"]}
    assert set(comp["candidate"]["per_site"]) == set(comp["active"]["per_site"]) == held
    assert comp["candidate"]["mae"] < comp["active"]["mae"]


@pytest.mark.parametrize(
    ("server_json", "message"),
    [
        ("[1, 2]", "not an export-labels server.json"),
        ('{"active": {"version": "v1"}, "sites": {}}', "not an export-labels server.json"),
        ('{"active": {"file": "../elsewhere.onnx"}, "sites": {}}', "must be a name in"),
        ('{"active": {"file": "active-v9.onnx"}, "sites": {}}', "active-v9.onnx, which is not in"),
    ],
)
def test_a_broken_server_json_is_named(tmp_path: Path, server_json: str, message: str) -> None:
    """A server.json training cannot follow is an error naming the file, before any fitting."""
    from binsight.training.from_server import read_export_context

    (tmp_path / "server.json").write_text(server_json)
    with pytest.raises(DataError, match=message):
        read_export_context(tmp_path)
