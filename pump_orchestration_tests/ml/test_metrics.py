import json
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    matthews_corrcoef,
    precision_score,
    recall_score,
    roc_auc_score,
)

from pump_orchestration.ml.metrics import (
    classification_metrics,
    feature_importance,
    probability_scores,
    reliability_table,
)
from pump_orchestration.ml.models import build_estimator

Y_TRUE = np.array([1, 0, 1, 1, 0, 0, 0, 1, 0, 0])
Y_PRED = np.array([1, 0, 0, 1, 1, 0, 0, 1, 1, 0])
Y_PROBA = np.array([0.9, 0.2, 0.4, 0.8, 0.6, 0.1, 0.3, 0.7, 0.55, 0.05])
CHANGE = np.array([30.0, -4.0, 12.0, 8.0, 1.0, -10.0, 0.0, 50.0, -6.0, 3.0])


def test_each_metric_equals_sklearn():
    m = classification_metrics(Y_TRUE, Y_PRED, Y_PROBA)
    assert m["accuracy"] == accuracy_score(Y_TRUE, Y_PRED)
    assert m["f1"] == f1_score(Y_TRUE, Y_PRED)
    assert m["precision"] == precision_score(Y_TRUE, Y_PRED)
    assert m["recall"] == recall_score(Y_TRUE, Y_PRED)
    assert m["roc_auc"] == roc_auc_score(Y_TRUE, Y_PROBA)
    assert m["mcc"] == matthews_corrcoef(Y_TRUE, Y_PRED)
    tn, fp, fn, tp = confusion_matrix(Y_TRUE, Y_PRED).ravel()
    assert m["confusion_matrix"] == {"tp": tp, "tn": tn, "fp": fp, "fn": fn} == {"tp": 3, "tn": 4, "fp": 2, "fn": 1}
    assert m["fpr"] == 2 / 6 and m["fnr"] == 1 / 4
    assert (m["num_samples"], m["num_positive"], m["num_negative"]) == (10, 4, 6)
    assert (m["simulated_profit_pct"], m["num_trades"]) == (None, None)  # threshold target
    json.dumps(m)
    assert all(type(v) in (int, float, dict) or v is None for v in m.values())


def test_simulated_profit_up_and_down_by_hand():
    # Predicted positives are rows 0, 3, 4, 7, 8: changes 30, 8, 1, 50, -6.
    up = classification_metrics(Y_TRUE, Y_PRED, future_change_pct=CHANGE, direction="up", fee_pct=2.0)
    assert up["num_trades"] == 5
    assert up["simulated_profit_pct"] == pytest.approx(((30 - 2) + (8 - 2) + (1 - 2) + (50 - 2) + (-6 - 2)) / 5)
    down = classification_metrics(Y_TRUE, Y_PRED, future_change_pct=pd.Series(CHANGE), direction="down", fee_pct=1.0)
    assert down["simulated_profit_pct"] == pytest.approx(((-30 - 1) + (-8 - 1) + (-1 - 1) + (-50 - 1) + (6 - 1)) / 5)


def test_no_trades_and_none_cases():
    y_true = np.zeros(4, dtype=int)
    m = classification_metrics(y_true, np.zeros(4, dtype=int), np.full(4, 0.2), future_change_pct=[1.0] * 4)
    assert (m["simulated_profit_pct"], m["num_trades"]) == (0.0, 0)
    assert m["roc_auc"] is None  # one class in y_true
    assert m["fnr"] is None  # no positives: fn + tp == 0
    assert m["fpr"] == 0.0
    assert (m["precision"], m["recall"], m["f1"]) == (0.0, 0.0, 0.0)  # zero_division=0
    assert classification_metrics(Y_TRUE, Y_PRED)["roc_auc"] is None  # no probabilities
    assert classification_metrics([1, 1], [1, 0])["fpr"] is None  # no negatives


def test_bad_inputs_raise():
    with pytest.raises(ValueError, match="direction"):
        classification_metrics(Y_TRUE, Y_PRED, future_change_pct=CHANGE, direction="sideways")
    with pytest.raises(ValueError, match="missing"):
        classification_metrics(Y_TRUE, Y_PRED, future_change_pct=np.full(10, np.nan))
    with pytest.raises(ValueError, match="no samples"):
        classification_metrics([], [])


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(3)
    X = pd.DataFrame(rng.normal(size=(300, 3)), columns=["weak", "strong", "noise"])
    y = ((2 * X["strong"] + 0.3 * X["weak"]) > 0).astype(int)
    return X, y


def _check(importance, names):
    assert set(importance) == set(names)
    assert sum(importance.values()) == pytest.approx(1.0)
    values = list(importance.values())
    assert values == sorted(values, reverse=True)
    assert next(iter(importance)) == "strong"
    assert all(type(v) is float for v in values)


@pytest.mark.parametrize("model_type", ["random_forest", "xgboost", "logistic_regression"])
def test_feature_importance_builtin(model_type, data):
    X, y = data
    model = build_estimator(model_type, {"n_estimators": 10} if model_type != "logistic_regression" else {},
                            n_jobs=1).fit(X, y)
    _check(feature_importance(model, list(X.columns)), X.columns)


def test_feature_importance_logistic_is_abs_coef(data):
    X, y = data
    model = build_estimator("logistic_regression").fit(X, y)
    coef = np.abs(model[-1].coef_[0])
    assert list(feature_importance(model, list(X.columns)).values()) == pytest.approx(sorted(coef / coef.sum(),
                                                                                             reverse=True))


def test_feature_importance_mlp_uses_permutation(data):
    X, y = data
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = build_estimator("neural_network", {"hidden_layers": [8], "max_iter": 200}).fit(X, y)
    with pytest.raises(ValueError, match="pass X and y"):
        feature_importance(model, list(X.columns))
    _check(feature_importance(model, list(X.columns), X, y), X.columns)


def _scored_rows(seed=0, coins=4, n=400, noise=0.6):
    """Coins with a row a minute, 3-row pumps, and probabilities that rise on pumps with noise."""
    rng = np.random.default_rng(seed)
    mints, stamps, labels, proba = [], [], [], []
    for c in range(coins):
        y = np.zeros(n, dtype=int)
        for start in rng.choice(np.arange(5, n - 5, 20), size=6, replace=False):
            y[start:start + 3] = 1
        mints += [f"coin{c}"] * n
        stamps += list(pd.date_range("2025-09-01", periods=n, freq="1min", tz="UTC") + pd.Timedelta(seconds=7 * c))
        labels += y.tolist()
        proba += np.clip(0.45 * y + rng.uniform(0, noise, n), 0, 1).tolist()
    return np.array(mints), pd.DatetimeIndex(stamps), np.array(labels), np.array(proba)


@pytest.mark.parametrize("limit, noise, met", [(0.5, 0.6, True), (5.0, 0.6, True), (0.5, 1.0, False),
                                               (40.0, 1.0, True)])
def test_the_event_operating_point_is_the_brute_force_best_within_the_false_alarm_limit(limit, noise, met):
    from pump_orchestration.ml.events import label_event_judge, label_event_report
    from pump_orchestration.ml.metrics import THRESHOLD_GRID, choose_threshold

    mints, stamps, labels, proba = _scored_rows(noise=noise)
    horizon = pd.Timedelta("2min")
    chosen = choose_threshold(proba, labels, objective="max_events_within_false_alarms",
                              max_false_alarms_per_coin_day=limit,
                              judge=label_event_judge(mints, stamps, labels, horizon))
    reports = {t: label_event_report(mints, stamps, labels, (proba > t).astype(int), horizon)
               for t in THRESHOLD_GRID}
    allowed = [t for t, r in reports.items() if r["false_alerts_per_coin_day"] <= limit]
    if allowed:
        best = max(allowed, key=lambda t: (reports[t]["detected_before_peak"], -reports[t]["false_alert_episodes"], t))
    else:
        best = min(reports, key=lambda t: (reports[t]["false_alert_episodes"], -t))
    assert chosen["threshold"] == best and chosen["constraint_met"] == bool(allowed) == met
    assert chosen["used"] == "max_events_within_false_alarms" and len(chosen["candidates"]) == len(reports)
    assert chosen["at_threshold"]["detected_before_peak"] == reports[best]["detected_before_peak"]


def test_f1_and_none_operating_points_and_the_fallback_without_events():
    from pump_orchestration.ml.metrics import THRESHOLD_GRID, choose_threshold

    mints, stamps, labels, proba = _scored_rows(seed=1)
    f1s = {t: f1_score(labels, (proba > t).astype(int), zero_division=0) for t in THRESHOLD_GRID}
    best = max(f1s, key=lambda t: (f1s[t], t))
    assert choose_threshold(proba, labels, objective="f1", max_false_alarms_per_coin_day=1.0)["threshold"] == best
    # A classic target has no events: the event objective falls back to F1 and says so.
    fallback = choose_threshold(proba, labels, objective="max_events_within_false_alarms",
                                max_false_alarms_per_coin_day=1.0)
    assert (fallback["used"], fallback["threshold"], fallback["constraint_met"]) == ("f1", best, None)
    fixed = choose_threshold(proba, labels, objective="none", max_false_alarms_per_coin_day=1.0)
    assert fixed["threshold"] == 0.5 and [c["threshold"] for c in fixed["candidates"]] == [0.5]


def test_probability_scores_equal_sklearn_and_need_two_classes():
    from sklearn.metrics import average_precision_score, brier_score_loss

    scores = probability_scores(Y_TRUE, Y_PROBA)
    assert scores == {"brier": brier_score_loss(Y_TRUE, Y_PROBA), "pr_auc": average_precision_score(Y_TRUE, Y_PROBA)}
    assert probability_scores(np.zeros(3), [0.1, 0.2, 0.3])["pr_auc"] is None


def test_reliability_table_matches_a_hand_count():
    proba = np.array([0.0, 0.05, 0.12, 0.19, 0.55, 0.99, 1.0])
    labels = np.array([0, 0, 1, 0, 1, 1, 1])
    assert reliability_table(labels, proba) == [
        {"bin": "0.0-0.1", "count": 2, "mean_predicted": pytest.approx(0.025), "observed_rate": 0.0},
        {"bin": "0.1-0.2", "count": 2, "mean_predicted": pytest.approx(0.155), "observed_rate": 0.5},
        {"bin": "0.5-0.6", "count": 1, "mean_predicted": pytest.approx(0.55), "observed_rate": 1.0},
        {"bin": "0.9-1.0", "count": 2, "mean_predicted": pytest.approx(0.995), "observed_rate": 1.0},
    ]
