"""How far labels can be trusted: labellers against each other, and against images whose fill is known.

A gate that compares models on held-out labels is only as good as the labels: labels 0.11 high on
average made a worse model look better. Two checks need no ground truth from outside:

* **Double labels**: images labelled (fill) by two or more people. Their agreement (mean absolute
  difference, share within 0.1) says how noisy labels are; each labeller's mean difference from the
  others on the same images is their bias.
* **Gold images**: an image taken at a detected collection (the reading it belongs to is where the
  bin's fill series drops sharply, :func:`~binsight.server.forecast.collections.detect_collections`)
  shows a just-emptied bin, so its true fill is about 0. Each labeller's mean label on those is a
  bias against a known truth.

Each person's latest non-skip label per image is theirs (a correction replaces their first).
"""

from __future__ import annotations

from collections import defaultdict
from statistics import mean
from typing import Any

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from binsight.server.db.models import Image, Label, Reading
from binsight.server.forecast.collections import detect_collections

__all__ = ["GOLD_FILL", "label_quality"]

#: The fill of a just-emptied bin: what a gold image's label should read.
GOLD_FILL = 0.0
#: Readings on each side of an image that decide whether it was taken at a collection.
_AROUND = 3


def _own_labels(s: Session) -> dict[int, dict[str, float]]:
    """``image_id -> {labeller: fill}``: each person's latest usable fill label per image."""
    rows = s.execute(
        select(Label.image_id, Label.who, Label.fill, Label.unusable)
        .where(Label.skipped.is_(False))
        .order_by(Label.created_at, Label.id)
    ).all()
    out: dict[int, dict[str, float]] = defaultdict(dict)
    for image_id, who, fill, unusable in rows:
        if unusable or fill is None:
            out[image_id].pop(who, None)
        else:
            out[image_id][who] = float(fill)
    return {k: v for k, v in out.items() if v}


def _at_collection(s: Session, bin_id: str, seq: int, ts: int, min_drop: float) -> bool:
    """Whether reading ``seq`` of ``bin_id`` is where a collection emptied the bin."""
    usable = (Reading.bin_id == bin_id, Reading.quality == "ok", Reading.fill.is_not(None))
    before = s.execute(
        select(Reading.fill).where(*usable, Reading.ts < ts).order_by(Reading.ts.desc()).limit(_AROUND)
    ).scalars()
    after = list(
        s.execute(
            select(Reading.seq, Reading.fill)
            .where(*usable, Reading.ts >= ts)
            .order_by(Reading.ts)
            .limit(_AROUND)
        ).all()
    )
    prior = [float(f) for f in before if f is not None][::-1]
    if not prior or not after or after[0][0] != seq:
        return False
    series = np.array(prior + [float(f) for _, f in after if f is not None])
    return len(prior) in detect_collections(series, min_drop)


def _gold_images(s: Session, image_ids: list[int], min_drop: float) -> set[int]:
    if not image_ids:
        return set()
    rows = s.execute(select(Image.id, Image.bin_id, Image.seq, Image.ts).where(Image.id.in_(image_ids))).all()
    return {i for i, b, seq, ts in rows if _at_collection(s, b, seq, ts, min_drop)}


def _rounded(x: float | None) -> float | None:
    return None if x is None else round(x, 4)


def label_quality(s: Session, min_drop: float) -> dict[str, Any]:
    """``{double_labelled, gold, labellers}`` (see the module docstring)."""
    labels = _own_labels(s)
    diffs: list[float] = []
    vs_others: dict[str, list[float]] = defaultdict(list)
    for by in labels.values():
        if len(by) < 2:
            continue
        fills = list(by.values())
        diffs.extend(abs(a - b) for i, a in enumerate(fills) for b in fills[i + 1 :])
        for who, fill in by.items():
            others = [f for w, f in by.items() if w != who]
            vs_others[who].append(fill - mean(others))
    gold = _gold_images(s, list(labels), min_drop)
    vs_gold: dict[str, list[float]] = defaultdict(list)
    for image_id in gold:
        for who, fill in labels[image_id].items():
            vs_gold[who].append(fill - GOLD_FILL)
    counts: dict[str, int] = defaultdict(int)
    for by in labels.values():
        for who in by:
            counts[who] += 1
    labellers = [
        {
            "who": who,
            "labels": counts[who],
            "double_labelled": len(vs_others.get(who, [])),
            "bias_vs_others": _rounded(mean(vs_others[who])) if vs_others.get(who) else None,
            "gold": len(vs_gold.get(who, [])),
            "bias_vs_gold": _rounded(mean(vs_gold[who])) if vs_gold.get(who) else None,
        }
        for who in sorted(counts)
    ]
    return {
        "double_labelled": {
            "images": sum(1 for by in labels.values() if len(by) >= 2),
            "mean_abs_diff": _rounded(mean(diffs)) if diffs else None,
            "within_0_1": _rounded(sum(d <= 0.1 for d in diffs) / len(diffs)) if diffs else None,
        },
        "gold": {
            "images": len(gold),
            "fill": GOLD_FILL,
            "rule": "taken at a detected collection (the fill series drops by min_drop there): about empty",
            "mean_label": _rounded(mean(f for i in gold for f in labels[i].values())) if gold else None,
        },
        "labellers": labellers,
    }
