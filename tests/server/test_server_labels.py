"""binsight.server.labels: the label that counts per image, and the labelled-set export (both backends)."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path

import pytest
from label_helpers import add_image, add_label
from sqlalchemy.orm import Session, sessionmaker

from binsight.errors import DataError
from binsight.server.bins_import import BinRow, import_bins
from binsight.server.db.models import ModelRecord
from binsight.server.labels import counted_labels, export_folder, export_zip

T = 1_764_000_000_000  # 2025-11-24T16:00:00Z


def _seed(s: Session) -> dict[str, int]:
    """One image per case, named by what happened to it."""
    import_bins(s, [BinRow("A", 52.0, 4.0, 500, site="west")])
    ids = {name: add_image(s, "A" if i % 2 == 0 else "B", T + i, seq=i) for i, name in enumerate(CASES)}
    add_label(s, ids["corrected"], T + 10, fill=0.2)
    add_label(s, ids["corrected"], T + 20, fill=0.8)
    add_label(s, ids["same_ms"], T + 10, fill=0.3)
    add_label(s, ids["same_ms"], T + 10, fill=0.6)  # same millisecond: the later row counts
    add_label(s, ids["skipped_after"], T + 10, fill=0.4)
    add_label(s, ids["skipped_after"], T + 20, skipped=True, who="bob")
    add_label(s, ids["skipped_only"], T + 10, skipped=True)
    add_label(s, ids["made_unusable"], T + 10, fill=0.5)
    add_label(s, ids["made_unusable"], T + 20, unusable=True)
    add_label(s, ids["usable_again"], T + 10, unusable=True)
    add_label(s, ids["usable_again"], T + 20, fill=0.9)
    add_label(s, ids["class_label"], T + 10, label="overflowing")
    return ids


CASES = (
    "corrected",
    "same_ms",
    "skipped_after",
    "skipped_only",
    "made_unusable",
    "usable_again",
    "class_label",
    "unlabelled",
)


def test_the_latest_non_skip_label_counts(sessions: sessionmaker[Session]) -> None:
    """Superseded labels, skips and unusable images, as every reader of labels sees them."""
    with sessions() as s, s.begin():
        ids = _seed(s)
    with sessions() as s:
        counted = {c.image_id: c for c in counted_labels(s)}
        fills = {c.image_id: c.fill for c in counted_labels(s, kind="fill")}
        classes = {c.image_id: c.label for c in counted_labels(s, kind="label")}
        only_b = {c.image_id for c in counted_labels(s, bins=["B"])}
    assert sorted(counted) == sorted(
        ids[n] for n in ("corrected", "same_ms", "skipped_after", "usable_again", "class_label")
    )
    assert fills == {
        ids["corrected"]: 0.8,
        ids["same_ms"]: 0.6,
        ids["skipped_after"]: 0.4,
        ids["usable_again"]: 0.9,
    }
    assert classes == {ids["class_label"]: "overflowing"}
    assert only_b == {i for i, c in counted.items() if c.bin_id == "B"} and only_b
    assert {c.bin_id: c.site for c in counted.values()} == {"A": "west", "B": None}
    assert counted[ids["corrected"]].ts == T + CASES.index("corrected")


def test_export_zip_holds_the_counted_labels(sessions: sessionmaker[Session]) -> None:
    """labels.csv (one row per counted fill label) and each row's JPEG under images/<bin>/<id>.jpg."""
    with sessions() as s, s.begin():
        ids = _seed(s)
    with sessions() as s:
        z = zipfile.ZipFile(io.BytesIO(export_zip(s, "fill")))
    rows = list(csv.DictReader(io.StringIO(z.read("labels.csv").decode())))
    assert list(rows[0]) == ["image", "fill", "bin_id", "captured_at"]
    assert {r["image"]: float(r["fill"]) for r in rows} == {
        f"images/{'A' if CASES.index(n) % 2 == 0 else 'B'}/{ids[n]}.jpg": fill
        for n, fill in (("corrected", 0.8), ("same_ms", 0.6), ("skipped_after", 0.4), ("usable_again", 0.9))
    }
    assert sorted(z.namelist()) == sorted([*(r["image"] for r in rows), "labels.csv"])
    assert rows[0]["captured_at"] == "2025-11-24T16:00:00Z"


def test_export_folder_names_the_active_model_and_sites(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """export-labels' folder: the zip's layout plus server.json and a copy of the active model."""
    models = tmp_path / "models"
    models.mkdir()
    (models / "v7.onnx").write_bytes(b"onnx bytes")
    with sessions() as s, s.begin():
        _seed(s)
        s.add(ModelRecord(version="v7", created_at=T, path="v7.onnx", sha256="ab" * 32, size=10, active=True))
    out = tmp_path / "export"
    with sessions() as s:
        context = export_folder(s, out, models)
    assert context == json.loads((out / "server.json").read_text())
    assert context["active"] == {"version": "v7", "file": "active-v7.onnx", "sha256": "ab" * 32}
    assert (out / "active-v7.onnx").read_bytes() == b"onnx bytes"
    # Four fill labels and the class label: with any class label the folder holds both kinds.
    assert context["sites"] == {"A": "west"} and context["labels"] == 5
    rows = list(csv.DictReader((out / "labels.csv").open()))
    assert len(rows) == 5 and all((out / r["image"]).is_file() for r in rows)
    assert sorted(r["label"] for r in rows) == ["", "", "", "", "overflowing"]

    # Again into the same folder, with no active model: the earlier export's parts are replaced.
    (out / "images" / "A" / "stale.jpg").write_bytes(b"old")
    with sessions() as s, s.begin():
        s.get_one(ModelRecord, "v7").active = False
    with sessions() as s:
        assert export_folder(s, out, models)["active"] is None
    assert not (out / "active-v7.onnx").exists() and not (out / "images" / "A" / "stale.jpg").exists()


def test_export_folder_refuses_a_folder_it_did_not_write(
    sessions: sessionmaker[Session], tmp_path: Path
) -> None:
    """A non-empty folder without labels.csv is someone else's: nothing is written or deleted there."""
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    (theirs / "notes.txt").write_text("mine")
    with sessions() as s, pytest.raises(DataError, match="neither empty nor an earlier export"):
        export_folder(s, theirs, tmp_path)
    assert [p.name for p in theirs.iterdir()] == ["notes.txt"]


def test_export_folder_names_a_missing_model_file(sessions: sessionmaker[Session], tmp_path: Path) -> None:
    """An active model whose file is gone is an error naming the file, not a folder without it."""
    with sessions() as s, s.begin():
        s.add(ModelRecord(version="v8", created_at=T, path="v8.onnx", sha256="0" * 64, size=1, active=True))
    with sessions() as s, pytest.raises(DataError, match=r"v8's file .*v8\.onnx does not exist"):
        export_folder(s, tmp_path / "out", tmp_path / "models")
    assert not (tmp_path / "out").exists()  # checked before anything is written
