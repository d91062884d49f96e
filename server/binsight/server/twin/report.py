"""The twin's figures for people: seeds combined with their spread, a table, comparisons and a plot."""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import Any, TextIO

__all__ = ["FIGURES", "ProgressBar", "combine_seeds", "comparisons", "plot", "table"]

#: The figures of the issue, in the table's order, with their column heading.
FIGURES = {
    "truck_km": "truck-km",
    "truck_hours": "truck-h",
    "lifts": "lifts",
    "mean_fill_at_lift": "fill@lift",
    "lifts_under_50": "lifts<50%",
    "overflow_events": "overflows",
    "overflow_bin_hours": "ovf bin-h",
    "litres_overflowed": "ovf litres",
    "missed_mandatory": "missed",
    "co2_kg": "CO2 kg",
    "solver_s": "solver s",
    "days_driven": "days out",
    "disposal_visits": "tips",
}


#: One colour per policy in plots: the baselines grey, sensors green, binsight blue, the bound orange.
COLOURS = {"fixed": "#888", "weekly": "#bbb", "threshold": "#6a9", "binsight": "#27c", "oracle": "#c72"}


def _mean(values: list[Any]) -> Any:
    nums = [v for v in values if v is not None]
    return round(statistics.fmean(nums), 4) if nums else None


def combine_seeds(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """One object for several seeds: each figure's mean under ``policies``, its spread under ``spread``."""
    first = runs[0]
    if len(runs) == 1:
        return first
    policies: dict[str, Any] = {}
    spread: dict[str, Any] = {}
    for name in first["policies"]:
        per = [r["policies"][name] for r in runs]
        policies[name] = {fig: _mean([p[fig] for p in per]) for fig in per[0]}
        spread[name] = {
            fig: {
                "min": min(p[fig] for p in per if p[fig] is not None),
                "max": max(p[fig] for p in per if p[fig] is not None),
                "sd": round(statistics.stdev([p[fig] for p in per]), 4),
            }
            for fig in FIGURES
            if all(p[fig] is not None for p in per)
        }
    out = {k: v for k, v in first.items() if k not in ("seed", "policies")}
    return {
        **out,
        "seeds": [r["seed"] for r in runs],
        "policies": policies,
        "spread": spread,
        "per_seed": [{"seed": r["seed"], "policies": r["policies"]} for r in runs],
    }


def _change(a: float | None, b: float | None) -> float | None:
    """Relative change from ``b`` to ``a`` (None when ``b`` is zero or missing)."""
    if a is None or b is None or b == 0:
        return None
    return round(a / b - 1.0, 4)


def comparisons(policies: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The issue's goals as numbers: binsight against fixed, threshold and oracle."""
    out: dict[str, Any] = {}
    b = policies.get("binsight")
    if b is None:
        return out
    for other in ("fixed", "threshold", "oracle"):
        o = policies.get(other)
        if o is None:
            continue
        out[f"binsight_vs_{other}"] = {
            "truck_km": _change(b["truck_km"], o["truck_km"]),
            "overflow_bin_hours": _change(b["overflow_bin_hours"], o["overflow_bin_hours"]),
            "overflow_bin_hours_diff": round(b["overflow_bin_hours"] - o["overflow_bin_hours"], 1),
            "lifts": _change(b["lifts"], o["lifts"]),
        }
    return out


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if value.is_integer() and abs(value) >= 1:
            return f"{value:,.0f}"
        return f"{value:.3f}" if abs(value) < 1 else f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}"


def table(result: dict[str, Any]) -> str:
    """A fixed-width table of the figures per policy, and the comparisons below it."""
    heads = ["policy", *FIGURES.values()]
    rows = [[name, *(_cell(figs.get(f)) for f in FIGURES)] for name, figs in result["policies"].items()]
    widths = [max(len(r[i]) for r in [heads, *rows]) for i in range(len(heads))]
    lines = [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True)))
        for r in [heads, *rows]
    ]
    seeds = result.get("seeds", [result.get("seed")])
    lines.insert(
        0,
        f"{result['bins']} bins, {result['weeks']} week(s), seed(s) {', '.join(map(str, seeds))}"
        + (" (figures are means over the seeds)" if len(seeds) > 1 else ""),
    )
    for key, cmp in comparisons(result["policies"]).items():
        # Overflow as a share and in hours together (a share of zero hours is no number at all).
        hours = f"{cmp['overflow_bin_hours_diff']:+,.1f} h"
        ovf = cmp["overflow_bin_hours"]
        parts = [
            f"truck-km {cmp['truck_km']:+.1%}" if cmp["truck_km"] is not None else "truck-km -",
            f"overflow bin-hours {ovf:+.1%} ({hours})" if ovf is not None else f"overflow bin-hours {hours}",
            f"lifts {cmp['lifts']:+.1%}" if cmp["lifts"] is not None else "lifts -",
        ]
        lines.append(f"{key.replace('_', ' ')}: " + ", ".join(parts))
    return "\n".join(lines)


def plot(result: dict[str, Any], path: str | Path) -> None:
    """A PNG with four panels per policy: truck-km, overflow bin-hours, lifts and mean fill at lift."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:  # the server does not depend on matplotlib; only --plot needs it
        raise RuntimeError("--plot needs matplotlib: pip install matplotlib") from exc
    names = list(result["policies"])
    panels = ["truck_km", "overflow_bin_hours", "lifts", "mean_fill_at_lift"]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for ax, key in zip(axes.flat, panels, strict=True):
        values = [result["policies"][n][key] or 0 for n in names]
        errs = [result.get("spread", {}).get(n, {}).get(key, {}).get("sd", 0) for n in names]
        ax.bar(names, values, yerr=errs, color=[COLOURS.get(n, "#888") for n in names])
        ax.set_title(FIGURES[key])
    fig.suptitle(f"binsight twin: {result['bins']} bins, {result['weeks']} week(s)")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


class ProgressBar:
    """A one-line progress bar on stderr: policy, days done of the run."""

    def __init__(self, total_steps: int, out: TextIO = sys.stderr, width: int = 30) -> None:
        self.total, self.out, self.width = total_steps, out, width
        self.done = 0

    def __call__(self, day: int, days: int, label: str) -> None:
        self.done += 1
        if not self.out.isatty() and self.done % max(1, self.total // 20) and self.done != self.total:
            return  # a log file gets a line per 5%, a terminal every step
        filled = round(self.width * self.done / max(1, self.total))
        bar = "#" * filled + "." * (self.width - filled)
        end = "" if self.out.isatty() else "\n"
        self.out.write(f"\r[{bar}] {self.done}/{self.total} days  {label:<10}{end}")
        self.out.flush()

    def close(self) -> None:
        self.out.write("\n")
        self.out.flush()
