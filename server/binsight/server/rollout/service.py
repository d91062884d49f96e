"""Promotion, staged rollout (canary, then all) with automatic halt, and rollback.

A promotion passes the gate (:mod:`~binsight.server.rollout.gate`) or is forced with a recorded
reason; its signed release is then retained on the canary bins' model topics only. :meth:`tick`
(run by the monitor thread) watches the canaries: a ``failed`` model event, or readings on the new
model that jump from the old model's by more than the offline comparison predicted plus
``max_jump``, halts the rollout, re-announces the previous model to the canaries and makes it
active again; the other bins are never told about the candidate. Once every canary has sent
``min_canary_readings`` readings on the new model and ``canary_soak_s`` has passed, the release
goes to every bin. Rollback announces the previous model to every bin in one action.

Every promotion, halt and rollback signs a new release with the next release number
(``model_releases``): devices refuse releases not numbered above the highest they accepted, so a
way back is always a new, higher-numbered release of the older file, never a replay.
"""

from __future__ import annotations

import hashlib
import logging
import math
import threading
from statistics import median, pstdev
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from binsight.heldout import describe
from binsight.protocol import ModelRelease, Topics
from binsight.server.config import ServerConfig
from binsight.server.db.engine import now_ms
from binsight.server.db.models import (
    Bin,
    Device,
    DeviceEvent,
    ModelAnnouncement,
    ModelRecord,
    Reading,
    ReleaseRecord,
    Rollout,
)
from binsight.server.rollout.announce import Publisher, announce, load_signing_key, release_for
from binsight.server.rollout.errors import RolloutError
from binsight.server.rollout.gate import GateResult, judge, too_few
from binsight.server.rollout.verify import recheck

__all__ = ["RolloutService", "pick_canaries"]

logger = logging.getLogger(__name__)

LIVE = ("canary", "all")


def pick_canaries(bins: list[str], version: str, listed: list[str], fraction: float) -> list[str]:
    """The configured canaries that exist, else a stable pseudo-random ``fraction`` of bins (at least one)."""
    if listed:
        chosen = [b for b in listed if b in set(bins)]
        if chosen:
            return sorted(chosen)
    if not bins:
        return []
    n = max(1, math.ceil(fraction * len(bins)))
    ranked = sorted(bins, key=lambda b: hashlib.sha256(f"{version}/{b}".encode()).hexdigest())
    return sorted(ranked[:n])


def rollout_dict(r: Rollout) -> dict[str, Any]:
    return {
        "id": r.id,
        "kind": r.kind,
        "version": r.version,
        "previous": r.previous,
        "state": r.state,
        "canary_bins": list(r.canary_bins),
        "forced": r.forced,
        "reason": r.reason,
        "comparison": r.comparison,
        "halt_reason": r.halt_reason,
        "created_by": r.created_by,
        "started_at": r.started_at,
        "updated_at": r.updated_at,
        "all_at": r.all_at,
    }


def _event_dict(ev: DeviceEvent | None) -> dict[str, Any] | None:
    """A bin's last model event for the status: a refusal shows its reason on the Models page."""
    if ev is None:
        return None
    return {"state": ev.state, "ref": ev.ref, "detail": ev.detail, "ts": ev.ts}


class RolloutService:
    """The rollout state machine over the database; one per server process.

    Parameters
    ----------
    config
        The server config (``[rollout]``, ``[models]`` dir, ``[mqtt]`` root).
    sessions
        The database.
    publisher
        Where retained announcements go (the server's broker connection); None when this process
        has no MQTT (API only): then promotion and rollback refuse with 503.
    """

    def __init__(
        self,
        config: ServerConfig,
        sessions: sessionmaker[Session],
        publisher: Publisher | None,
    ) -> None:
        self.config = config
        self.cfg = config.rollout
        self.sessions = sessions
        self.publisher = publisher
        self.topics = Topics(config.mqtt.root)
        self.lock = threading.RLock()

    # ------------------------------------------------------------------ helpers
    def _publisher(self) -> Publisher:
        pub = self.publisher
        if pub is None:
            raise RolloutError(
                "this process has no MQTT connection (API only): nothing can be announced", 503
            )
        return pub

    def _bins(self, s: Session) -> list[str]:
        ids = set(s.execute(select(Device.bin_id)).scalars()) | set(s.execute(select(Bin.id)).scalars())
        return sorted(ids)

    def _release(self, s: Session, record: ModelRecord | None, rollout_id: int) -> ModelRelease | None:
        """A NEW signed release of ``record`` (None clears): the next release number, issued now.

        Devices take only releases numbered above the highest they accepted, so every promotion,
        halt and rollback issues one, even of a model they had before. A refusal (no key, file
        gone) raises before the caller announces anything.
        """
        if record is None:
            return None
        key = load_signing_key(self.cfg)
        row = ReleaseRecord(
            version=record.version,
            sha256=record.sha256,
            size=record.size,
            issued_at=now_ms(),
            rollout_id=rollout_id,
        )
        s.add(row)
        s.flush()  # the number
        return release_for(record, self.config.models.dir, key, row.number, row.issued_at)

    def _current_release(self, s: Session, r: Rollout, record: ModelRecord) -> ModelRelease:
        """The release ``r`` issued of its model, re-signed: bins that appear later get the same one."""
        row = (
            s.execute(
                select(ReleaseRecord)
                .where(ReleaseRecord.rollout_id == r.id, ReleaseRecord.version == r.version)
                .order_by(ReleaseRecord.number.desc())
            )
            .scalars()
            .first()
        )
        if row is None:  # a rollout started before release numbers (migration 0004)
            release = self._release(s, record, r.id)
            assert release is not None
            return release
        return release_for(
            record, self.config.models.dir, load_signing_key(self.cfg), row.number, row.issued_at
        )

    def _announce(
        self, s: Session, bins: list[str], release: ModelRelease | None, rollout_id: int, pub: Publisher
    ) -> None:
        if not bins:
            return
        announce(pub, self.topics, bins, release)
        now = now_ms()
        version = release.version if release is not None else ""
        number = release.release_number if release is not None else None
        for b in bins:
            row = s.get(ModelAnnouncement, b)
            if row is None:
                s.add(
                    ModelAnnouncement(
                        bin_id=b,
                        version=version,
                        rollout_id=rollout_id,
                        announced_at=now,
                        release_number=number,
                    )
                )
            else:
                row.version, row.rollout_id, row.announced_at = version, rollout_id, now
                row.release_number = number

    def _activate(self, s: Session, version: str | None) -> None:
        now = now_ms()
        for m in s.execute(select(ModelRecord).where(ModelRecord.active.is_(True))).scalars():
            m.active = False
        if version is not None:
            rec = s.get(ModelRecord, version)
            if rec is not None:
                rec.active, rec.activated_at = True, now

    def _live(self, s: Session) -> list[Rollout]:
        return list(s.execute(select(Rollout).where(Rollout.state.in_(LIVE)).order_by(Rollout.id)).scalars())

    def _recheck(
        self, s: Session, record: ModelRecord, active: ModelRecord, gate: GateResult
    ) -> tuple[dict[str, Any], GateResult]:
        """Re-run both models on the stored held-out labels; a worse result there overrides the report."""
        comp = gate.comparison or {}
        check = recheck(
            s, self.config.models.dir, record, active, [str(b) for b in comp.get("test_bins") or []]
        )
        if not check["checked"]:
            return check, gate
        small = too_few(int(check["n"]), self.cfg.min_heldout_labels, "stored here")
        if small is not None:
            return check, GateResult(False, small, comp)
        stated = f"{check['n']} held-out labels stored here; {describe(check['difference'])}"
        if check["candidate_mae"] > check["active_mae"] + self.cfg.max_mae_increase:
            gate = GateResult(
                False,
                f"candidate {record.version} is worse than the active {active.version} on the "
                f"{stated}: MAE {check['candidate_mae']:.4f} vs {check['active_mae']:.4f}",
                comp,
            )
        else:
            gate = GateResult(True, f"{gate.reason}; server check: MAE {check['candidate_mae']:.4f} vs "
                              f"{check['active_mae']:.4f} on the {stated}", comp)  # fmt: skip
        return check, gate

    # ------------------------------------------------------------------ actions
    def promote(self, version: str, *, force: bool, reason: str | None, who: str) -> dict[str, Any]:
        """Gate, record and start the canary stage of ``version``.

        Raises
        ------
        RolloutError
            404 unknown version; 409 refused by the gate (unless forced); 422 forced without a
            reason; 503 no signing key or no broker; 410 the file is gone.
        """
        reason = (reason or "").strip() or None
        with self.lock, self.sessions() as s, s.begin():
            record = s.get(ModelRecord, version)
            if record is None:
                raise RolloutError(f"no model {version!r} is registered", 404)
            active = s.execute(select(ModelRecord).where(ModelRecord.active.is_(True))).scalars().first()
            gate = judge(
                version,
                record.report,
                active.version if active else None,
                self.cfg.max_mae_increase,
                self.cfg.min_heldout_labels,
            )
            server_check: dict[str, Any] | None = None
            if gate.ok and active is not None and (gate.comparison or {}).get("metric") == "mae":
                server_check, gate = self._recheck(s, record, active, gate)
            if not gate.ok:
                if active is not None and active.version == version:
                    raise RolloutError(gate.reason, 409)
                if not force:
                    raise RolloutError(f"promotion refused: {gate.reason}", 409)
                if reason is None:
                    raise RolloutError(
                        "forcing a promotion the gate refused needs a reason (it is recorded)", 422
                    )
                logger.warning(
                    "promotion of %s forced by %s: %s (gate: %s)", version, who, reason, gate.reason
                )
            bins = self._bins(s)
            canaries = pick_canaries(bins, version, self.cfg.canary_bins, self.cfg.canary_fraction)
            now = now_ms()
            for old in self._live(s):
                old.state, old.updated_at = "superseded", now
            comparison = {
                "gate": gate.reason,
                "gate_ok": gate.ok,
                "server_check": server_check,
                **(gate.comparison or {}),
            }
            rollout = Rollout(
                kind="promote",
                version=version,
                previous=active.version if active else None,
                state="canary",
                canary_bins=canaries,
                forced=not gate.ok,
                reason=reason,
                comparison=comparison,
                created_by=who,
                started_at=now,
                updated_at=now,
            )
            s.add(rollout)
            s.flush()
            # Signed inside the transaction: a refusal (no key, file gone, no broker) rolls it all back.
            release = self._release(s, record, rollout.id)
            self._announce(s, canaries, release, rollout.id, self._publisher())
            self._activate(s, version)
            logger.info("model %s promoted by %s: canary stage on %s", version, who, ", ".join(canaries))
            return rollout_dict(rollout)

    def _rollback_target(self, s: Session, active: ModelRecord) -> ModelRecord:
        """The latest model but ``active`` that was healthy on every bin and not rolled back from since.

        Healthy in production: a rollout of it reached every bin (``all_at``; a rollback is there at
        once). Rolled back from since then, or halted: never a target again until it is promoted
        anew, through the gate and the canaries, and reaches every bin once more.

        Raises
        ------
        RolloutError
            409 when no such model (with its file) exists.
        """
        healthy: dict[str, int] = {}
        left: dict[str, int] = {}
        for r in s.execute(select(Rollout).order_by(Rollout.id)).scalars():
            if r.all_at is not None and r.state != "halted":
                healthy[r.version] = max(healthy.get(r.version, 0), r.all_at)
            if r.kind == "rollback" and r.previous:
                left[r.previous] = max(left.get(r.previous, 0), r.started_at)
            if r.state == "halted":
                left[r.version] = max(left.get(r.version, 0), r.updated_at)
        ranked = sorted((at, v) for v, at in healthy.items() if v != active.version and left.get(v, -1) < at)
        for _, version in reversed(ranked):
            record = s.get(ModelRecord, version)
            if record is not None:
                return record
        raise RolloutError(
            f"{active.version} has no previous model to roll back to: no other model was healthy on "
            "every bin without being rolled back from since (promote one instead: it goes through the "
            "gate and the canaries)",
            409,
        )

    def _rollback_preview(self, s: Session) -> str | None:
        """The version a rollback now would go back to (None: it would be refused)."""
        active = s.execute(select(ModelRecord).where(ModelRecord.active.is_(True))).scalars().first()
        if active is None:
            return None
        try:
            return self._rollback_target(s, active).version
        except RolloutError:
            return None

    def rollback(self, *, who: str, reason: str | None = None) -> dict[str, Any]:
        """Make the last model that was healthy in production before the current one active again, on
        every bin at once; never one that was halted or rolled back from (see :meth:`_rollback_target`).

        Raises
        ------
        RolloutError
            409 when there is no such model to go back to.
        """
        with self.lock, self.sessions() as s, s.begin():
            active = s.execute(select(ModelRecord).where(ModelRecord.active.is_(True))).scalars().first()
            if active is None:
                raise RolloutError("no model is active: nothing to roll back", 409)
            previous = self._rollback_target(s, active)
            now = now_ms()
            for old in self._live(s):
                old.state, old.updated_at = "rolled_back", now
            rollout = Rollout(
                kind="rollback",
                version=previous.version,
                previous=active.version,
                state="all",
                canary_bins=[],
                forced=False,
                reason=reason,
                comparison=None,
                created_by=who,
                started_at=now,
                updated_at=now,
                all_at=now,
            )
            s.add(rollout)
            s.flush()
            # A new release (a higher number) of the older file: devices that took the newer model
            # accept it, while a replay of the older model's first release stays refused.
            release = self._release(s, previous, rollout.id)
            self._announce(s, self._bins(s), release, rollout.id, self._publisher())
            self._activate(s, previous.version)
            logger.warning("rolled back from %s to %s by %s", active.version, previous.version, who)
            return rollout_dict(rollout)

    # ------------------------------------------------------------------ monitoring
    def _canary_verdict(self, s: Session, r: Rollout, now: int) -> tuple[str | None, bool]:
        """``(halt reason or None, ready for all)`` for a rollout in its canary stage."""
        failed = (
            s.execute(
                select(DeviceEvent)
                .where(
                    DeviceEvent.bin_id.in_(r.canary_bins),
                    DeviceEvent.kind == "model",
                    DeviceEvent.state.in_(("failed", "rolled_back")),
                    DeviceEvent.received_at >= r.started_at,
                )
                .order_by(DeviceEvent.id)
            )
            .scalars()
            .all()
        )
        for ev in failed:
            if (ev.state == "failed" and ev.ref in (r.version, None)) or ev.state == "rolled_back":
                return f"canary {ev.bin_id} reported model {ev.state}: {ev.detail or ''}".strip(), False
        late = self._not_switched(s, r, now)
        if late is not None:
            return late, False
        k = self.cfg.min_canary_readings
        ready = now - r.started_at >= self.cfg.canary_soak_s * 1000
        samples: dict[str, tuple[list[float], list[float]]] = {}
        for b in r.canary_bins:
            new, old = self._canary_samples(s, r, b, k, now)
            if len(new) < k:
                ready = False
            elif old:
                samples[b] = (new, old)
        shadowed = self._shadow_pairs(s, r, k)
        why = (
            self._shadow_verdict(r, shadowed)
            or self._jumped(r, samples)
            or self._collapsed_readings(r, samples)
        )
        return (why, False) if why is not None else (None, ready)

    def _shadow_pairs(self, s: Session, r: Rollout, k: int) -> dict[str, list[tuple[float, float]]]:
        """Per canary, its first ``k`` (new fill, previous model's fill) pairs on the same frames since
        this rollout began."""
        if r.previous is None:
            return {}
        out: dict[str, list[tuple[float, float]]] = {}
        for b in r.canary_bins:
            rows = s.execute(
                select(Reading.fill, Reading.shadow_fill)
                .where(
                    Reading.bin_id == b,
                    Reading.model == r.version,
                    Reading.received_at >= r.started_at,
                    Reading.shadow_model == r.previous,
                    Reading.quality == "ok",
                    Reading.fill.is_not(None),
                    Reading.shadow_fill.is_not(None),
                )
                .order_by(Reading.ts)
                .limit(k)
            ).all()
            if len(rows) >= k:
                out[b] = [(float(f), float(sf)) for f, sf in rows if f is not None and sf is not None]
        return out

    def _shadow_verdict(self, r: Rollout, pairs: dict[str, list[tuple[float, float]]]) -> str | None:
        """The shadow soak's judgement: the candidate against the previous model on the same frames.

        A canary whose median gap exceeds ``expected_shift + max_jump`` disagrees with the model it
        replaces on what it sees (no time passed between the two readings); over all canaries, the
        candidate's fills spreading under ``min_spread_ratio`` of the previous model's on the same
        frames is a flat line.
        """
        expected = float((r.comparison or {}).get("expected_shift") or 0.0)
        for b, ps in pairs.items():
            gap = median(abs(f - sf) for f, sf in ps)
            if gap > expected + self.cfg.max_jump:
                return (
                    f"canary {b}: on the same frames {r.version} reads {median(f for f, _ in ps):.2f} where "
                    f"{r.previous} reads {median(sf for _, sf in ps):.2f} (median gap {gap:.2f}, more than "
                    f"the expected {expected:.2f} + max_jump {self.cfg.max_jump:.2f})"
                )
        new = [f for ps in pairs.values() for f, _ in ps]
        old = [sf for ps in pairs.values() for _, sf in ps]
        spread = self._collapsed(new, old)
        if spread is None:
            return None
        return f"canaries {', '.join(sorted(pairs))}: on the same frames {r.version} collapsed to {spread}"

    def _canary_samples(
        self, s: Session, r: Rollout, b: str, k: int, now: int
    ) -> tuple[list[float], list[float]]:
        """A canary's first ``k`` usable live fills on the new model since this rollout began (a model
        promoted again is judged anew, not on its readings from an earlier time in production), its
        last ``k`` on the previous one before them."""
        new = [
            f
            for f in s.execute(
                select(Reading.fill)
                .where(
                    Reading.bin_id == b,
                    Reading.model == r.version,
                    Reading.received_at >= r.started_at,
                    Reading.quality == "ok",
                    Reading.historical.is_(False),
                )
                .order_by(Reading.ts)
                .limit(k)
            ).scalars()
            if f is not None
        ]
        if len(new) < k or r.previous is None:
            return new, []
        first_new_ts = s.execute(
            select(Reading.ts)
            .where(Reading.bin_id == b, Reading.model == r.version, Reading.received_at >= r.started_at)
            .order_by(Reading.ts)
        ).scalar()
        old = [
            f
            for f in s.execute(
                select(Reading.fill)
                .where(
                    Reading.bin_id == b,
                    Reading.model == r.previous,
                    Reading.quality == "ok",
                    Reading.ts < (first_new_ts or now),
                )
                .order_by(Reading.ts.desc())
                .limit(k)
            ).scalars()
            if f is not None
        ]
        return new, old

    def _jumped(self, r: Rollout, samples: dict[str, tuple[list[float], list[float]]]) -> str | None:
        """A canary whose median moved more than the offline comparison's expected shift + ``max_jump``."""
        expected = float((r.comparison or {}).get("expected_shift") or 0.0)
        for b, (new, old) in samples.items():
            if abs(median(new) - median(old)) > expected + self.cfg.max_jump:
                return (
                    f"canary {b}: readings jumped from {median(old):.2f} ({r.previous}) to "
                    f"{median(new):.2f} ({r.version}), more than the expected {expected:.2f} + "
                    f"max_jump {self.cfg.max_jump:.2f}"
                )
        return None

    def _collapsed(self, new: list[float], old: list[float]) -> str | None:
        """How the ``new`` fills spread far less than the ``old`` ones (None: they do not).

        A flat-lined model (one value whatever it sees) can sit within ``expected + max_jump`` of
        every canary's old median and pass the jump check; across bins at different fills, and over
        time, real readings vary. Judged on three fills or more, when the old ones spread at least
        ``min_spread``; both the shadow soak (the two models on the same frames) and the canaries'
        readings before and after the switch use it.
        """
        if len(new) < 3 or len(old) < 3:
            return None
        spread_new, spread_old = pstdev(new), pstdev(old)
        if spread_old < self.cfg.min_spread or spread_new >= self.cfg.min_spread_ratio * spread_old:
            return None
        return (
            f"a spread of {spread_new:.3f} ({min(new):.2f}..{max(new):.2f}) where the previous model "
            f"spread {spread_old:.3f} ({min(old):.2f}..{max(old):.2f}; min_spread_ratio "
            f"{self.cfg.min_spread_ratio:g})"
        )

    def _collapsed_readings(
        self, r: Rollout, samples: dict[str, tuple[list[float], list[float]]]
    ) -> str | None:
        """The canaries' first readings on the candidate, pooled, against their last ones before it."""
        new = [f for n, _ in samples.values() for f in n]
        old = [f for _, o in samples.values() for f in o]
        spread = self._collapsed(new, old)
        if spread is None:
            return None
        return (
            f"canaries {', '.join(sorted(samples))}: readings on {r.version} ({r.previous} before) collapsed "
            f"to {spread}: a model reading nearly the same whatever it sees"
        )

    def _last_model_event(self, s: Session, bin_id: str, since: int) -> DeviceEvent | None:
        return (
            s.execute(
                select(DeviceEvent)
                .where(
                    DeviceEvent.bin_id == bin_id,
                    DeviceEvent.kind == "model",
                    DeviceEvent.received_at >= since,
                )
                .order_by(DeviceEvent.ts.desc(), DeviceEvent.id.desc())
            )
            .scalars()
            .first()
        )

    def _not_switched(self, s: Session, r: Rollout, now: int) -> str | None:
        """Past ``canary_deadline_s``, the canaries with no reading on the new model, and why (their
        last model event: a refusal being retried, or nothing heard at all); None while in time."""
        if now - r.started_at < self.cfg.canary_deadline_s * 1000:
            return None
        late = []
        for b in r.canary_bins:
            switched = s.execute(
                select(Reading.id)
                .where(Reading.bin_id == b, Reading.model == r.version, Reading.received_at >= r.started_at)
                .limit(1)
            ).first()
            if switched is not None:
                continue
            ev = self._last_model_event(s, b, r.started_at)
            heard = f"last model event {ev.state}: {ev.detail or ''}".strip() if ev else "no model event"
            late.append(f"{b} ({heard})")
        if not late:
            return None
        return (
            f"canaries not switched to {r.version} within canary_deadline_s "
            f"{self.cfg.canary_deadline_s:g} s: " + "; ".join(late)
        )

    def _halt(self, s: Session, r: Rollout, why: str, now: int) -> None:
        r.state, r.halt_reason, r.updated_at = "halted", why[:500], now
        previous = s.get(ModelRecord, r.previous) if r.previous else None
        try:
            pub = self._publisher()
            self._announce(s, list(r.canary_bins), self._release(s, previous, r.id), r.id, pub)
        except RolloutError as exc:
            # The halt itself must stick (nothing more is announced); the canaries' way back is retried
            # by hand with rollback once the broker or the file is back.
            r.halt_reason = f"{why}; canaries not sent back: {exc}"[:500]
        self._activate(s, previous.version if previous else None)
        logger.error("rollout of %s halted: %s", r.version, why)

    def tick(self) -> None:
        """Advance or halt the live rollout; announce the active model to bins that appeared since."""
        with self.lock, self.sessions() as s, s.begin():
            now = now_ms()
            for r in self._live(s):
                if r.state == "canary":
                    why, ready = self._canary_verdict(s, r, now)
                    if why is not None:
                        self._halt(s, r, why, now)
                        continue
                    if not ready:
                        continue
                    r.state, r.updated_at, r.all_at = "all", now, now
                    logger.info("canaries of %s are healthy: announcing to every bin", r.version)
                record = s.get(ModelRecord, r.version)
                told = {a.bin_id: a.version for a in s.execute(select(ModelAnnouncement)).scalars()}
                todo = [b for b in self._bins(s) if told.get(b) != r.version]
                if record is not None and todo:
                    self._announce(s, todo, self._current_release(s, r, record), r.id, self._publisher())

    def status(self) -> dict[str, Any]:
        """``{active, rollback_to, release_number, rollout, history, bins: [{bin_id, announced, running,
        event}]}``; ``rollback_to`` is where a rollback would go now (None: it would be refused)."""
        with self.sessions() as s:
            active = s.execute(select(ModelRecord.version).where(ModelRecord.active.is_(True))).scalar()
            history = [
                rollout_dict(r)
                for r in s.execute(select(Rollout).order_by(Rollout.id.desc()).limit(20)).scalars()
            ]
            told = {a.bin_id: a.version for a in s.execute(select(ModelAnnouncement)).scalars()}
            running: dict[str, str | None] = {b: m for b, m in s.execute(select(Device.bin_id, Device.model))}
            bins = [
                {
                    "bin_id": b,
                    "announced": told.get(b) or None,
                    "running": running.get(b),
                    "event": _event_dict(self._last_model_event(s, b, 0)),
                }
                for b in self._bins(s)
            ]
            last_number = s.execute(select(func.max(ReleaseRecord.number))).scalar()
            rollback_to = self._rollback_preview(s)
        return {
            "active": active,
            "rollback_to": rollback_to,
            "release_number": last_number,
            "rollout": history[0] if history else None,
            "history": history,
            "bins": bins,
        }
