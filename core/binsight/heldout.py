"""How sure a held-out comparison is: the paired difference of two models' errors and its interval.

Both models run on the same held-out labels, so what decides is the per-image difference of their
absolute errors (candidate minus active: negative is better). Its mean says which is better; the
95% interval says whether the held-out set can tell. Images of one bin resemble each other, so the
interval resamples whole bins (a cluster bootstrap) when there are at least :data:`MIN_GROUPS`
of them, and single images otherwise, saying so: then the interval is too narrow, and reads as
such. Pure Python, seeded: the server, the trainer and a test get the same numbers.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

__all__ = ["MIN_GROUPS", "describe", "paired_difference"]

#: Fewer held-out bins than this: the bootstrap resamples images, not bins.
MIN_GROUPS = 3
ROUNDS = 2000


def _quantile(sorted_values: list[float], q: float) -> float:
    pos = q * (len(sorted_values) - 1)
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def paired_difference(
    candidate_errors: Sequence[float],
    active_errors: Sequence[float],
    groups: Sequence[str],
    *,
    level: float = 0.95,
    seed: int = 0,
) -> dict[str, Any]:
    """``{n, bins, mean_diff, ci: [lo, hi], level, resampled}`` of ``candidate - active`` errors.

    ``groups`` names each image's bin. ``resampled`` is ``"bins"`` or ``"images"`` (fewer than
    :data:`MIN_GROUPS` bins).

    Raises
    ------
    ValueError
        Sequences of different lengths, or none at all.
    """
    n = len(candidate_errors)
    if n == 0 or len(active_errors) != n or len(groups) != n:
        raise ValueError(
            f"paired errors need equal, non-empty sequences ({n}, {len(active_errors)}, {len(groups)})"
        )
    diffs = [float(c) - float(a) for c, a in zip(candidate_errors, active_errors, strict=True)]
    by_group: dict[str, list[float]] = defaultdict(list)
    for g, d in zip(groups, diffs, strict=True):
        by_group[str(g)].append(d)
    clusters = list(by_group.values()) if len(by_group) >= MIN_GROUPS else [[d] for d in diffs]
    rng = random.Random(seed)
    means = []
    for _ in range(ROUNDS):
        total, count = 0.0, 0
        for _ in range(len(clusters)):
            c = clusters[rng.randrange(len(clusters))]
            total += sum(c)
            count += len(c)
        means.append(total / count)
    means.sort()
    tail = (1.0 - level) / 2.0
    return {
        "n": n,
        "bins": len(by_group),
        "mean_diff": sum(diffs) / n,
        "ci": [_quantile(means, tail), _quantile(means, 1.0 - tail)],
        "level": level,
        "resampled": "bins" if len(by_group) >= MIN_GROUPS else "images",
    }


def describe(diff: dict[str, Any], metric: str = "MAE") -> str:
    """One line: ``MAE difference -0.020 (95% CI -0.031..-0.009, 48 labels, 4 bins resampled)``."""
    lo, hi = diff["ci"]
    how = (
        f"{diff['bins']} bins resampled"
        if diff["resampled"] == "bins"
        else (f"images resampled: only {diff['bins']} bins, so the interval is too narrow")
    )
    return (
        f"{metric} difference {diff['mean_diff']:+.4f} ({diff['level']:.0%} CI {lo:+.4f}..{hi:+.4f}, "
        f"{diff['n']} labels, {how})"
    )
