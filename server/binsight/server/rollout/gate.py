"""The promotion gate: never ship a model that is worse on the held-out labels than the active one.

The comparison is made by ``binsight train fit --from-server``: both models run on the *same*
held-out labels (whole bins the candidate never saw) and the report's ``comparison`` holds both
scores, overall and per site. The gate refuses a candidate whose report lacks that comparison,
whose comparison was made against another model than the one active now, that holds fewer than
``min_heldout_labels`` held-out labels (too few to tell two models apart: the gate does not decide),
or that is worse. Its reason states the held-out size and the paired difference's 95% interval
(:mod:`binsight.heldout`). A model with a class head is judged on both heads (:func:`judge_class_head`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from binsight.heldout import describe

__all__ = ["GateResult", "judge", "judge_class_head", "too_few"]


@dataclass(frozen=True)
class GateResult:
    ok: bool
    reason: str
    comparison: dict[str, Any] | None


def _score(side: Any, metric: str) -> float | None:
    if not isinstance(side, dict):
        return None
    value = side.get(metric)
    return float(value) if isinstance(value, int | float) else None


def too_few(n: int, minimum: int, where: str) -> str | None:
    """Why ``n`` held-out labels are too few to decide on (None when enough)."""
    if n >= minimum:
        return None
    return (
        f"only {n} held-out labels ({where}), under min_heldout_labels {minimum}: too few to tell two "
        "models apart, so the gate does not decide; label more images of the held-out bins (or force, "
        "with a reason)"
    )


def _interval(comp: dict[str, Any]) -> str:
    diff = comp.get("difference")
    if not isinstance(diff, dict) or not isinstance(diff.get("ci"), list):
        return "; the report gives no confidence interval"
    return "; " + describe(diff)


def judge(
    candidate_version: str,
    report: dict[str, Any] | None,
    active_version: str | None,
    tolerance: float = 0.0,
    min_labels: int = 1,
) -> GateResult:
    """Whether ``candidate_version`` may replace ``active_version``.

    Parameters
    ----------
    report
        The candidate's training report; its ``comparison`` is ``{metric, lower_is_better, n,
        test_bins, candidate: {version, <metric>, per_site}, active: {version, <metric>, per_site}}``.
    tolerance
        How much worse (in the metric's units) still counts as not worse.
    min_labels
        Fewer held-out labels than this: refused, the gate does not decide on so little.
    """
    if active_version is None:
        return GateResult(True, "no model is active: nothing to compare against", None)
    if candidate_version == active_version:
        return GateResult(False, f"{candidate_version} is already the active model", None)
    comp = (report or {}).get("comparison")
    if not isinstance(comp, dict):
        return GateResult(
            False,
            f"{candidate_version} has no comparison with the active model {active_version} on held-out "
            "labels (train it with `binsight train fit --from-server`)",
            None,
        )
    about = (comp.get("candidate") or {}).get("version")
    if about != candidate_version:
        return GateResult(
            False, f"the report's comparison is about {about or 'no model'}, not {candidate_version}", comp
        )
    compared = (comp.get("active") or {}).get("version")
    if compared != active_version:
        return GateResult(
            False,
            f"{candidate_version} was compared with {compared or 'no model'}, but {active_version} is active "
            "now: retrain or re-evaluate against the active model",
            comp,
        )
    metric = str(comp.get("metric", "mae"))
    lower = bool(comp.get("lower_is_better", metric in ("mae", "rmse")))
    cand, act = _score(comp.get("candidate"), metric), _score(comp.get("active"), metric)
    n = int(comp.get("n") or 0)
    if cand is None or act is None or n == 0:
        return GateResult(False, f"the comparison holds no {metric} on held-out labels (n={n})", comp)
    bins = ", ".join(map(str, comp.get("test_bins") or [])) or "?"
    small = too_few(n, min_labels, f"from bins {bins}")
    if small is not None:
        return GateResult(False, small, comp)
    worse = cand > act + tolerance if lower else cand < act - tolerance
    where = f"{n} held-out labels from bins {bins}{_interval(comp)}"
    if worse:
        return GateResult(
            False,
            f"candidate {candidate_version} is worse than the active {active_version}: {metric} "
            f"{cand:.4f} vs {act:.4f} on {where}",
            comp,
        )
    fill_reason = f"{metric} {cand:.4f} vs active {act:.4f} on {where}"
    ok, class_reason = judge_class_head(comp.get("class_comparison"), min_labels)
    if class_reason is None:
        return GateResult(True, fill_reason, comp)
    if not ok:
        return GateResult(False, f"candidate {candidate_version}: {class_reason} (fill: {fill_reason})", comp)
    return GateResult(True, f"{fill_reason}; {class_reason}", comp)


def judge_class_head(class_comp: Any, min_labels: int = 1) -> tuple[bool, str | None]:
    """The class head's part of the gate: ``(ok, reason)``; reason None when neither model has one.

    ``class_comp`` is the comparison's ``class_comparison`` (``train fit --from-server`` writes it
    when the held-out bins have class labels). The class head must not be worse beyond the interval:
    the candidate is refused when the whole 95% interval of its paired error-rate difference
    (candidate minus active, whole bins resampled) lies above zero, or when it drops the class head
    the active model has. A class head the active model lacks is new: reported, not compared (the
    fill head decides). Fewer held-out class labels than ``min_labels``: not judged, said so.
    """
    if not isinstance(class_comp, dict):
        return True, None
    cand, act = class_comp.get("candidate"), class_comp.get("active")
    n = int(class_comp.get("n") or 0)
    if not isinstance(cand, dict):
        if isinstance(act, dict):
            act_acc = float(act.get("accuracy") or 0.0)
            return False, (
                f"it has no class head but the active model has one (accuracy {act_acc:.4f} on {n} held-out "
                "class labels): promoting it would stop the class readings"
            )
        return True, None
    acc = float(cand.get("accuracy") or 0.0)
    if not isinstance(act, dict):
        note = class_comp.get("active_note") or "the active model has no class head"
        return True, f"class head new ({note}): accuracy {acc:.4f} on {n} held-out class labels, not compared"
    act_acc = float(act.get("accuracy") or 0.0)
    if n < min_labels:
        return True, (
            f"class head not judged: only {n} held-out class labels, under min_heldout_labels {min_labels} "
            f"(accuracy {acc:.4f} vs active {act_acc:.4f})"
        )
    diff = class_comp.get("difference")
    diff = diff if isinstance(diff, dict) else {}
    ci = diff.get("ci")
    if not isinstance(ci, list) or len(ci) != 2:
        return False, "the class comparison gives no confidence interval"
    lo, hi = float(ci[0]), float(ci[1])
    text = (
        f"class head accuracy {acc:.4f} vs active {act_acc:.4f} on {n} held-out class labels "
        f"(error-rate difference {diff.get('mean_diff', 0.0):+.4f}, 95% CI {lo:+.4f}..{hi:+.4f})"
    )
    if lo > 0.0:
        return False, f"its class head is worse beyond the interval: {text}"
    return True, text
