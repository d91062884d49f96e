"""Labelled image sets in the two layouts of docs/contracts.md ("Training data sets"), validated row by row.

* ``labels.csv`` with ``image`` and ``fill`` (0..1, regression) or ``label`` (a class name) or both
  (each row then needs one of them: a fill head and a class head are fitted side by side), and
  optional ``bin_id`` and ``captured_at``;
* no ``labels.csv``: one sub-folder per class (the torchvision ImageFolder layout).

Every problem names the file and the row. With ``skip_bad`` the row is left out and listed in
:attr:`Dataset.skipped` instead, so the report can say what was not used.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from binsight.errors import DataError
from binsight.training.images import IMAGE_SUFFIXES

__all__ = ["COLUMNS", "Dataset", "Sample", "Skipped", "load_dataset"]

logger = logging.getLogger(__name__)

#: The columns ``labels.csv`` may have.
COLUMNS = ("image", "fill", "label", "bin_id", "captured_at")

Task = Literal["regression", "classification"]


@dataclass(frozen=True)
class Sample:
    """One labelled image. ``row`` is the line in labels.csv (header = 1), or None for folders."""

    path: Path
    digest: str  # sha256 of the file's bytes: the cache key and part of the set's fingerprint
    row: int | None
    fill: float | None = None
    label: str | None = None
    bin_id: str | None = None
    captured_at: str | None = None

    def where(self) -> str:
        return f"{self.path}" if self.row is None else f"{self.path} (labels.csv row {self.row})"


@dataclass(frozen=True)
class Skipped:
    """Something left out of the set, and why."""

    file: str
    row: int | None
    reason: str

    def as_dict(self) -> dict[str, object]:
        return {"file": self.file, "row": self.row, "reason": self.reason}


@dataclass
class Dataset:
    """A validated labelled set."""

    root: Path
    task: Task
    samples: list[Sample]
    classes: list[str] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    layout: Literal["labels.csv", "folders"] = "labels.csv"
    origin: list[int] | None = None  # for a part (:meth:`head_parts`): its samples' positions in the whole

    def __len__(self) -> int:
        return len(self.samples)

    @property
    def has_bins(self) -> bool:
        """True when every sample names its bin, so splits can keep a bin on one side."""
        return bool(self.samples) and all(s.bin_id for s in self.samples)

    @property
    def has_class_labels(self) -> bool:
        """A fill set some of whose images also carry a class label: it fits a class head beside fill."""
        return self.task == "regression" and any(s.label is not None for s in self.samples)

    def head_parts(self) -> tuple[Dataset, Dataset]:
        """The fill part and the class part of a set with both kinds of label, and their positions here.

        Each part is a set of its own (an image with both labels is in both); the positions of each
        part's samples in this set are :attr:`origin`.
        """
        fill = [i for i, s in enumerate(self.samples) if s.fill is not None]
        cls = [i for i, s in enumerate(self.samples) if s.label is not None]
        classes = sorted({self.samples[i].label or "" for i in cls})
        return (
            Dataset(self.root, "regression", [self.samples[i] for i in fill], [], [], self.layout, fill),
            Dataset(
                self.root, "classification", [self.samples[i] for i in cls], classes, [], self.layout, cls
            ),
        )

    def targets(self) -> np.ndarray:
        """Fill levels (float) for regression, class indices (int) for classification."""
        if self.task == "regression":
            return np.array([s.fill for s in self.samples], dtype=np.float64)
        index = {c: i for i, c in enumerate(self.classes)}
        return np.array([index[s.label or ""] for s in self.samples], dtype=np.int64)

    def groups(self) -> np.ndarray:
        """Split groups: the bin id, or the image itself when a sample has no bin id."""
        return np.array([s.bin_id or f"image:{s.path}" for s in self.samples])

    def fingerprint(self) -> str:
        """sha256 over the sorted (image content hash, label) pairs: identical sets, identical print."""
        items = sorted(f"{s.digest}\t{_label_text(s)}" for s in self.samples)
        return hashlib.sha256("\n".join(items).encode()).hexdigest()

    def drop(self, indices: list[int], reason: str) -> None:
        """Move samples out of the set (e.g. unreadable images found later) and record why."""
        gone = set(indices)
        for i in sorted(gone):
            s = self.samples[i]
            self.skipped.append(Skipped(str(s.path), s.row, reason))
        self.samples = [s for i, s in enumerate(self.samples) if i not in gone]
        if self.task == "classification" or self.classes:
            self.classes = sorted({s.label for s in self.samples if s.label is not None})


def _label_text(s: Sample) -> str:
    """A sample's labels in the fingerprint: as before for one kind, both when it has both."""
    if s.fill is not None and s.label is not None:
        return f"{s.fill}\t{s.label}"
    return str(s.fill if s.fill is not None else s.label)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class _Rows:
    """Collects bad rows: raises on the first one, or records it when skipping."""

    def __init__(self, skip_bad: bool) -> None:
        self.skip_bad = skip_bad
        self.skipped: list[Skipped] = []

    def bad(self, file: str, row: int | None, reason: str) -> None:
        where = file if row is None else f"{file} (labels.csv row {row})"
        if not self.skip_bad:
            raise DataError(f"{where}: {reason} (use --skip-bad to leave such rows out)")
        logger.warning("skipping %s: %s", where, reason)
        self.skipped.append(Skipped(file, row, reason))


def load_dataset(root: str | Path, skip_bad: bool = False) -> Dataset:
    """Read and validate a labelled set.

    Images are read (to hash their content) but not decoded here; an image that cannot be decoded
    is found when its features are extracted and handled the same way (error or skip).

    Raises
    ------
    DataError
        The folder is missing or empty, or a row is bad and ``skip_bad`` is false.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"{root}: not a folder (expected labels.csv or one sub-folder per class)")
    labels = root / "labels.csv"
    ds = _load_csv(root, labels, skip_bad) if labels.exists() else _load_folders(root, skip_bad)
    if not ds.samples:
        raise DataError(f"{root}: no usable labelled images")
    if ds.task == "classification" and len(ds.classes) < 2:
        raise DataError(f"{root}: classification needs at least two classes, found {ds.classes}")
    logger.info(
        "%s: %s images, task %s%s",
        root,
        len(ds.samples),
        ds.task,
        f", {len(ds.skipped)} skipped" * bool(ds.skipped),
    )
    return ds


def _load_csv(root: Path, labels: Path, skip_bad: bool) -> Dataset:
    rows = _Rows(skip_bad)
    try:
        text = labels.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{labels}: cannot read: {exc}") from exc
    reader = csv.reader(text.splitlines())
    header = [h.strip() for h in next(reader, [])]
    if "image" not in header:
        raise DataError(f"{labels}: no 'image' column (header: {header})")
    unknown = [h for h in header if h not in COLUMNS]
    for col in unknown:
        rows.bad(str(labels), 1, f"unknown column {col!r} (known: {', '.join(COLUMNS)})")
    dupes = {h for h in header if header.count(h) > 1}
    if dupes:
        raise DataError(f"{labels}: duplicate columns {sorted(dupes)}")
    has_fill, has_label = "fill" in header, "label" in header
    if not (has_fill or has_label):
        raise DataError(f"{labels}: needs a column 'fill' (regression), 'label' (classes) or both")
    # Both columns: a row needs one of them; fill rows fit the fill head, label rows the class head.
    both = has_fill and has_label
    samples: list[Sample] = []
    root_resolved = root.resolve()
    for line_no, values in enumerate(reader, start=2):
        if not values or all(not v.strip() for v in values):
            continue
        if len(values) != len(header):
            rows.bad(str(labels), line_no, f"{len(values)} fields, the header has {len(header)}")
            continue
        rec = {h: v.strip() for h, v in zip(header, values, strict=True) if h in COLUMNS}
        rel = rec["image"]
        path = root / rel
        if not rel:
            rows.bad(str(labels), line_no, "empty 'image'")
            continue
        if not path.resolve().is_relative_to(root_resolved):
            rows.bad(rel, line_no, "image path leaves the data folder")
            continue
        fill: float | None = None
        label: str | None = rec.get("label") or None
        if has_fill and (rec["fill"] or not both):
            try:
                fill = float(rec["fill"])
            except ValueError:
                rows.bad(rel, line_no, f"fill {rec['fill']!r} is not a number")
                continue
            if not (math.isfinite(fill) and 0.0 <= fill <= 1.0):
                rows.bad(rel, line_no, f"fill {fill} is outside 0..1")
                continue
        if fill is None and label is None:
            rows.bad(rel, line_no, "empty 'fill' and 'label'" if both else "empty 'label'")
            continue
        captured = rec.get("captured_at") or None
        if captured is not None:
            try:
                dt.datetime.fromisoformat(captured)
            except ValueError:
                rows.bad(rel, line_no, f"captured_at {captured!r} is not ISO 8601")
                continue
        try:
            digest = _digest(path)
        except FileNotFoundError:
            rows.bad(rel, line_no, "image file does not exist")
            continue
        except OSError as exc:
            rows.bad(rel, line_no, f"cannot read image: {exc.strerror or exc}")
            continue
        samples.append(Sample(path, digest, line_no, fill, label, rec.get("bin_id") or None, captured))
    # A set with any fill label is a fill set; its class labels (if any) are for a class head beside it.
    task: Task = "regression" if any(s.fill is not None for s in samples) else "classification"
    classes = sorted({s.label for s in samples if s.label is not None})
    return Dataset(root, task, samples, classes, rows.skipped, "labels.csv")


def _load_folders(root: Path, skip_bad: bool) -> Dataset:
    rows = _Rows(skip_bad)
    class_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not class_dirs:
        raise DataError(f"{root}: no labels.csv and no class sub-folders")
    samples: list[Sample] = []
    for d in class_dirs:
        for path in sorted(d.iterdir()):
            if path.name.startswith(".") or not path.is_file():
                continue
            if path.suffix.lower() not in IMAGE_SUFFIXES:
                logger.debug("ignoring %s: not an image file name", path)
                continue
            try:
                digest = _digest(path)
            except OSError as exc:
                rows.bad(str(path), None, f"cannot read image: {exc.strerror or exc}")
                continue
            samples.append(Sample(path, digest, None, label=d.name))
    classes = sorted({s.label or "" for s in samples})
    return Dataset(root, "classification", samples, classes, rows.skipped, "folders")
