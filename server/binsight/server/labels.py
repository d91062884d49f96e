"""The labels' one home: which label of an image counts, and the labelled-set export.

A person may label an image more than once (a later label corrects an earlier one) and may skip it.
The label that *counts* is the image's latest non-skip label (latest ``created_at``, then the highest
id); a skip never supersedes a label. When the label that counts says ``unusable``, the image is out of
every count and export. Every reader of labels (the labelling API's stats and export, the coverage
sampler, the server's re-check of a comparison, ``binsight server export-labels``) asks
:func:`counted_labels`, so the rule is written once.

The labelled-set layout (docs/contracts.md, "Labelled sets"), written by :func:`write_labelled_set`
into the API's zip or into a folder::

    labels.csv                      image,<fill|label>,bin_id,captured_at
    images/<bin_id>/<image_id>.jpg
    server.json                     export-labels folders only: the active model and the bins' sites
    active-<version>.onnx           export-labels folders only: the active model's file, when one is
"""

from __future__ import annotations

import csv
import io
import json
import shutil
import zipfile
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import Select, func, or_, select
from sqlalchemy.orm import Session

from binsight.errors import DataError
from binsight.server.db.engine import now_ms
from binsight.server.db.models import Bin, Image, Label, ModelRecord
from binsight.server.rollout.announce import model_file

__all__ = [
    "SERVER_JSON",
    "CountedLabel",
    "Kind",
    "counted_labels",
    "export_folder",
    "export_zip",
    "image_jpeg",
    "write_labelled_set",
]

#: What an export holds: fill labels, class labels, or both (columns ``fill`` and ``label``, either may
#: be empty on a row: the trainer fits a class head beside fill, docs/contracts.md).
Kind = Literal["fill", "label", "both"]
SERVER_JSON = "server.json"
"""The file beside ``labels.csv`` in an export-labels folder; ``train fit --from-server DIR`` reads it."""

# What a folder export owns and replaces when it is written again into the same folder.
_EXPORT_PARTS = ("labels.csv", SERVER_JSON, "images")


@dataclass(frozen=True, slots=True)
class CountedLabel:
    """The label that counts of one usable image, with the image's bin, capture time and site."""

    image_id: int
    bin_id: str
    ts: int
    """Capture time, epoch ms."""
    fill: float | None
    label: str | None
    site: str | None

    def value(self, kind: Kind) -> float | str | None:
        return self.fill if kind == "fill" else self.label


def _counting_query(kind: Kind | None, bins: Collection[str] | None) -> Select[Any]:
    # One window over the labels (SQLite >= 3.25 and PostgreSQL): rank each image's non-skip labels
    # newest first; rank 1 is the one that counts. One pass over labels, no per-image subquery.
    rank = (
        func.row_number()
        .over(partition_by=Label.image_id, order_by=(Label.created_at.desc(), Label.id.desc()))
        .label("rank")
    )
    latest = (
        select(Label.image_id, Label.fill, Label.label, Label.unusable, rank)
        .where(Label.skipped.is_(False))
        .subquery("latest")
    )
    query = (
        select(Image.id, Image.bin_id, Image.ts, latest.c.fill, latest.c.label, Bin.site)
        .join(latest, latest.c.image_id == Image.id)
        .outerjoin(Bin, Bin.id == Image.bin_id)
        .where(latest.c.rank == 1, latest.c.unusable.is_(False))
        .order_by(Image.id)
    )
    if kind == "both":
        query = query.where(or_(latest.c.fill.is_not(None), latest.c.label.is_not(None)))
    elif kind is not None:
        query = query.where((latest.c.fill if kind == "fill" else latest.c.label).is_not(None))
    if bins is not None:
        query = query.where(Image.bin_id.in_(list(bins)))
    return query


def counted_labels(
    s: Session, *, kind: Kind | None = None, bins: Collection[str] | None = None
) -> list[CountedLabel]:
    """The label that counts of every labelled, usable image, by image id.

    Parameters
    ----------
    kind
        ``"fill"``: only images whose counting label has a fill; ``"label"``: a class label; None: any.
    bins
        Only the images of these bins (None: every bin).
    """
    rows = s.execute(_counting_query(kind, bins)).all()
    return [CountedLabel(r.id, r.bin_id, r.ts, r.fill, r.label, r.site) for r in rows]


def image_jpeg(s: Session, image_id: int) -> bytes:
    """One stored image's JPEG (the column is deferred, so lists of images never load it)."""
    jpeg: bytes = s.execute(select(Image.jpeg).where(Image.id == image_id)).scalar_one()
    return jpeg


def _iso_z(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def write_labelled_set(s: Session, put: Callable[[str, bytes], object], kind: Kind = "fill") -> int:
    """Write the labelled set through ``put(relative_path, data)``: every image, then ``labels.csv``.

    Returns the number of labelled images written.
    """
    table = io.StringIO()
    w = csv.writer(table, lineterminator="\n")
    targets = ["fill", "label"] if kind == "both" else [kind]
    w.writerow(["image", *targets, "bin_id", "captured_at"])
    rows = counted_labels(s, kind=kind)
    for row in rows:
        path = f"images/{row.bin_id}/{row.image_id}.jpg"
        put(path, image_jpeg(s, row.image_id))
        values = ["" if (v := row.value(t)) is None else v for t in targets]  # type: ignore[arg-type]
        w.writerow([path, *values, row.bin_id, _iso_z(row.ts)])
    put("labels.csv", table.getvalue().encode("utf-8"))
    return len(rows)


def export_zip(s: Session, kind: Kind = "fill") -> bytes:
    """The labelled set as one zip (``GET /api/labels/export``); images are stored, not deflated."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        write_labelled_set(s, z.writestr, kind)
    return buf.getvalue()


def _clear_previous_export(dest: Path) -> None:
    """Make ``dest`` ready for an export: absent, empty, or a previous export (whose parts go)."""
    if not dest.exists():
        return
    if not dest.is_dir():
        raise DataError(f"{dest} is not a folder")
    if any(dest.iterdir()) and not (dest / "labels.csv").is_file():
        raise DataError(f"{dest} is neither empty nor an earlier export (no labels.csv): give another --out")
    for name in _EXPORT_PARTS:
        part = dest / name
        if part.is_dir():
            shutil.rmtree(part)
        elif part.exists():
            part.unlink()
    for old in dest.glob("active-*.onnx"):
        old.unlink()


def _put_file(dest: Path) -> Callable[[str, bytes], object]:
    def put(relative: str, data: bytes) -> None:
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)

    return put


def _active_model_file(s: Session, models_dir: Path) -> tuple[ModelRecord, Path] | None:
    """The active model and its file, or None without one; an error when the file is gone."""
    record = s.execute(select(ModelRecord).where(ModelRecord.active.is_(True))).scalars().first()
    if record is None:
        return None
    path = model_file(record, models_dir)
    if not path.is_file():
        raise DataError(f"the active model {record.version}'s file {path} does not exist")
    return record, path


def export_folder(s: Session, dest: Path, models_dir: Path) -> dict[str, Any]:
    """The fill labelled set (with class labels, when any, as a ``label`` column) as a folder, with a copy
    of the active model's file and ``server.json``.

    ``server.json`` is ``{"labels": n, "exported_at": ISO-8601, "active": {version, file, sha256} | null,
    "sites": {bin_id: site}}``: what ``binsight train fit --from-server DIR`` needs besides the labels to
    compare a candidate with the active model per site. Returns that object.
    """
    active = _active_model_file(s, models_dir)
    _clear_previous_export(dest)
    dest.mkdir(parents=True, exist_ok=True)
    # Class labels too when there are any (a class head is fitted beside fill); else as before.
    kind: Kind = "both" if counted_labels(s, kind="label") else "fill"
    n = write_labelled_set(s, _put_file(dest), kind)
    context: dict[str, Any] = {
        "labels": n,
        "exported_at": _iso_z(now_ms()),
        "active": None,
        "sites": {b: site for b, site in s.execute(select(Bin.id, Bin.site).order_by(Bin.id)) if site},
    }
    if active is not None:
        record, path = active
        name = f"active-{record.version}.onnx"
        shutil.copyfile(path, dest / name)
        context["active"] = {"version": record.version, "file": name, "sha256": record.sha256}
    (dest / SERVER_JSON).write_text(json.dumps(context, indent=2) + "\n", encoding="utf-8")
    return context
