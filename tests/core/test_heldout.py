"""binsight.heldout: the paired difference of two models' errors and its bootstrap interval."""

from __future__ import annotations

import random

import pytest

from binsight.heldout import describe, paired_difference


def test_a_clearly_better_candidate_has_an_interval_below_zero() -> None:
    """Candidate errors 0.03 lower on every image of 5 bins: mean -0.03, the whole interval below 0."""
    rng = random.Random(1)
    act = [0.08 + rng.uniform(-0.02, 0.02) for _ in range(50)]
    cand = [a - 0.03 for a in act]
    bins = [f"b{i % 5}" for i in range(50)]
    d = paired_difference(cand, act, bins)
    assert d["mean_diff"] == pytest.approx(-0.03) and d["ci"][1] < 0 and d["resampled"] == "bins"
    assert d == paired_difference(cand, act, bins), "seeded: the same numbers every time"
    assert "5 bins resampled" in describe(d)


def test_a_coin_flip_straddles_zero_and_few_bins_resample_images() -> None:
    """Differences of both signs around 0: the interval holds 0. Two bins: images are resampled,
    and the description says the interval is too narrow."""
    rng = random.Random(2)
    diffs = [rng.uniform(-0.05, 0.05) for _ in range(12)]
    d = paired_difference([0.1 + x for x in diffs], [0.1] * 12, ["a"] * 6 + ["b"] * 6)
    assert d["ci"][0] < 0 < d["ci"][1] and d["resampled"] == "images" and d["bins"] == 2
    assert "too narrow" in describe(d)


def test_unequal_inputs_are_refused() -> None:
    with pytest.raises(ValueError, match="equal, non-empty"):
        paired_difference([0.1], [0.1, 0.2], ["a"])
