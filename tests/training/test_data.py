"""Labelled sets: both layouts, and every bad row named by file and row."""

from __future__ import annotations

from pathlib import Path

import pytest
from training_support import copy_set, read_rows, write_rows

from binsight.errors import DataError
from binsight.training.data import load_dataset


def test_labels_csv_layout(synth_dir: Path) -> None:
    """labels.csv with fill and bin_id is a regression set with bins."""
    ds = load_dataset(synth_dir)
    assert ds.task == "regression" and ds.layout == "labels.csv"
    assert len(ds) == 48 and ds.has_bins
    assert len(set(ds.groups())) == 6


def test_folder_layout(class_dir: Path) -> None:
    """One sub-folder per class is a classification set, classes sorted."""
    ds = load_dataset(class_dir)
    assert ds.task == "classification" and ds.layout == "folders"
    assert ds.classes == ["high", "low"]
    assert not ds.has_bins


def test_fingerprint_ignores_row_order(synth_dir: Path, tmp_path: Path) -> None:
    """Same images and labels in another order: same fingerprint; another label: different."""
    data = copy_set(synth_dir, tmp_path / "d")
    rows = read_rows(data / "labels.csv")
    before = load_dataset(data).fingerprint()
    write_rows(data / "labels.csv", rows[::-1])
    assert load_dataset(data).fingerprint() == before
    rows[0]["fill"] = "0.9999"
    write_rows(data / "labels.csv", rows)
    assert load_dataset(data).fingerprint() != before


BAD_ROWS = [
    ({"image": "images/nope.jpg"}, "does not exist"),
    ({"fill": "1.5"}, "outside 0..1"),
    ({"fill": "-0.01"}, "outside 0..1"),
    ({"fill": "lots"}, "not a number"),
    ({"captured_at": "yesterday"}, "not ISO 8601"),
    ({"image": "../outside.jpg"}, "leaves the data folder"),
]


@pytest.mark.parametrize(("change", "reason"), BAD_ROWS)
def test_bad_row_is_named(synth_dir: Path, tmp_path: Path, change: dict[str, str], reason: str) -> None:
    """A bad row raises a DataError naming the file and row; --skip-bad lists it and goes on."""
    data = copy_set(synth_dir, tmp_path / "d")
    rows = read_rows(data / "labels.csv")
    rows[4].update(change)
    write_rows(data / "labels.csv", rows)
    with pytest.raises(DataError, match=rf"row 6\): .*{reason}"):
        load_dataset(data)
    ds = load_dataset(data, skip_bad=True)
    assert len(ds) == 47
    assert [(s.row, reason in s.reason) for s in ds.skipped] == [(6, True)]


def test_unknown_column(synth_dir: Path, tmp_path: Path) -> None:
    """An unknown column is an error naming it; --skip-bad ignores the column and says so."""
    data = copy_set(synth_dir, tmp_path / "d")
    rows = read_rows(data / "labels.csv")
    for r in rows:
        r["colour"] = "red"
    write_rows(data / "labels.csv", rows)
    with pytest.raises(DataError, match="unknown column 'colour'"):
        load_dataset(data)
    ds = load_dataset(data, skip_bad=True)
    assert len(ds) == 48 and "colour" in ds.skipped[0].reason


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (["image", "fill", "label"], "no usable labelled images"),  # both columns are allowed (class head)
        (["fill"], "no 'image' column"),
        (["image", "bin_id"], "needs a column 'fill'"),
    ],
)
def test_bad_header(tmp_path: Path, header: list[str], message: str) -> None:
    """A header without a target is refused up front; one with both is read (and here has no rows)."""
    (tmp_path / "labels.csv").write_text(",".join(header) + "\n")
    with pytest.raises(DataError, match=message):
        load_dataset(tmp_path)


def test_missing_folder(tmp_path: Path) -> None:
    """A missing data folder is a clear error."""
    with pytest.raises(DataError, match="not a folder"):
        load_dataset(tmp_path / "nowhere")


def test_one_class_is_not_a_classification_set(tmp_path: Path, synth_dir: Path) -> None:
    """Classification needs two classes."""
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "a.jpg").write_bytes(
        (synth_dir / read_rows(synth_dir / "labels.csv")[0]["image"]).read_bytes()
    )
    with pytest.raises(DataError, match="two classes"):
        load_dataset(tmp_path)
