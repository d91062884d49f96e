"""Back-test of the fill forecast's time-to-full on simulated history (see binsight.server.forecast.backtest).

Prints one JSON object: absolute error of the predicted time the bin reaches the threshold (hours;
overall and by how far ahead the truth was), bias, band coverage, and the same error for a least-
squares line over the current cycle (the baseline).
Run: ``nice .venv/bin/python bench/server_forecast_backtest.py [--bins 20] [--days 56] [--seed 0]``
"""

from __future__ import annotations

import argparse
import json
import time

from binsight.server.config import ForecastConfig
from binsight.server.forecast.backtest import backtest, simulate_bins


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bins", type=int, default=20)
    ap.add_argument("--days", type=int, default=56)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--cut-every-h", type=float, default=12.0)
    ap.add_argument("--confidence", type=float, default=0.9, help="nominal level of the band")
    ap.add_argument(
        "--model-band", action="store_true", help="the model's own band, not calibrated on past forecasts"
    )
    args = ap.parse_args()
    t0 = time.perf_counter()
    bins = simulate_bins(args.bins, args.days, seed=args.seed)
    cfg = ForecastConfig(confidence=args.confidence)
    result = backtest(bins, cfg, warmup_days=14, cut_every_h=args.cut_every_h, calibrate=not args.model_band)
    out = {
        "simulated": True,
        "bins": args.bins,
        "days": args.days,
        "seed": args.seed,
        "threshold": cfg.threshold,
        "confidence": cfg.confidence,
        "band": "model" if args.model_band else "conformal",
        **result.as_dict(),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
