"""The class a model sees beside fill (``overflowing``, ``contaminated``...): which classes flag a bin,
the classes a labeller is offered, and each bin's class from its latest reading.

A fill model with a class head, or a class model, puts its class in ``readings.label`` and the
class's probability in ``readings.label_prob`` (docs/contracts.md). A bin is *flagged* when the
reading its map marker shows (the latest usable one: the reading at ``devices.fill_ts``, else the
latest at all) has a class in :data:`FLAGGED`.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session

from binsight.modelfile import ModelFileError, read_model_info
from binsight.server.db.models import Device, ModelRecord, Reading

__all__ = [
    "DEFAULT_CLASSES",
    "FLAGGED",
    "BinClass",
    "active_model_classes",
    "flag_of",
    "label_classes",
    "latest_classes",
]

logger = logging.getLogger(__name__)

#: Classes that flag a bin on the map (and raise a ``class`` alert): Compology-style alerts.
FLAGGED = ("overflowing", "contaminated")
#: The classes a labeller is offered when the active model names none (or beside its own).
DEFAULT_CLASSES = ("clean", "overflowing", "contaminated", "blocked")


@dataclass(frozen=True)
class BinClass:
    """A bin's class from its latest usable reading."""

    label: str
    prob: float | None
    ts: int

    @property
    def flag(self) -> str | None:
        return flag_of(self.label)


def flag_of(label: str | None) -> str | None:
    """The flag a class raises (its name), or None for a class that flags nothing."""
    return label if label in FLAGGED else None


def latest_classes(s: Session, bin_ids: Sequence[str] | None = None) -> dict[str, BinClass]:
    """Each bin's class from the reading at ``devices.fill_ts`` (else ``reading_ts``), when it has one.

    One indexed lookup per device (``ix_readings_bin_id_ts``), whatever the readings table's size.
    """
    at = func.coalesce(Device.fill_ts, Device.reading_ts)
    q = (
        select(Reading.bin_id, Reading.label, Reading.label_prob, Reading.ts)
        .join(Device, and_(Device.bin_id == Reading.bin_id, Reading.ts == at))
        .where(Reading.label.is_not(None))
        .order_by(Reading.bin_id, Reading.id)
    )
    if bin_ids is not None:
        q = q.where(Reading.bin_id.in_(list(bin_ids)))
    # Two readings of one bin at the same ms: the later row wins.
    return {b: BinClass(label or "", prob, ts) for b, label, prob, ts in s.execute(q).all()}


def label_classes(model_classes: Sequence[str]) -> list[str]:
    """The classes a labeller is offered: the active model's, then the defaults it lacks."""
    out = list(dict.fromkeys(model_classes))
    return out + [c for c in DEFAULT_CLASSES if c not in out]


def active_model_classes(s: Session, models_dir: Path) -> list[str]:
    """The active model's classes (a class model's, or a fill model's class head); [] without any."""
    from binsight.server.rollout.announce import model_file

    record = s.execute(select(ModelRecord).where(ModelRecord.active.is_(True))).scalars().first()
    if record is None:
        return []
    try:
        return list(read_model_info(model_file(record, models_dir)).classes)
    except ModelFileError as exc:  # the registry checked it on upload; a file gone since is no reason to fail
        logger.warning("active model %s: %s", record.version, exc)
        return []
