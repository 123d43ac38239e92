"""Detection quality on synthetic pump.fun data with planted pumps: pumps caught and false alarms, before/after.

The generator (``data/synthetic.py``) plants pumps with known start and peak times, so a detector can be
judged against the truth rather than against its own labels. One market is generated; the default
request (XGBoost, +30 % within 10 min) is trained on the first ``--train-hours`` through the pipeline the
``fitted_model`` asset runs (``ml.pipeline.feature_frame`` + ``fit_request``) and tested on the following
``--test-hours`` (``ml.evaluation.score_rows``, as a test report does). Variants:

* **before**: SMOTE, alert threshold 0.5 (``threshold_objective: none``), the state before the operating point;
* **after**: SMOTE, the threshold chosen on the out-of-fold CV predictions (request default objective);
* **class weights** / **no resampling**: ``imbalance: class_weight`` (balanced sample weights) or ``none``
  instead of SMOTE;
* **+ isotonic** / **+ sigmoid**: the same with ``calibration`` fitted on the out-of-fold CV predictions;
* **rule_baseline**: the volume/price rule as a model type, its threshold chosen the same way.

Per variant: planted pumps in the test window caught before their peak (an alert from one horizon before
the start up to the peak), false-alert episodes per coin-day (alerts outside every pump window, merged
when less than one horizon apart), episode precision, ROC-AUC, Brier score and PR-AUC of the test
window's probabilities (and the Brier score of the out-of-fold ones, raw -> calibrated), the threshold and the
``beats_rule_baseline`` gate. Then the time the new evaluation (threshold choice + rule comparison) adds,
as a share of the model fitting (CV + evaluation fit + final fit) of the same run.

    .venv/bin/python benchmarks/detection_quality.py [--coins 3000] [--train-hours 12] [--test-hours 6]
"""
from __future__ import annotations

import argparse
import dataclasses
import time

import pandas as pd

from pump_orchestration.data.synthetic import generate_coin_metrics
from pump_orchestration.ml.dataset import FUTURE_CHANGE, LABEL
from pump_orchestration.ml.evaluation import ModelUnderTest, score_rows
from pump_orchestration.ml.events import detection_report
from pump_orchestration.ml.features import feature_pattern
from pump_orchestration.ml.metrics import classification_metrics, probability_scores
from pump_orchestration.ml.pipeline import feature_frame, fit_request, label_frame
from pump_orchestration.ml.quality import rule_baseline_check
from pump_orchestration.ml.request import TrainingRequest

START = pd.Timestamp("2025-09-01", tz="UTC")
VARIANTS = {
    "before (SMOTE, 0.5)": {"threshold_objective": "none"},
    "after (SMOTE, chosen threshold)": {},
    "SMOTE + isotonic": {"calibration": "isotonic"},
    "SMOTE + sigmoid": {"calibration": "sigmoid"},
    "class weights": {"imbalance": "class_weight"},
    "class weights + isotonic": {"imbalance": "class_weight", "calibration": "isotonic"},
    "no resampling": {"imbalance": "none"},
    "no resampling + isotonic": {"imbalance": "none", "calibration": "isotonic"},
    "rule_baseline, chosen threshold": {"model_type": "rule_baseline"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--coins", type=int, default=3000)
    parser.add_argument("--train-hours", type=float, default=12.0)
    parser.add_argument("--test-hours", type=float, default=6.0)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()

    hours = args.train_hours + args.test_hours
    train_end = START + pd.Timedelta(hours=args.train_hours)
    test_end = train_end + pd.Timedelta(hours=args.test_hours)
    t0 = time.perf_counter()
    frame, pumps = generate_coin_metrics(n_coins=args.coins, start=START, hours=hours, seed=args.seed)
    known = pumps[(pumps["pump_start"] >= train_end) & (pumps["pump_start"] < test_end)]
    events = pd.DataFrame({"coin": known["mint"], "start": known["pump_start"], "end": known["peak_time"],
                           "peak": known["peak_time"]})
    print(f"{len(frame):,} rows, {args.coins:,} coins, {len(pumps)} planted pumps ({len(events)} start in the "
          f"test window) in {time.perf_counter() - t0:.0f} s; train [{START:%H:%M}, {train_end:%H:%M}), "
          f"test [{train_end:%H:%M}, {test_end:%H:%M})")

    base = TrainingRequest(name="bench")  # the product's defaults: XGBoost, +30 % within 10 min
    horizon = pd.Timedelta(minutes=base.future_minutes)
    t0 = time.perf_counter()
    labelled = label_frame(frame, base, train_end)
    inputs, feature_names, _, _ = feature_frame(labelled, base, START, train_end)
    print(f"{len(inputs):,} labelled training rows x {len(feature_names)} features "
          f"({time.perf_counter() - t0:.0f} s)\n")

    rows, cache, importance = [], {}, {}
    for label, changes in VARIANTS.items():
        request = dataclasses.replace(base, **changes)
        t0 = time.perf_counter()
        trained = fit_request(inputs[feature_names], inputs[LABEL], inputs["timestamp"], inputs[FUTURE_CHANGE],
                              request, params={}, train_start=START, train_end=train_end, mints=inputs["mint"])
        wall = time.perf_counter() - t0
        result = trained.result
        if not changes:  # the product's default request: which inputs carry its decisions
            for name, value in result.feature_importance.items():
                family = feature_pattern(name) or name
                importance[family] = importance.get(family, 0.0) + value
        scored = score_rows(ModelUnderTest.from_trained(trained), frame, train_end, test_end, features_cache=cache)
        truth = detection_report(events, scored.mints.to_numpy(), scored.timestamps, scored.y_pred,
                                 lead=horizon, cooldown=horizon)
        metrics = classification_metrics(scored.y_true, scored.y_pred, scored.proba)
        quality = probability_scores(scored.y_true, scored.proba)
        oof = result.calibration
        oof_brier = f"{oof['before']['brier']:.4f}" + ("" if oof["after"] is None else f"->{oof['after']['brier']:.4f}")
        gate = rule_baseline_check(result.rule_baseline)
        added = result.timings["threshold_seconds"] + result.timings["rule_baseline_seconds"]
        rows.append({
            "variant": label,
            "threshold": f"{scored.threshold:.2f}",
            "pumps caught before peak": f"{truth['detected_before_peak']}/{truth['events']}",
            "false alarms/coin-day": f"{truth['false_alerts_per_coin_day']:.2f}",
            "episode precision": f"{truth['episode_precision'] or 0:.3f}",
            "median lead to peak s": "-" if truth["median_lead_to_peak_s"] is None
            else f"{truth['median_lead_to_peak_s']:.0f}",
            "row F1": f"{metrics['f1']:.3f}",
            "ROC-AUC": f"{metrics['roc_auc']:.3f}",
            "PR-AUC": f"{quality['pr_auc']:.3f}",
            "Brier": f"{quality['brier']:.4f}",
            "OOF Brier": oof_brier,
            "beats rule (CV)": "n/a" if not result.rule_baseline["applicable"] else
            f"{'yes' if gate.passed else 'no'} {result.rule_baseline['model_score']:.2f}/"
            f"{result.rule_baseline['rule_score']:.2f}",
            "fit s": f"{result.fitting_seconds:.1f}",
            "new evaluation s": f"{added:.1f} ({added / result.fitting_seconds:.1%})",
            "wall s": f"{wall:.0f}",
        })
        print(f"{label}: " + ", ".join(f"{k} {v}" for k, v in rows[-1].items() if k != "variant"), flush=True)
    print()
    print(pd.DataFrame(rows).to_string(index=False))
    top = sorted(importance.items(), key=lambda kv: -kv[1])[:12]
    print("\nfeature importance of the default request (summed over windows): "
          + ", ".join(f"{family} {value:.3f}" for family, value in top))
    print(f"""
pumps caught before peak: planted pumps starting in the test window with an alert in [start - {horizon}, peak).
false alarms/coin-day: alert episodes (alerts < {horizon} apart merged) outside every [start - {horizon}, peak]
  window, per coin-day of test rows ({truth['coin_days']:.1f} coin-days).
PR-AUC, Brier: of the test window's probabilities against its labels (Brier: lower is better; a
  calibrated 0.7 means about 70 %). OOF Brier: the training run's out-of-fold probabilities, raw -> calibrated
  (in-sample for the calibrator, which is fitted on them).
beats rule (CV): the beats_rule_baseline gate, event F1 of the model / of the rule on the training run's
  out-of-fold rows (each side at its own threshold chosen by the same objective).
new evaluation s: choosing the threshold + the rule comparison, and its share of the model fitting
  (CV + evaluation fit + final fit) of the same run.""")


if __name__ == "__main__":
    main()
