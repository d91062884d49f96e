"""``binsight train ...``: argument parsing only; the work is in the training modules."""

from __future__ import annotations

import argparse
from typing import Any

from binsight.training import (
    DEFAULT_INPUT_SIZE,
    DEFAULT_LATENCY_BUDGET_MS,
    MIN_RETRAIN_LABELS,
    parse_input_size,
)


# long: one add_argument per train option, read top to bottom like --help
def register(sub: Any) -> None:
    p: argparse.ArgumentParser = sub.add_parser("train", help="make data sets, fit and evaluate fill models")
    tsub = p.add_subparsers(dest="train_command", metavar="ACTION")

    s = tsub.add_parser("synth", help="render a synthetic lid-camera set (labels.csv + JPEGs)")
    s.add_argument("out", help="output folder (created)")
    s.add_argument("--bins", type=int, default=20, help="number of containers / cameras")
    s.add_argument("--per-bin", type=int, default=20, help="images per bin")
    s.add_argument("--seed", type=int, default=0)
    s.set_defaults(func=_synth)

    f = tsub.add_parser("fit", help="fit a head on deep features and export one ONNX model")
    f.add_argument("data", nargs="?", help="labelled set: folder with labels.csv, or one subfolder per class")
    f.add_argument("--out", required=True, help="output MODEL.onnx")
    f.add_argument(
        "--backbone",
        default="efficientnet_lite0",
        help="efficientnet_lite0 (default), efficientnet_lite1, efficientnet_lite2, mobilenet_v3_large, "
        "efficientnet_b0, resnet50, NAME=WEIGHTS.pth; or auto: the Lite with the best CV score within "
        "--latency-budget-ms (docs/training.md)",
    )
    f.add_argument(
        "--latency-budget-ms",
        type=float,
        default=DEFAULT_LATENCY_BUDGET_MS,
        metavar="MS",
        help=f"with --backbone auto: the most a frame may take (batch 1, one ONNX Runtime thread, timed "
        f"here; default {DEFAULT_LATENCY_BUDGET_MS:g})",
    )
    f.add_argument(
        "--input-size",
        type=_input_size,
        default=DEFAULT_INPUT_SIZE,
        metavar="PX|HxW",
        help=f"longer side of the backbone's input, a multiple of 32; the shorter follows the frames' "
        f"aspect, rounded up to a multiple of 32 (default {DEFAULT_INPUT_SIZE}: 4:3 frames give 128x160); "
        "or HxW exactly (docs/training.md has speed and accuracy per size)",
    )
    f.add_argument(
        "--retrain",
        choices=("auto", "on", "off"),
        default="auto",
        help=f"re-train the backbone's last stages (early layers frozen): auto (default) tries it from "
        f"{MIN_RETRAIN_LABELS} training images and keeps it when it beats the linear head on held-back "
        "training bins; on keeps it regardless; off never tries (docs/training.md)",
    )
    f.add_argument(
        "--int8",
        action="store_true",
        help="also static-quantize (per channel) to int8; --out is the int8 model unless it loses more "
        "than --int8-tolerance on the held-out split",
    )
    f.add_argument(
        "--int8-tolerance",
        type=float,
        default=None,
        metavar="X",
        help="with --int8: the most held-out MAE may rise (fill) or accuracy fall (classes) before the "
        "fp32 model is kept instead (default 0.01 MAE, 0.02 accuracy)",
    )
    f.add_argument("--report", help="write the JSON report here (and a PNG figure beside it)")
    f.add_argument("--skip-bad", action="store_true", help="skip bad rows and list them in the report")
    f.add_argument(
        "--from-server",
        metavar="URL|DIR",
        help="train on every human label of a server (token: BINSIGHT_TOKEN) or of a folder "
        "`binsight server export-labels` wrote; compare with the active model on the same held-out "
        "labels (docs/retraining.md)",
    )
    f.add_argument("--active", help="the active model file to compare with (default: the server's)")
    # Went with the database mode; kept hidden so an old command line gets the export-labels hint.
    f.add_argument("--models-dir", help=argparse.SUPPRESS)
    f.add_argument("--upload", action="store_true", help="with --from-server URL: register the candidate")
    f.set_defaults(func=_fit)

    e = tsub.add_parser("eval", help="evaluate a model file on a labelled set with ONNX Runtime alone")
    e.add_argument("model")
    e.add_argument("data")
    e.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    e.add_argument("--skip-bad", action="store_true")
    e.set_defaults(func=_eval)


def _input_size(text: str) -> int | tuple[int, int]:
    try:
        return parse_input_size(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _synth(args: argparse.Namespace) -> int:
    from binsight.training.commands import synth

    return synth(args)


def _fit(args: argparse.Namespace) -> int:
    if args.from_server:
        from binsight.training.from_server import command

        return command(args)
    if args.data is None:
        raise SystemExit("binsight train fit: give DATA or --from-server")
    from binsight.training.commands import fit

    return fit(args)


def _eval(args: argparse.Namespace) -> int:
    from binsight.training.commands import evaluate

    return evaluate(args)
