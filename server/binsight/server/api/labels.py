"""Labelling: the queue of images awaiting a fill label, labels, skips, stats and the training export."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Response
from pydantic import BaseModel
from sqlalchemy import and_, distinct, exists, func, select

from binsight.server.api.schemas import LabelClasses, LabelIn, LabelStats, QueueItem
from binsight.server.auth import Principal, require
from binsight.server.classes import FLAGGED, active_model_classes, label_classes
from binsight.server.db.engine import now_ms
from binsight.server.db.models import Bin, Image, Label
from binsight.server.labels import Kind, counted_labels, export_zip
from binsight.server.state import AppState, get_state

router = APIRouter(tags=["labels"])

Labeller = Annotated[Principal, Depends(require("labeller"))]
Viewer = Annotated[Principal, Depends(require("labeller", "operator"))]
State = Annotated[AppState, Depends(get_state)]
#: An image's id is a signed 64-bit key (SQLite INTEGER, PostgreSQL BIGINT): larger ones are 422,
#: not a database error.
ImageId = Annotated[int, Path(ge=0, le=2**63 - 1, description="the image's id")]


class QueueSize(BaseModel):
    waiting: int
    """Images this user could label now (the queue's true length, not the page of it fetched)."""


class Reference(BaseModel):
    image_id: int
    bin_id: str
    fill: float


class References(BaseModel):
    site: str | None
    empty: Reference | None
    """The site's labelled image nearest empty (lowest fill)."""
    full: Reference | None
    """The site's labelled image nearest full (highest fill)."""


def _labelled() -> Any:
    """Someone labelled the image (a fill, a class or unusable; a skip is no label)."""
    return exists().where(Label.image_id == Image.id, Label.skipped.is_(False))


def _waiting(who: Principal) -> Any:
    """The images waiting for ``who``: nobody labelled them and this user did not skip them."""
    labelled = _labelled()
    skipped_by_me = exists().where(
        and_(Label.image_id == Image.id, Label.skipped.is_(True), Label.who == who.name)
    )
    return and_(~labelled, ~skipped_by_me)


#: One labelled image in this many (by image id, so the share is stable) may come back for a second
#: label, and one place in this many of a queue page goes to such an image while any waits: agreement
#: and each labeller's bias come from these (GET /api/labels/quality).
SECOND_OPINION_EVERY = 10


def _interleave(fresh: list[Any], second: list[Any], limit: int) -> list[Any]:
    """Every :data:`SECOND_OPINION_EVERY`-th place a second-opinion image, the others fresh ones; when
    one kind runs out the other fills the page. A queue that never empties (cameras keep sending)
    still gets its share labelled twice."""
    out: list[Any] = []
    f, s = iter(fresh), iter(second)
    while len(out) < limit:
        first, other = (s, f) if (len(out) + 1) % SECOND_OPINION_EVERY == 0 else (f, s)
        item = next(first, None)
        if item is None:
            item = next(other, None)
        if item is None:
            break
        out.append(item)
    return out


@router.get("/api/labels/queue", response_model=list[QueueItem])
def queue(who: Labeller, state: State, limit: Annotated[int, Query(ge=1, le=500)] = 20) -> list[QueueItem]:
    """Images nobody labelled yet and this user did not skip, ``unsure`` ones first, then newest; every
    :data:`SECOND_OPINION_EVERY`-th place one of the images (one in that many) that one other person
    labelled, for a second label (``second_opinion``)."""
    mine = exists().where(and_(Label.image_id == Image.id, Label.who == who.name))
    others = (
        select(func.count(distinct(Label.who)))
        .where(Label.image_id == Image.id, Label.skipped.is_(False), Label.unusable.is_(False))
        .correlate(Image)
        .scalar_subquery()
    )
    second = and_(_labelled(), ~mine, others == 1, Image.id % SECOND_OPINION_EVERY == 0)
    unsure_first = (Image.reason != "unsure").asc()
    columns = select(Image.id, Image.bin_id, Image.ts, Image.reason, Image.predicted_fill, Image.model)
    with state.sessions() as s:
        fresh = s.execute(
            columns.where(_waiting(who)).order_by(unsure_first, Image.ts.desc()).limit(limit)
        ).all()
        again = s.execute(columns.where(second).order_by(Image.ts.desc()).limit(limit)).all()
    page = _interleave([(r, False) for r in fresh], [(r, True) for r in again], limit)
    return [
        QueueItem(
            image_id=r.id,
            bin_id=r.bin_id,
            ts=r.ts,
            reason=r.reason,
            predicted_fill=r.predicted_fill,
            model=r.model,
            second_opinion=is_second,
        )
        for r, is_second in page
    ]


@router.get("/api/labels/queue/size", response_model=QueueSize)
def queue_size(who: Labeller, state: State) -> QueueSize:
    """How many images wait for this user (the page shows progress against it)."""
    with state.sessions() as s:
        n = s.execute(select(func.count()).select_from(Image).where(_waiting(who))).scalar_one()
    return QueueSize(waiting=n)


@router.get("/api/labels/references", response_model=References)
def references(bin_id: str, _who: Viewer, state: State) -> References:
    """Labelled examples of the bin's site (the bin alone when it has none) nearest empty and nearest full,
    for a labeller to compare an image with how this site looks empty and full."""
    with state.sessions() as s:
        b = s.get(Bin, bin_id)
        if b is None:
            raise HTTPException(404, f"no bin {bin_id!r}")
        site_bins = select(Bin.id).where(Bin.site == b.site)
        bins = [bin_id] if b.site is None else list(s.execute(site_bins).scalars())
        counted = [
            Reference(image_id=c.image_id, bin_id=c.bin_id, fill=c.fill)
            for c in counted_labels(s, kind="fill", bins=bins)
            if c.fill is not None
        ]
    if not counted:
        return References(site=b.site, empty=None, full=None)
    # Ties go to the newest image (the highest id): the camera's view may have changed since older ones.
    lowest = min(counted, key=lambda r: (r.fill, -r.image_id))
    highest = max(counted, key=lambda r: (r.fill, r.image_id))
    return References(site=b.site, empty=lowest, full=highest if highest is not lowest else None)


@router.get(
    "/api/images/{image_id}", response_class=Response, responses={200: {"content": {"image/jpeg": {}}}}
)
def image(image_id: ImageId, _who: Viewer, state: State) -> Response:
    with state.sessions() as s:
        jpeg = s.execute(select(Image.jpeg).where(Image.id == image_id)).scalar_one_or_none()
    if jpeg is None:
        raise HTTPException(404, f"no image {image_id}")
    return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "private, max-age=86400"})


def _add_label(state: AppState, image_id: int, label: Label) -> None:
    with state.sessions() as s, s.begin():
        if s.get(Image, image_id) is None:
            raise HTTPException(404, f"no image {image_id}")
        s.add(label)


@router.get("/api/labels/classes", response_model=LabelClasses)
def classes(_who: Viewer, state: State) -> LabelClasses:
    """The classes a labeller may give an image beside its fill: the active model's, then the usual
    ones (``clean``, ``overflowing``, ``contaminated``, ``blocked``); ``flagged`` are those the map flags."""
    with state.sessions() as s:
        model = active_model_classes(s, state.config.models.dir)
    return LabelClasses(classes=label_classes(model), model=model, flagged=list(FLAGGED))


@router.post("/api/images/{image_id}/label")
def label(image_id: ImageId, body: LabelIn, who: Labeller, state: State) -> dict[str, object]:
    """Record a fill (0..1), a class label, or 'unusable' for the image, with who and when."""
    if body.fill is not None and not 0.0 <= body.fill <= 1.0:
        raise HTTPException(422, "fill must be between 0 and 1")
    if body.fill is None and body.label is None and not body.unusable:
        raise HTTPException(422, "give fill, label or unusable")
    if body.label is not None and not 1 <= len(body.label) <= 64:
        raise HTTPException(422, "label must be 1 to 64 characters")
    ts = now_ms()
    _add_label(
        state,
        image_id,
        Label(
            image_id=image_id,
            fill=body.fill,
            label=body.label,
            unusable=body.unusable,
            who=who.name,
            created_at=ts,
        ),
    )
    return {"image_id": image_id, "who": who.name, "at": ts}


@router.post("/api/images/{image_id}/skip")
def skip(image_id: ImageId, who: Labeller, state: State) -> dict[str, object]:
    """Hide the image from this user's queue (others still see it)."""
    ts = now_ms()
    _add_label(state, image_id, Label(image_id=image_id, skipped=True, who=who.name, created_at=ts))
    return {"image_id": image_id, "skipped": True}


@router.get("/api/labels/stats", response_model=LabelStats)
def stats(_who: Viewer, state: State) -> LabelStats:
    """Labelled images per bin and per site (unusable ones not counted)."""
    with state.sessions() as s:
        counted = counted_labels(s)
    per_bin = Counter(c.bin_id for c in counted)
    per_site = Counter(c.site or "(none)" for c in counted)
    return LabelStats(per_bin=dict(per_bin), per_site=dict(per_site), total=len(counted))


@router.get(
    "/api/labels/export", response_class=Response, responses={200: {"content": {"application/zip": {}}}}
)
def export(_who: Labeller, state: State, kind: Kind = "fill") -> Response:
    """A zip in the labelled-set layout (docs/contracts.md): ``labels.csv`` (image, fill|label, bin_id,
    captured_at) and ``images/<bin_id>/<image_id>.jpg``; ready for ``binsight train fit``."""
    with state.sessions() as s:
        data = export_zip(s, kind)
    return Response(
        data,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="binsight-labels-{kind}.zip"'},
    )
