"""The promotion gate: refuses worse candidates, comparisons against another model, and missing ones."""

from __future__ import annotations

from typing import Any

import pytest

from binsight.server.rollout.gate import judge


def _report(cand: float, act: float, active: str = "a1", n: int = 12) -> dict[str, Any]:
    return {
        "comparison": {
            "metric": "mae",
            "lower_is_better": True,
            "n": n,
            "test_bins": ["bin-9"],
            "candidate": {"version": "c1", "mae": cand},
            "active": {"version": active, "mae": act},
        }
    }


def test_first_model_needs_no_comparison() -> None:
    """With nothing active there is nothing to be worse than."""
    assert judge("c1", None, None).ok


def test_better_or_equal_passes_and_says_why() -> None:
    """Equal or lower MAE on the same held-out labels passes; the reason quotes both figures."""
    res = judge("c1", _report(0.05, 0.08), "a1")
    assert res.ok and "0.0500 vs active 0.0800" in res.reason and "bin-9" in res.reason
    assert judge("c1", _report(0.08, 0.08), "a1").ok


@pytest.mark.parametrize(
    ("report", "active", "words"),
    [
        (_report(0.09, 0.08), "a1", "worse"),
        (_report(0.05, 0.08, active="a0"), "a1", "compared with a0"),
        ({}, "a1", "no comparison"),
        (None, "a1", "no comparison"),
        (_report(0.05, 0.08, n=0), "a1", "n=0"),
        (_report(0.05, 0.08), "c1", "already the active"),
        (
            {"comparison": {**_report(0.05, 0.08)["comparison"], "candidate": {"version": "x", "mae": 0.0}}},
            "a1",
            "about x",
        ),
    ],
)
def test_refusals(report: dict[str, Any] | None, active: str, words: str) -> None:
    """Worse, compared with another model, no comparison, empty held-out set, already active, a
    comparison about another candidate: refused."""
    res = judge("c1", report, active)
    assert not res.ok and words in res.reason


def test_tolerance_and_accuracy_direction() -> None:
    """``tolerance`` admits a slightly worse MAE; for accuracy, higher is better."""
    assert judge("c1", _report(0.085, 0.08), "a1", tolerance=0.01).ok
    acc = {
        "comparison": {
            "metric": "accuracy",
            "lower_is_better": False,
            "n": 5,
            "candidate": {"version": "c1", "accuracy": 0.7},
            "active": {"version": "a1", "accuracy": 0.8},
        }
    }
    assert not judge("c1", acc, "a1").ok


def test_too_few_held_out_labels_and_the_interval_is_stated() -> None:
    """12 held-out labels under min_labels 30: refused, naming both numbers (the issue's biased-label
    candidate passed on 12); with enough, the reason states the size and the 95% interval."""
    res = judge("c1", _report(0.05, 0.08, n=12), "a1", min_labels=30)
    assert not res.ok and "only 12 held-out labels" in res.reason and "min_heldout_labels 30" in res.reason
    report = _report(0.05, 0.08, n=48)
    report["comparison"]["difference"] = {
        "n": 48, "bins": 4, "mean_diff": -0.03, "ci": [-0.041, -0.018], "level": 0.95, "resampled": "bins"
    }  # fmt: skip
    res = judge("c1", report, "a1", min_labels=30)
    assert res.ok and "48 held-out labels" in res.reason and "95% CI -0.0410..-0.0180" in res.reason
    assert "no confidence interval" in judge("c1", _report(0.05, 0.08, n=48), "a1", min_labels=30).reason


def _with_classes(
    cand_acc: float | None, act_acc: float | None, ci: list[float], n: int = 40
) -> dict[str, Any]:
    """A fill comparison the candidate passes, plus a class-head comparison."""
    report = _report(0.05, 0.08)
    report["comparison"]["class_comparison"] = {
        "metric": "accuracy",
        "lower_is_better": False,
        "n": n,
        "candidate": None if cand_acc is None else {"version": "c1", "accuracy": cand_acc},
        "active": None if act_acc is None else {"version": "a1", "accuracy": act_acc},
        "active_note": None
        if act_acc is not None
        else "the active model has no class head for these classes",
        "difference": None
        if cand_acc is None or act_acc is None
        else {"mean_diff": act_acc - cand_acc, "ci": ci},
    }
    return report


@pytest.mark.parametrize(
    ("cand", "act", "ci", "ok", "words"),
    [
        (0.90, 0.88, [-0.06, 0.02], True, "class head accuracy 0.9000 vs active 0.8800"),
        # A little lower, but inside the interval: the held-out class labels cannot tell them apart.
        (0.86, 0.88, [-0.02, 0.07], True, "95% CI -0.0200..+0.0700"),
        # Worse beyond the interval: the whole interval of the error-rate difference is above zero.
        (0.70, 0.88, [0.10, 0.26], False, "class head is worse beyond the interval"),
        # The active model has no class head: the candidate's is new, reported and not compared.
        (0.84, None, [], True, "class head new"),
        # Dropping the class head the active model has would stop the class readings.
        (None, 0.88, [], False, "no class head but the active model has one"),
    ],
)
def test_class_head_is_judged_too(
    cand: float | None, act: float | None, ci: list[float], ok: bool, words: str
) -> None:
    """A candidate passing on fill is still refused when its class head is worse beyond the CI or gone."""
    res = judge("c1", _with_classes(cand, act, ci), "a1")
    assert res.ok is ok and words in res.reason, res.reason
    assert "mae 0.0500 vs active 0.0800" in res.reason  # the fill head's verdict is always stated


def test_class_head_with_too_few_labels_is_not_judged() -> None:
    """Fewer held-out class labels than min_heldout_labels: not judged, and the reason says so."""
    res = judge("c1", _with_classes(0.5, 0.9, [0.2, 0.6], n=8), "a1", min_labels=10)
    assert res.ok and "class head not judged: only 8 held-out class labels" in res.reason
    res = judge("c1", _with_classes(0.5, 0.9, [0.2, 0.6], n=8), "a1", min_labels=5)
    assert not res.ok and "worse beyond the interval" in res.reason
