"""Each bin's smoothed fill: a small online filter that only rises between collections.

A camera's fill readings are noisy (the fill model's error, MAE 0.05-0.15) and now and then wild (a
bag over the lens, a glare). The true fill of a bin only rises until it is emptied, so the server keeps,
beside every raw reading, a smoothed value that never falls between collections. It is computed
online, one reading at a time, from a few numbers kept per bin (:class:`SmoothState`, stored on the
device row): O(1) per reading, whatever the length of the cycle.

Per reading (time order; a reading older than the state's newest is left unsmoothed):

1. **Predict** with a local linear trend (level and rate, a 2-state Kalman filter; rate >= 0).
2. **Gate**: a reading further than ``gate_sd`` predicted standard deviations from the prediction
   (at least ``min_gate``) is *suspect* and does not move the filter. One suspect reading is an outlier;
   ``confirm`` suspect readings in a row on the same side are a real jump: upwards (a bag of rubbish)
   the level moves there; downwards the bin was emptied or the level corrects down (below).
3. **Collection**: when the median of the last ``w`` readings lies ``min_drop`` (``[forecast]
   min_drop``) or more below the level before them, the bin was emptied: the filter restarts from those
   readings and the monotone floor resets. ``w`` grows with the camera's noise (4 readings at MAE 0.05
   and 0.10, up to 9 at 0.15) so that noise alone rarely looks like a drop; two suspect readings in a
   row that lie ``min_drop`` below are one too.
4. **Update** the level and rate with the reading; the shown value is ``max(previous shown, level)``,
   clipped to 0..1: it never falls between collections. The camera's noise is estimated from the
   innovations (an exponential average), so one setting serves good and poor models. A reading of
   1.0 (the camera's end of scale) counts as a little beyond, so a full bin settles at full.

A reading held back (suspect, or part of a drop not yet confirmed) shows the value before it: the
displayed fill drops ``w - 1`` readings after a collection, not at its first low reading.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from binsight.server.config import ForecastConfig

__all__ = ["SmoothParams", "SmoothState", "SmoothStep", "smooth_series", "step"]

_HOUR_MS = 3_600_000.0
#: Recent readings kept per bin: the longest drop window.
_RECENT = 9
#: Readings this near 1 are at the end of the camera's scale (clipped).
_END = 1e-3
#: Readings a cycle's level must rest on before a drop from it can count as a collection.
_SETTLED = 3
#: The assumed noise counts as this many readings while a bin has few (one jump must not swamp it).
_NOISE_PRIOR_N = 10


@dataclass(frozen=True, slots=True)
class SmoothParams:
    """The filter's settings (defaults measured in ``bench/server_fill_smoothing.py``)."""

    #: A sustained drop this large is a collection (``[forecast] min_drop``).
    min_drop: float = 0.3
    #: Random walk of the level, fill per sqrt(hour): real filling is lumpy (bags, busy hours).
    level_walk: float = 0.01
    #: Random walk of the rate, fill per day per sqrt(day).
    rate_walk: float = 0.1
    #: The camera noise (sd) assumed before a bin has readings, and its floor and ceiling.
    noise0: float = 0.08
    noise_min: float = 0.02
    noise_max: float = 0.3
    #: Weight of each new innovation in the noise estimate.
    noise_alpha: float = 0.01
    #: Suspect beyond this many predicted standard deviations, and never nearer than ``min_gate``.
    gate_sd: float = 3.0
    min_gate: float = 0.1
    #: Suspect readings in a row (same side) that make a jump, not an outlier.
    confirm: int = 2
    #: Prior rate uncertainty of a new cycle, fill per day.
    rate_sd0: float = 0.5

    def __post_init__(self) -> None:
        if not 0.0 < self.min_drop <= 1.0:
            raise ValueError(f"min_drop must be within (0, 1], got {self.min_drop}")
        if self.confirm < 2:
            raise ValueError(f"confirm must be at least 2, got {self.confirm}")
        if not 0.0 < self.noise_min <= self.noise0 <= self.noise_max:
            raise ValueError("noise_min <= noise0 <= noise_max must hold, all positive")

    @classmethod
    def from_config(cls, cfg: ForecastConfig) -> SmoothParams:
        """The settings a server uses: its ``[forecast] min_drop``, the rest as measured."""
        return cls(min_drop=cfg.min_drop)

    def window(self, noise: float) -> int:
        """Readings whose median must show a drop: enough that noise alone is 3.5 sd short of it."""
        need = (3.5 * 1.25 * noise / self.min_drop) ** 2
        return max(4, min(_RECENT, math.ceil(need)))


@dataclass(frozen=True, slots=True)
class SmoothState:
    """One bin's filter between readings (stored as JSON on ``devices.smooth``)."""

    ts: int  # the newest reading seen (folded in or held back), epoch ms
    shown: float  # the smoothed fill shown: monotone within the cycle
    level: float  # the filter's level at ``ts_level``
    rate: float  # fill per hour, >= 0
    p_ll: float
    p_lr: float
    p_rr: float
    noise: float  # estimated camera noise sd
    mean_abs: float  # running mean of |innovation| (capped) the noise comes from
    n: int  # readings seen, for the noise estimate's warm-up
    ts_level: int  # when ``level`` holds (the newest reading folded in)
    #: The recent readings of this cycle: ``[ts, fill, level predicted before it, suspect side,
    #: 1 if that level rested on at least 3 readings of the cycle (else it cannot have dropped)]``.
    recent: list[list[float]] = field(default_factory=list)
    #: Readings folded into this cycle.
    cycle_n: int = 0

    def to_json(self) -> dict[str, Any]:
        # Shallow, not dataclasses.asdict: its deep copy of ``recent`` cost more than the filter itself.
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> SmoothState | None:
        if not data:
            return None
        return cls(**data)


@dataclass(frozen=True, slots=True)
class SmoothStep:
    """What one reading did: the state after it, its smoothed fill, and whether it started a cycle."""

    state: SmoothState
    shown: float
    collection_ts: int | None = None


def _start(
    ts: int,
    fill: float,
    p: SmoothParams,
    recent: list[list[float]],
    *,
    rate: float,
    noise: float,
    mean_abs: float,
    n: int,
) -> SmoothState:
    rate_sd = p.rate_sd0 / 24.0
    return SmoothState(
        ts=ts,
        shown=min(1.0, max(0.0, fill)),
        level=fill,
        rate=rate,
        p_ll=noise * noise,
        p_lr=0.0,
        p_rr=rate_sd * rate_sd,
        noise=noise,
        mean_abs=mean_abs,
        n=n,
        ts_level=ts,
        recent=recent,
        cycle_n=max(1, len(recent)),
    )


def _median(values: list[float]) -> float:
    v = sorted(values)
    n = len(v)
    return v[n // 2] if n % 2 else 0.5 * (v[n // 2 - 1] + v[n // 2])


def _collection(
    state: SmoothState, tail: list[list[float]], ref: float, before: float, p: SmoothParams
) -> SmoothStep:
    """Restart the filter after a collection found in ``tail`` (the readings showing the drop).

    The collection is at the largest single step down among the readings half a drop below ``ref``
    (``before``: the reading before the tail), as :func:`detect_collections` places it.
    """
    prev = [before] + [e[1] for e in tail[:-1]]
    low = [i for i, e in enumerate(tail) if e[1] <= ref - p.min_drop / 2]
    k = max(low, key=lambda i: (prev[i] - tail[i][1], -i))
    after = tail[k:]
    start = _median([e[1] for e in after])
    ts = int(tail[-1][0])
    new = _start(
        ts,
        start,
        p,
        [[e[0], e[1], start, 0, 0] for e in after],
        rate=state.rate,
        noise=state.noise,
        mean_abs=state.mean_abs,
        n=state.n,
    )
    return SmoothStep(new, new.shown, collection_ts=int(after[0][0]))


# long: one reading through the filter, each case (first, wild, jump, collection, rise) in test order
def step(state: SmoothState | None, ts: int, fill: float, p: SmoothParams) -> SmoothStep | None:
    """Fold one usable reading into ``state``; None when it is not newer than the state (left unsmoothed)."""
    if state is None:
        # A bin's first reading: no level before it to have dropped from (it is not in ``recent``).
        s0 = _start(ts, fill, p, [], rate=0.0, noise=p.noise0, mean_abs=p.noise0 / 1.2533, n=0)
        return SmoothStep(s0, s0.shown)
    if ts <= state.ts:
        return None
    # Predict from the newest folded reading (held-back ones did not move the filter).
    dt = (ts - state.ts_level) / _HOUR_MS
    q_l = p.level_walk**2 * dt
    q_r = (p.rate_walk / 24.0) ** 2 / 24.0 * dt
    level = state.level + state.rate * dt
    p_ll = state.p_ll + 2 * dt * state.p_lr + dt * dt * state.p_rr + q_l + q_r * dt * dt / 3
    p_lr = state.p_lr + dt * state.p_rr + q_r * dt / 2
    p_rr = state.p_rr + q_r
    r = state.noise * state.noise
    s = p_ll + r
    # A camera reports at most a full bin: a reading of 1.0 says "full or beyond". It counts as the mean
    # of the noise's tail beyond (0.8 sd), so a bin at or past full settles at 1.0, not at the clipped
    # readings' mean (1 - 0.4 sd), and can reach overflow_fill. (Not at 0: readings clipped there
    # would look like a drop, and a few points too high just after emptying do no harm.)
    if fill >= 1.0 - _END:
        fill = max(fill, 1.0 + 0.8 * state.noise)
    v = fill - level
    gate = max(p.min_gate, p.gate_sd * math.sqrt(s))
    side = 0 if abs(v) <= gate else (1 if v > 0 else -1)
    # The camera's noise: a running mean of |innovation| over the readings within the gate (a jump or a
    # wild reading must not inflate it; cutting at 3 sd biases it by 1%), scaled by noise / predicted
    # sd (the innovation also holds the prediction's own error). The assumed noise weighs as
    # ``_NOISE_PRIOR_N`` readings at first.
    noise, mean_abs, n = state.noise, state.mean_abs, state.n
    if side == 0:
        alpha = max(p.noise_alpha, 1.0 / (n + _NOISE_PRIOR_N))
        scale = math.sqrt(r / s)
        mean_abs = (1 - alpha) * mean_abs + alpha * min(abs(v), p.gate_sd * math.sqrt(s)) * scale
        noise = min(p.noise_max, max(p.noise_min, 1.2533 * mean_abs))
        n += 1
    settled = 1 if state.cycle_n >= _SETTLED else 0
    recent = [*state.recent, [ts, fill, level, side, settled]][-_RECENT:]

    # 3. A drop: the last w readings' median lies min_drop below the level predicted before the first.
    w = p.window(noise)
    # Only looked for when the newest reading lies half a drop below (a high one is held or folded in,
    # and the drop is found at the next low one): the median is then sorted for few readings.
    if len(recent) >= w and recent[-w][4] and fill <= recent[-w][2] - p.min_drop / 2:
        tail = recent[-w:]
        ref = tail[0][2]
        if _median([e[1] for e in tail]) <= ref - p.min_drop:
            before = recent[-w - 1][1] if len(recent) > w else ref
            return _collection(replace(state, noise=noise, mean_abs=mean_abs, n=n), tail, ref, before, p)

    # 2. A jump: the last ``confirm`` readings all suspect on the same side.
    if side != 0:
        run = recent[-p.confirm :]
        values = [e[1] for e in run]
        if len(run) < p.confirm or any(e[3] != side for e in run) or max(values) - min(values) > gate:
            # Held back: maybe an outlier.
            return SmoothStep(replace(state, ts=ts, recent=recent), state.shown)
        to = _median(values)
        if side < 0 and run[0][4] and to <= run[0][2] - p.min_drop:
            before = recent[-len(run) - 1][1] if len(recent) > len(run) else run[0][2]
            return _collection(replace(state, noise=noise, mean_abs=mean_abs, n=n), run, run[0][2], before, p)
        # Upwards the floor stays; downwards (less than a collection) the level was too high: it resets.
        shown = max(state.shown, to) if side > 0 else to
        jumped = replace(
            state,
            ts=ts,
            ts_level=ts,
            level=to,
            shown=min(1.0, max(0.0, shown)),
            p_ll=r,
            p_lr=0.0,
            p_rr=p_rr,
            recent=[[e[0], e[1], to, 0, settled] for e in run],
            cycle_n=state.cycle_n + 1,
        )
        return SmoothStep(jumped, jumped.shown)

    # 4. Kalman update with the reading.
    k_l, k_r = p_ll / s, p_lr / s
    level += k_l * v
    rate = state.rate + k_r * v
    p_ll, p_lr, p_rr = (1 - k_l) * p_ll, (1 - k_l) * p_lr, p_rr - k_r * p_lr
    rate = max(rate, 0.0)
    shown = min(1.0, max(0.0, state.shown, level))
    new = SmoothState(
        ts=ts,
        shown=shown,
        level=level,
        rate=rate,
        p_ll=p_ll,
        p_lr=p_lr,
        p_rr=p_rr,
        noise=noise,
        mean_abs=mean_abs,
        n=n,
        ts_level=ts,
        recent=recent,
        cycle_n=state.cycle_n + 1,
    )
    return SmoothStep(new, shown)


def smooth_series(
    ts: list[int], fill: list[float], p: SmoothParams, state: SmoothState | None = None
) -> tuple[list[float | None], list[int], SmoothState | None]:
    """Run the filter over readings in time order: smoothed fills (None: not newer), collections, state."""
    out: list[float | None] = []
    cuts: list[int] = []
    for t, f in zip(ts, fill, strict=True):
        st = step(state, t, f, p)
        if st is None:
            out.append(None)
            continue
        state = st.state
        out.append(st.shown)
        if st.collection_ts is not None:
            cuts.append(st.collection_ts)
    return out, cuts, state
