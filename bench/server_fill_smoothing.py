"""The server's fill smoothing on simulated camera noise: what error it removes (issue #16).

Simulated bins (labelled as such in every figure): each has its own filling rate (log-normal around
0.2 of the bin per day), busy and quiet hours, a bag now and then (a jump of 0.02-0.08), and is emptied
on service-day mornings when above 0.75, or now and then at any level from 0.35 (a collection the
planner asked for). The cameras read every ``--interval-min`` with the fill model's error (Gaussian,
``sd = mae * sqrt(pi / 2)``, as the twin's cameras: ``binsight.server.twin.sensing``), ``--wild`` of the
readings wild (uniform 0..1: a bag on the lens, glare) and ``--unusable`` of the frames unusable
(no fill). Per model error (MAE 0.05 / 0.10 / 0.15) it prints one JSON line with:

- ``mae``: mean absolute error against the true fill over every usable reading, of the raw reading, the
  server's online filter (``binsight.server.forecast.smoothing``: what each reading's ``fill_smooth`` is)
  and, for comparison, isotonic regression of each cycle fitted afterwards on the whole cycle
  (``isotonic_after``: not available online) and as it stands at each reading (``isotonic_online``: the
  last value of the fit on the cycle so far; its boundary value is the max of the suffix means);
- ``newest``: the error of the value a plan, an alert or the map would use at a random time (every 6 h):
  the newest raw reading, the filter's value, the online isotonic value, and the forecast's fitted level
  (``binsight.server.forecast.model``; Theil–Sen over the cycle) -- mean absolute, P90;
- ``false_alerts``: how often the value rises through ``overflow_fill`` (0.98) while the true fill is
  below 0.9, and through the threshold (0.8) while the true fill is below 0.7, per 100 bin-days;
- ``overflow_seen``: per episode of the true fill at or above 0.98, how long until the value got there
  (median, P90 hours) and the episodes it never reached before the bin was emptied;
- ``collections``: precision and recall (within 3 readings of the true emptying) of the server's
  offline detector on the raw readings (``detect_collections``: what the forecast and chart use) and of
  the filter's own online detection.

Run: ``nice .venv/bin/python bench/server_fill_smoothing.py [--bins 40] [--days 28] [--seed 0]``
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import time

import numpy as np
from numpy.typing import NDArray

from binsight.server.config import ForecastConfig
from binsight.server.forecast.collections import detect_collections
from binsight.server.forecast.model import forecast_bin
from binsight.server.forecast.smoothing import SmoothParams, smooth_series

_HOUR_MS = 3_600_000
_DAY_MS = 86_400_000
T0 = 1_767_225_600_000  # 2026-01-01T00:00Z, a Thursday


def simulate(
    n_bins: int, days: int, interval_min: int, seed: int
) -> list[tuple[NDArray[np.int64], NDArray[np.float64], list[int]]]:
    """Per bin: reading times, the true fill there, and the indices of the true collections."""
    rng = np.random.default_rng([seed, 16])
    step = interval_min * 60_000
    ts = T0 + np.arange(0, days * _DAY_MS, step, dtype=np.int64)
    hours = (ts // _HOUR_MS) % 24
    weekday = ((ts // _DAY_MS) + 3) % 7
    diurnal = np.where((hours >= 7) & (hours < 21), 1.5, 0.125)
    out = []
    for _ in range(n_bins):
        base = float(rng.lognormal(math.log(0.2), 0.5))
        day_noise = np.clip(rng.normal(1.0, 0.2, days + 1), 0.2, 2.0)
        rate = base * diurnal * day_noise[((ts - T0) // _DAY_MS).astype(int)] * (step / _DAY_MS)
        bags = rng.random(len(ts)) < 0.3 * step / _DAY_MS
        bag = rng.uniform(0.02, 0.08, len(ts))
        extra = rng.random(len(ts)) < 0.1 * step / _DAY_MS  # an asked-for collection, ~ every 10 days
        level = float(rng.uniform(0.0, 0.5))
        fill = np.empty(len(ts))
        cuts = []
        for i in range(len(ts)):
            morning = hours[i] == 8 and ts[i] % _HOUR_MS == 0 and weekday[i] < 5
            if (morning and level > 0.75) or (extra[i] and level > 0.35):
                level = float(rng.uniform(0.0, 0.06))
                cuts.append(i)
            level = min(1.2, level + rate[i] + (bag[i] if bags[i] else 0.0))
            fill[i] = level
        out.append((ts, fill, cuts))
    return out


def observe(
    true: NDArray[np.float64], mae: float, wild: float, unusable: float, rng: np.random.Generator
) -> NDArray[np.float64]:
    """What the camera reports: NaN for an unusable frame; a camera sees at most a full bin."""
    sd = mae * math.sqrt(math.pi / 2)
    seen = np.minimum(true, 1.0) + rng.normal(0.0, sd, len(true))
    w = rng.random(len(true)) < wild
    seen[w] = rng.random(int(w.sum()))
    seen = np.clip(seen, 0.0, 1.0)
    seen[rng.random(len(true)) < unusable] = np.nan
    return seen


def isotonic(y: NDArray[np.float64], cuts: list[int]) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Isotonic (non-decreasing, least squares) fit per cycle: fitted afterwards, and online (last value).

    Pool-adjacent-violators with a stack of blocks: O(1) amortised per reading.
    """
    after = np.empty(len(y))
    online = np.empty(len(y))
    bounds = [0, *cuts, len(y)]
    for a, b in itertools.pairwise(bounds):
        blocks: list[list[float]] = []  # [sum, count]
        for i in range(a, b):
            blocks.append([float(y[i]), 1.0])
            while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] > blocks[-1][0] / blocks[-1][1]:
                s, n = blocks.pop()
                blocks[-1][0] += s
                blocks[-1][1] += n
            online[i] = blocks[-1][0] / blocks[-1][1]
        i = a
        for s, n in blocks:
            after[i : i + int(n)] = s / n
            i += int(n)
    return after, online


def _pr(found: list[int], truth: list[int], tol_ms: int) -> tuple[int, int, int]:
    """True positives, found, true (a found collection matches at most one true one)."""
    left = sorted(truth)
    tp = 0
    for f in sorted(found):
        hit = next((t for t in left if abs(t - f) <= tol_ms), None)
        if hit is not None:
            left.remove(hit)
            tp += 1
    return tp, len(found), len(truth)


def _false_crossings(
    est: NDArray[np.float64], true: NDArray[np.float64], level: float, truth_below: float
) -> int:
    """Times ``est`` rises through ``level`` (from below) while the true fill is below ``truth_below``."""
    above = est >= level
    rises = np.nonzero(above[1:] & ~above[:-1])[0] + 1
    return int(np.sum(true[rises] < truth_below))


def _overflow_delays(
    est: NDArray[np.float64], true: NDArray[np.float64], t: NDArray[np.int64], level: float
) -> tuple[list[float], int]:
    """Per episode of the true fill at or above ``level``: hours until ``est`` got there too; misses."""
    delays: list[float] = []
    missed = 0
    inside = true >= level
    starts = np.nonzero(inside & ~np.concatenate([[False], inside[:-1]]))[0]
    for a in starts.tolist():
        b = a
        while b < len(true) and inside[b]:
            b += 1
        hit = np.nonzero(est[a:b] >= level)[0]
        if len(hit):
            delays.append((int(t[a + int(hit[0])]) - int(t[a])) / _HOUR_MS)
        else:
            missed += 1
    return delays, missed


def run(args: argparse.Namespace, mae: float, params: SmoothParams) -> dict[str, object]:
    rng = np.random.default_rng([args.seed, 16, int(mae * 1000)])
    bins = simulate(args.bins, args.days, args.interval_min, args.seed)
    cfg = ForecastConfig()
    err: dict[str, list[NDArray[np.float64]]] = {
        "raw": [],
        "filter": [],
        "isotonic_after": [],
        "isotonic_online": [],
    }
    newest: dict[str, list[float]] = {"raw": [], "filter": [], "isotonic_online": [], "forecast_level": []}
    false_over = {"raw": 0, "filter": 0}
    false_full = {"raw": 0, "filter": 0}
    pr = {"raw_detector": [0, 0, 0], "filter": [0, 0, 0]}
    over_delay: dict[str, list[float]] = {"raw": [], "filter": []}
    over_missed = {"raw": 0, "filter": 0}
    tol = 3 * args.interval_min * 60_000
    seconds = 0.0
    n_readings = 0
    for ts, true, cuts in bins:
        obs = observe(true, mae, args.wild, args.unusable, rng)
        ok = ~np.isnan(obs)
        t, y, tr = ts[ok], obs[ok], np.minimum(true[ok], 1.0)
        t0 = time.process_time()
        shown, found, _ = smooth_series(t.tolist(), y.tolist(), params)
        seconds += time.process_time() - t0
        n_readings += len(t)
        f = np.array([np.nan if v is None else v for v in shown])
        raw_cuts = detect_collections(y, cfg.min_drop)
        iso_after, iso_online = isotonic(y, raw_cuts)
        err["raw"].append(np.abs(y - tr))
        err["filter"].append(np.abs(f - tr))
        err["isotonic_after"].append(np.abs(iso_after - tr))
        err["isotonic_online"].append(np.abs(iso_online - tr))
        true_cut_ts = [int(ts[c]) for c in cuts]
        for name, got in (("raw_detector", [int(t[c]) for c in raw_cuts]), ("filter", found)):
            for k, v in enumerate(_pr(got, true_cut_ts, tol)):
                pr[name][k] += v
        for name, est in (("raw", y), ("filter", f)):
            false_over[name] += _false_crossings(est, tr, 0.98, 0.9)
            false_full[name] += _false_crossings(est, tr, 0.8, 0.7)
            d, m = _overflow_delays(est, np.minimum(true[ok], 1.2), t, 0.98)
            over_delay[name] += d
            over_missed[name] += m
        # Newest value at a time a plan or the map asks, every 6 h after the first day.
        for cut in range(T0 + _DAY_MS, int(t[-1]), 6 * _HOUR_MS):
            k = int(np.searchsorted(t, cut, side="right")) - 1
            truth = float(np.minimum(np.interp(cut, ts, true), 1.0))
            newest["raw"].append(abs(float(y[k]) - truth))
            newest["filter"].append(abs(float(f[k]) - truth))
            newest["isotonic_online"].append(abs(float(iso_online[k]) - truth))
            if args.forecast and cut % _DAY_MS == 12 * _HOUR_MS:  # the forecast is slow: once a day, at noon
                fc = forecast_bin(t[: k + 1], y[: k + 1], cut, cfg)
                if fc is not None:
                    newest["forecast_level"].append(abs(fc.level - truth))

    def mae_of(parts: list[NDArray[np.float64]]) -> float:
        return round(float(np.nanmean(np.concatenate(parts))), 4)

    def stats(v: list[float]) -> dict[str, float]:
        a = np.array(v)
        return {"mae": round(float(a.mean()), 4), "p90": round(float(np.percentile(a, 90)), 4), "n": len(a)}

    bin_days = args.bins * args.days / 100.0
    return {
        "simulated": True,
        "model_mae": mae,
        "bins": args.bins,
        "days": args.days,
        "interval_min": args.interval_min,
        "wild": args.wild,
        "unusable": args.unusable,
        "seed": args.seed,
        "mae": {k: mae_of(v) for k, v in err.items()},
        "newest": {k: stats(v) for k, v in newest.items() if v},
        "false_alerts_per_100_bin_days": {
            "overflow": {k: round(v / bin_days, 2) for k, v in false_over.items()},
            "full": {k: round(v / bin_days, 2) for k, v in false_full.items()},
        },
        "overflow_seen": {
            k: {
                "median_delay_h": round(float(np.median(v)), 2) if v else None,
                "p90_delay_h": round(float(np.percentile(v, 90)), 2) if v else None,
                "missed": over_missed[k],
                "episodes": len(v) + over_missed[k],
            }
            for k, v in over_delay.items()
        },
        "collections": {
            k: {
                "precision": round(tp / max(n_found, 1), 3),
                "recall": round(tp / max(n_true, 1), 3),
                "true": n_true,
            }
            for k, (tp, n_found, n_true) in pr.items()
        },
        "filter_cpu_us_per_reading": round(seconds / max(n_readings, 1) * 1e6, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bins", type=int, default=40)
    ap.add_argument("--days", type=int, default=28)
    ap.add_argument("--interval-min", type=int, default=10, help="the device default: 600 s")
    ap.add_argument("--mae", type=float, nargs="+", default=[0.05, 0.10, 0.15])
    ap.add_argument("--wild", type=float, default=0.02, help="share of readings that are wild (uniform 0..1)")
    ap.add_argument("--unusable", type=float, default=0.03, help="share of frames with no fill")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--forecast", action="store_true", help="also score the forecast's fitted level (slow)")
    ap.add_argument("--level-walk", type=float, default=SmoothParams().level_walk)
    ap.add_argument("--rate-walk", type=float, default=SmoothParams().rate_walk)
    args = ap.parse_args()
    params = SmoothParams(level_walk=args.level_walk, rate_walk=args.rate_walk)
    for mae in args.mae:
        out = run(args, mae, params)
        out["params"] = {"level_walk": params.level_walk, "rate_walk": params.rate_walk}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
