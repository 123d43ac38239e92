"""Walk-forward benchmark: wall time, share outside model fitting, and what caching the features saves.

Generates a synthetic market in which each training window (``--train-hours``) holds about
``--rows-per-window`` coin_metrics rows, runs ``ml.pipeline.walk_forward`` over ``--windows`` windows
(train ``--train-hours`` → test the next 1 h, step 1 h; the same code the ``walk_forward_evaluation``
asset runs), and compares its non-fitting time with the
obvious baseline that rebuilds the engineered features for every window (what a loop of independent
train + test runs does). Fitting is identical in both, so the baseline only re-times feature building.

    .venv/bin/python benchmarks/walk_forward.py --windows 10 --rows-per-window 200000
"""
from __future__ import annotations

import argparse
import resource
import time

import pandas as pd

from pump_orchestration.data.synthetic import generate_coin_metrics
from pump_orchestration.ml.dataset import build_feature_matrix
from pump_orchestration.ml.features import required_history
from pump_orchestration.ml.pipeline import plan_windows, walk_forward
from pump_orchestration.ml.request import TrainingRequest

ROWS_PER_COIN_HOUR = 140  # the generator's coins average ~140 rows, most of them within their first hour


def peak_rss_mib() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=10)
    parser.add_argument("--rows-per-window", type=int, default=200_000, help="rows per training window")
    parser.add_argument("--train-hours", type=float, default=3.0)
    parser.add_argument("--model-type", default="xgboost")
    parser.add_argument("--cv-splits", type=int, default=5)
    args = parser.parse_args()

    hours = args.train_hours + args.windows
    rows_per_hour = args.rows_per_window / args.train_hours
    t0 = time.perf_counter()
    frame, _ = generate_coin_metrics(n_coins=int(rows_per_hour / ROWS_PER_COIN_HOUR * hours),
                                     start="2025-09-01T00:00:00Z", hours=hours, seed=1)
    start = pd.Timestamp("2025-09-01", tz="UTC")
    windows = plan_windows(start, start + pd.Timedelta(hours=hours), train_hours=args.train_hours, test_hours=1,
                           step_hours=1)
    train_rows = [int(((frame["timestamp"] >= w.train_start) & (frame["timestamp"] < w.train_end)).sum())
                  for w in windows]
    print(f"generated {len(frame):,} rows in {time.perf_counter() - t0:.1f}s; rows per training window: "
          f"median {int(pd.Series(train_rows).median()):,}, min {min(train_rows):,}, max {max(train_rows):,}")

    request = TrainingRequest(name="bench", model_type=args.model_type, target_var="price_close",
                              features=("volume_sol", "buy_volume_sol", "sell_volume_sol", "num_buys", "num_sells"),
                              future_minutes=10, min_percent_change=30.0, label_mode="within",
                              cv_splits=args.cv_splits)
    t0 = time.perf_counter()
    outcomes, skipped, timings = walk_forward(frame, request, windows, params={}, n_bootstrap=1000)
    wall = time.perf_counter() - t0
    fitting = sum(o.trained.result.fitting_seconds for o in outcomes)
    outside = wall - fitting

    # Baseline: each window rebuilds features for its own train + test rows (plus look-back).
    lookback = required_history(request.feature_engineering_windows)
    t0 = time.perf_counter()
    for w in windows:
        rows = frame[(frame["timestamp"] >= w.train_start - lookback) & (frame["timestamp"] < w.test_end)]
        build_feature_matrix(rows, request.feature_spec)
    baseline_features = time.perf_counter() - t0
    baseline_outside = outside - timings["features"] + baseline_features

    print(f"\nwalk-forward over {len(outcomes)} windows ({len(skipped)} skipped), {args.model_type}, "
          f"{args.cv_splits}-fold purged CV per window")
    for skip in skipped:
        print(f"  skipped window testing from {skip['test_start']}: {skip['reason'][:200]}")
    print(f"{'stage':<34}{'seconds':>10}")
    for name, seconds in [("features (once for the range)", timings["features"]),
                          ("labels + row selection (per window)", timings["labels"]),
                          ("training incl. CV (per window)", timings["fit"]),
                          ("  of which model fitting (CV + fit)", fitting),
                          ("test + comparison (per window)", timings["evaluate"]),
                          ("wall time", wall)]:
        print(f"{name:<34}{seconds:>10.1f}")
    print(f"\nshare of wall time outside model fitting: {outside / wall:.1%}")
    print(f"baseline (features rebuilt per window): features {baseline_features:.1f}s vs ours "
          f"{timings['features']:.1f}s -> ratio ours/baseline {timings['features'] / baseline_features:.2f}")
    print(f"non-fitting time ours/baseline: {outside:.1f}s / {baseline_outside:.1f}s = "
          f"{outside / baseline_outside:.2f}")
    print(f"mean test F1 {pd.Series([o.test['f1_score'] for o in outcomes]).mean():.3f}, "
          f"ROC-AUC {pd.Series([o.test['roc_auc'] for o in outcomes]).mean():.3f}; peak RSS {peak_rss_mib():,.0f} MiB")


if __name__ == "__main__":
    main()
