"""Handlers of ``binsight train synth|fit|eval`` (argument parsing is in :mod:`binsight.training.cli`)."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from binsight.errors import DataError

__all__ = ["evaluate", "fit", "synth"]

logger = logging.getLogger(__name__)


def synth(args: argparse.Namespace) -> int:
    """Render a synthetic lid-camera set (numpy + OpenCV only)."""
    from binsight.training.synth import generate

    if args.bins < 1 or args.per_bin < 1:
        raise DataError(f"--bins and --per-bin must be at least 1 (got {args.bins} and {args.per_bin})")
    labels = generate(args.out, args.bins, args.per_bin, args.seed)
    print(labels)
    return 0


def fit(args: argparse.Namespace) -> int:
    """Fit a model and export it; prints the held-out metrics (and where the report went)."""
    from binsight.training.pipeline import fit as run_fit
    from binsight.training.pipeline import model_file

    report = run_fit(
        args.data,
        args.out,
        backbone=args.backbone,
        int8=args.int8,
        report_path=args.report,
        skip_bad=args.skip_bad,
        input_size=args.input_size,
        latency_budget_ms=args.latency_budget_ms,
        retrain=args.retrain,
        int8_tolerance=args.int8_tolerance,
    )
    q = report["int8"] if report["int8"] and report["int8"]["accepted"] else None
    summary = {
        "model": model_file(report),
        "model_version": q["model_version"] if q else report["export"]["model_version"],
        "precision": "int8" if q else "fp32",
        "input_size": report["features"]["input_size"],
        "features": report["features"]["chosen"],
        "head": report["head"],
        "retrained_last_stages": report["retrain"]["used"],
        "test": report["test"],
        "baselines": report["baselines"],
        "int8_test": report["int8"]["test"] if report["int8"] else None,
        "class_head": _class_summary(report.get("class_head")),
        "int8": {k: report["int8"][k] for k in ("accepted", "verdict", "latency")}
        if report["int8"]
        else None,
        "skipped": report["data"]["skipped"],
        "split": report["split"]["method"],
        "report": args.report,
    }
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


def _class_summary(section: dict[str, Any] | None) -> dict[str, Any] | None:
    """The class head in the printed summary: its classes and held-out metrics, or why there is none."""
    if not section or not section.get("fitted"):
        return section
    return {
        "classes": section["classes"],
        "test": section["test_metrics"],
        "features": section["features"]["chosen"],
    }


def evaluate(args: argparse.Namespace) -> int:
    """Evaluate a model file with ONNX Runtime alone; ``--json`` prints one JSON object."""
    from binsight.training.evaluate import evaluate as run_eval

    result = run_eval(args.model, args.data, skip_bad=args.skip_bad)
    if args.json:
        json.dump(result, sys.stdout)
        sys.stdout.write("\n")
        return 0
    for key, value in result.items():
        if key in ("confusion", "classes", "skipped", "class"):
            continue
        print(f"{key:>10}: {value}")
    if "class" in result:
        print(f"{'class':>10}: accuracy {result['class']['accuracy']} (n {result['class']['n']})")
    for s in result["skipped"]:
        print(f"   skipped: {s['file']} (row {s['row']}): {s['reason']}")
    return 0
