"""What each part is worth: the sensing policies rerun on the same world with one setting changed.

The world (fills, events) and the camera draws stay those of the seed; only the model error or the
camera outage rate changes, and ``threshold`` (sensors, no forecast) runs beside ``binsight`` (sensors
and the forecast), so the forecast's worth is their difference at each setting.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from binsight.server.twin.simulate import Progress, TwinConfig, run_policies

__all__ = ["SENSING_POLICIES", "sensitivity"]

SENSING_POLICIES = ("threshold", "binsight")


def _sweep(tw: TwinConfig, field: str, values: list[float], progress: Progress | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for v in values:
        sensing = (
            dataclasses.replace(tw.sensing, mae=v)
            if field == "mae"
            else dataclasses.replace(tw.sensing, outages_per_week=v)
        )
        run = run_policies(dataclasses.replace(tw, sensing=sensing, policies=SENSING_POLICIES), progress)
        out[f"{v:g}"] = run["policies"]
    return out


def sensitivity(
    tw: TwinConfig,
    maes: list[float] | None = None,
    outages: list[float] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """``{"model_mae": {value: {policy: figures}}, "outages_per_week": {...}}`` for the values given."""
    out: dict[str, Any] = {}
    if maes:
        out["model_mae"] = _sweep(tw, "mae", maes, progress)
    if outages:
        out["outages_per_week"] = _sweep(tw, "outages_per_week", outages, progress)
    return out
