import dataclasses
import json
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st
from imblearn.over_sampling import SMOTE

from pump_orchestration.ml.models import build_estimator
from pump_orchestration.vocabulary import MODEL_TYPES
from pump_orchestration.ml import training
from pump_orchestration.ml.training import (
    SMOTE_NEIGHBOUR_BLOCK_ROWS,
    BlockNeighbors,
    TrainingDataError,
    TrainingResult,
    predict_proba_positive,
    rebalance,
    train_classifier,
)

FAST = {
    "random_forest": {"n_estimators": 10},
    "random_forest_hist": {"n_estimators": 10},
    "xgboost": {"n_estimators": 10},
    "gradient_boosting": {"n_estimators": 10},
    "logistic_regression": {},
    "neural_network": {"hidden_layers": [8], "max_iter": 100},
    # The test data has no engineered columns: point the rule at the one informative feature.
    "rule_baseline": {"volume_feature": "signal", "price_feature": "signal"},
}


def make_data(n=300, positive_share=0.2, seed=0, freq="1min"):
    """Separable synthetic pump data: ``signal`` decides the label, ``noise`` does not."""
    rng = np.random.default_rng(seed)
    y = pd.Series((rng.random(n) < positive_share).astype(int))
    X = pd.DataFrame({"signal": y * 3.0 + rng.normal(scale=0.5, size=n), "noise": rng.normal(size=n)})
    ts = pd.Series(pd.date_range("2025-09-01", periods=n, freq=freq, tz="UTC"))
    change = pd.Series(np.where(y == 1, 15.0, -3.0) + rng.normal(size=n))
    return X, y, ts, change


def fit(X, y, ts, **kwargs):
    kwargs.setdefault("model_type", "random_forest")
    kwargs.setdefault("params", FAST.get(kwargs["model_type"]))
    kwargs.setdefault("n_jobs", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # MLP convergence on tiny data
        return train_classifier(X, y, ts, **kwargs)


def as_json(result: TrainingResult, exclude=("estimator",)) -> str:
    fields = {f.name: getattr(result, f.name) for f in dataclasses.fields(result) if f.name not in exclude}
    return json.dumps(fields, sort_keys=True)


def test_learns_separable_data_and_reports_everything():
    X, y, ts, change = make_data()
    calls = []
    result = fit(X, y, ts, horizon=pd.Timedelta("5min"), future_change_pct=change,
                 progress=lambda fraction, message: calls.append((fraction, message)))
    assert result.metrics["f1"] > 0.8
    assert result.metrics["simulated_profit_pct"] > 0
    assert result.feature_names == ["signal", "noise"]
    assert next(iter(result.feature_importance)) == "signal"
    assert result.params == {"n_estimators": 10, "max_depth": 10, "min_samples_split": 2}
    assert result.cv_scores["n_splits"] == 5 and len(result.cv_scores["test_f1"]) == 5
    assert result.cv_overfitting_gap == pytest.approx(
        result.cv_scores["mean_train_accuracy"] - result.cv_scores["mean_test_accuracy"])
    assert result.label_balance == {"n_rows": 300, "n_positive": int(y.sum()), "n_negative": int((1 - y).sum()),
                                    "positive_share": y.mean()}
    assert result.resampling["applied"] and result.resampling["after"]["positive_share"] == 0.5
    assert set(result.timings) >= {"cv_seconds", "fit_seconds", "predict_seconds"}
    assert all(v >= 0 for v in result.timings.values())
    fractions = [c[0] for c in calls]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    as_json(result)
    proba = predict_proba_positive(result.estimator, X)
    assert proba.shape == (300,) and np.allclose(proba, result.estimator.predict_proba(X)[:, 1])


def hand_made_series():
    """60 rows two minutes apart: minute 0, 2, ..., 118."""
    n = 60
    ts = pd.Series(pd.Timestamp("2025-09-01") + pd.to_timedelta(np.arange(n) * 2, unit="min"))
    y = pd.Series((np.arange(n) % 3 == 0).astype(int))
    X = pd.DataFrame({"f": y + np.linspace(0, 0.1, n)})
    return X, y, ts


def test_purge_drops_exactly_rows_whose_horizon_reaches_the_test_part():
    X, y, ts = hand_made_series()
    # cv_splits=2 on 60 rows: fold 1 trains rows 0-19 and tests from row 20 (minute 40);
    # fold 2 trains rows 0-39 and tests from row 40 (minute 80). With a 4-minute horizon the
    # last training row (38 + 4 = 42 > 40) and the one whose horizon ends exactly at the test
    # start (36 + 4 = 40: its label would read the first test row's price) are purged; the row
    # before them (34 + 4 = 38 < 40) stays.
    result = fit(X, y, ts, cv_splits=2, horizon=pd.Timedelta("4min"), imbalance="none")
    assert result.cv_scores["purged_rows_per_fold"] == [2, 2]
    assert result.cv_scores["train_rows_per_fold"] == [18, 38]
    assert result.cv_scores["test_rows_per_fold"] == [20, 20]
    assert result.split == {
        "kind": "timeseries_last_fold", "n_train": 38, "n_test": 20, "purged_rows": 2,
        "train_start_ts": "2025-09-01T00:00:00", "train_end_ts": "2025-09-01T01:14:00",
        "test_start_ts": "2025-09-01T01:20:00", "test_end_ts": "2025-09-01T01:58:00",
        # The stored model is fitted on every row after the estimate.
        "final_fit": {"rows": 60, "start_ts": "2025-09-01T00:00:00", "end_ts": "2025-09-01T01:58:00",
                      "resampled_rows": 60},
    }
    # 7 minutes: rows ending after minute 40 are 17, 18, 19 (34 + 7 = 41).
    result = fit(X, y, ts, cv_splits=2, horizon=pd.Timedelta("7min"), imbalance="none")
    assert result.cv_scores["purged_rows_per_fold"] == [3, 3]
    result = fit(X, y, ts, cv_splits=2, horizon=None, imbalance="none")
    assert result.cv_scores["purged_rows_per_fold"] == [0, 0] and result.split["n_train"] == 40


def test_holdout_is_chronological_and_purged():
    X, y, ts = hand_made_series()
    result = fit(X, y, ts, use_timeseries_split=False, horizon=pd.Timedelta("4min"))
    # First 48 rows train, last 12 test (from minute 96); rows 47 (94 + 4 > 96) and 46 (92 + 4 = 96,
    # its label would read the first test row) are purged.
    assert result.cv_scores is None and result.cv_overfitting_gap is None
    assert result.split["kind"] == "holdout_80_20"
    assert (result.split["n_train"], result.split["n_test"], result.split["purged_rows"]) == (46, 12, 2)
    assert result.split["test_start_ts"] == "2025-09-01T01:36:00"


def test_resampling_never_touches_test_rows(monkeypatch):
    X, y, ts, change = make_data(n=240, positive_share=0.15)
    X["row_id"] = np.arange(len(X))  # time rank, to see which rows reach SMOTE
    seen = []
    original = training.rebalance

    def spy(X_part, y_part, *args, **kwargs):
        seen.append(set(X_part["row_id"]))
        return original(X_part, y_part, *args, **kwargs)

    monkeypatch.setattr(training, "rebalance", spy)
    result = fit(X, y, ts, cv_splits=3, future_change_pct=change)
    without = fit(X, y, ts, cv_splits=3, future_change_pct=change, imbalance="none")

    # 3 CV folds + the evaluation fit, each exactly the rows before its test part; then, the figures
    # taken, the final fit of the stored model on every row.
    assert seen == [set(range(60)), set(range(120)), set(range(180)), set(range(180)), set(range(240))]
    assert result.resampling["applied"] and result.resampling["before"]["n_rows"] == 180
    assert result.resampling["after"]["n_rows"] != 180
    assert result.split["n_test"] == without.split["n_test"] == result.metrics["num_samples"] == 60
    # The reported test metrics are those of the untouched last 60 rows.
    test_y = y.iloc[180:]
    cm = result.metrics["confusion_matrix"]
    assert cm["tp"] + cm["fn"] == int(test_y.sum()) and cm["fp"] + cm["tn"] == int((test_y == 0).sum())
    assert result.metrics["num_positive"] == int(test_y.sum())
    # Training metrics are on the training part before resampling.
    assert result.train_metrics["num_samples"] == 180


def test_input_row_order_does_not_matter():
    X, y, ts, change = make_data(n=200, seed=4)
    ts = ts.iloc[np.arange(200) // 2 * 2].reset_index(drop=True)  # pairs of equal timestamps
    a = fit(X, y, ts, horizon=pd.Timedelta("3min"), future_change_pct=change)
    shuffled = np.random.default_rng(9).permutation(200)
    b = fit(X.iloc[shuffled], y.iloc[shuffled], ts.iloc[shuffled], horizon=pd.Timedelta("3min"),
            future_change_pct=change.iloc[shuffled])
    assert as_json(a, exclude=("estimator", "timings")) == as_json(b, exclude=("estimator", "timings"))
    assert np.array_equal(a.estimator.predict_proba(X), b.estimator.predict_proba(X))


@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_every_model_type_trains_end_to_end(model_type):
    X, y, ts, change = make_data(n=180, seed=2)
    result = fit(X, y, ts, model_type=model_type, cv_splits=3, horizon=pd.Timedelta("2min"),
                 future_change_pct=change, direction="up")
    assert result.model_type == model_type
    assert result.metrics["accuracy"] > 0.8
    assert set(result.feature_importance) == {"signal", "noise"}
    assert set(result.timings) >= {"cv_seconds", "fit_seconds", "predict_seconds"}
    as_json(result)


def test_single_class_is_rejected():
    X, y, ts, _ = make_data(n=100)
    with pytest.raises(TrainingDataError, match="all 100 labelled rows are class 0 — widen the window or lower "
                                                "min_percent_change"):
        fit(X, y * 0, ts)


def test_nan_and_inf_in_features_are_named_with_counts():
    X, y, ts, _ = make_data(n=100)
    X.loc[[3, 7], "signal"] = np.nan
    X.loc[5, "noise"] = np.inf
    with pytest.raises(TrainingDataError, match=r"signal: 2 NaN, 0 inf; noise: 0 NaN, 1 inf"):
        fit(X, y, ts)
    X["empty"] = np.nan
    with pytest.raises(TrainingDataError, match="NaN in every one of the 100 rows: empty"):
        fit(X, y, ts)


def test_too_few_rows_for_cv_splits():
    X, y, ts, _ = make_data(n=50)
    with pytest.raises(TrainingDataError,
                       match=r"too few rows for cv_splits=5: need at least 60 labelled rows .*got 50"):
        fit(X, y, ts, cv_splits=5)
    with pytest.raises(TrainingDataError, match="too few rows for an 80/20 split"):
        fit(X.iloc[:40], y.iloc[:40], ts.iloc[:40], use_timeseries_split=False)


def test_fold_with_one_class_in_its_training_part():
    X, y, ts, _ = make_data(n=120)
    y[:] = 0
    y.iloc[100:110] = 1  # positives only late: the first folds train on negatives only
    with pytest.raises(TrainingDataError, match=r"CV fold 1 of 5: the training part \(20 rows\) holds only class 0"):
        fit(X, y, ts)


def test_bad_labels_and_arguments():
    X, y, ts, _ = make_data(n=100)
    with pytest.raises(TrainingDataError, match="only 0/1 labels"):
        fit(X, y * 2, ts)
    with pytest.raises(TrainingDataError, match="X is empty"):
        fit(X.iloc[:0], y.iloc[:0], ts.iloc[:0])
    with pytest.raises(ValueError, match="model_type"):
        fit(X, y, ts, model_type="svm", params=None)


@pytest.mark.parametrize("positive_share, block_rows", [(0.1, None), (0.85, None), (0.15, 20)])
def test_rebalance_is_imbalanced_learns_smote_then_under_sampling(positive_share, block_rows):
    """Same rows, values, order, index and dtypes as the two samplers; up to one block of minority rows
    with their own neighbour search, beyond it with theirs given BlockNeighbors."""
    from imblearn.under_sampling import RandomUnderSampler

    X, y, _, _ = make_data(n=400, positive_share=positive_share, seed=3)
    X["count"] = np.arange(len(X)) % 7  # an integer column comes back as integers
    blocks = {} if block_rows is None else {"neighbour_block_rows": block_rows}
    X_res, y_res, report = rebalance(X, y, random_state=7, **blocks)
    k = 5 if block_rows is None else BlockNeighbors(n_neighbors=6, block_rows=block_rows)
    X_ref, y_ref = SMOTE(sampling_strategy=0.5, k_neighbors=k, random_state=7).fit_resample(X, y)
    X_ref, y_ref = RandomUnderSampler(sampling_strategy=1.0, random_state=7).fit_resample(X_ref, y_ref)
    pd.testing.assert_frame_equal(X_res, X_ref)
    pd.testing.assert_series_equal(y_res, y_ref)
    assert report["applied"] and report["after"]["positive_share"] == 0.5


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 150), k=st.integers(1, 6), block_rows=st.integers(12, 50), seed=st.integers(0, 10**6))
def test_block_neighbors_are_the_exact_neighbours_within_runs_of_consecutive_rows(n, k, block_rows, seed):
    from sklearn.neighbors import NearestNeighbors

    k = min(k, n)
    rows = np.random.default_rng(seed).normal(size=(n, 3))  # distinct rows: each is its own nearest
    d, i = BlockNeighbors(n_neighbors=k, block_rows=block_rows).fit(rows).kneighbors(rows)
    assert i.shape == d.shape == (n, k) and (i[:, 0] == np.arange(n)).all()
    n_blocks = -(-n // block_rows)
    for block in np.array_split(np.arange(n), n_blocks):
        assert len(block) <= block_rows
        part = rows[block]
        expected_d, expected_i = NearestNeighbors(n_neighbors=k).fit(part).kneighbors(part)
        np.testing.assert_array_equal(i[block], expected_i + block[0])
        np.testing.assert_array_equal(d[block], expected_d)
    graph = BlockNeighbors(n_neighbors=k, block_rows=block_rows).fit(rows).kneighbors_graph(rows, mode="distance")
    assert graph.shape == (n, n) and graph.nnz == n * k  # zero self-distances stay stored entries
    np.testing.assert_array_equal(np.sort(graph.indices.reshape(n, k), axis=1), np.sort(i, axis=1))
    with pytest.raises(ValueError, match="rows it was fitted on"):
        BlockNeighbors(n_neighbors=k).fit(rows).kneighbors(rows.copy())


def test_rebalance_searches_smotes_neighbours_in_blocks_of_the_minority(monkeypatch):
    X, y, _, _ = make_data(n=600, positive_share=0.15, seed=5)
    searched = []
    original = BlockNeighbors.kneighbors

    def spy(self, X=None, **kwargs):
        searched.append((len(self._fit_X), self.block_rows))
        return original(self, X, **kwargs)

    monkeypatch.setattr(BlockNeighbors, "kneighbors", spy)
    rebalance(X, y)
    X_res, y_res, report = rebalance(X, y, neighbour_block_rows=30)
    assert searched == [(int(y.sum()), SMOTE_NEIGHBOUR_BLOCK_ROWS), (int(y.sum()), 30)]
    assert report["after"]["n_positive"] == report["after"]["n_negative"] == (len(y) - int(y.sum())) // 2


def test_rebalance_skips_a_minority_of_one_row():
    X = pd.DataFrame({"a": np.arange(50.0)})
    y = pd.Series([1] + [0] * 49)
    X_res, y_res, report = rebalance(X, y)
    assert not report["applied"] and "minority class has 1 row" in report["reason"]
    assert X_res is X and y_res is y


def test_the_stored_model_is_fitted_on_every_row_and_the_estimate_on_the_training_part_only():
    X, y, ts, change = make_data(n=400, positive_share=0.4)
    result = fit(X, y, ts, cv_splits=3, imbalance="none")
    from sklearn.base import clone

    train_rows = result.split["n_train"]
    estimate = clone(result.estimator).fit(X.iloc[:train_rows], y.iloc[:train_rows])
    final = clone(result.estimator).fit(X, y)
    # Same inputs, same seed: the stored estimator is the one fitted on all rows, not the estimate's.
    np.testing.assert_allclose(result.estimator.predict_proba(X), final.predict_proba(X))
    assert not np.allclose(estimate.predict_proba(X), final.predict_proba(X))
    assert result.split["final_fit"]["rows"] == 400 and result.timings["final_fit_seconds"] > 0


def _pumps(n=300, every=30, quiet_every=2):
    """One coin, a row a minute; 3-row pumps every ``every`` rows, every ``quiet_every``-th without a volume burst."""
    y = np.zeros(n, dtype=int)
    X = pd.DataFrame({"volume_ratio_15": np.ones(n), "price_change_5": np.zeros(n), "noise": np.zeros(n)})
    for number, start in enumerate(range(10, n - 3, every)):
        y[start:start + 3] = 1
        X.loc[start:start + 2, "price_change_5"] = 5.0
        X.loc[start:start + 2, "volume_ratio_15"] = 1.0 if number % quiet_every else 10.0
    return X, y, pd.date_range("2025-09-01", periods=n, freq="1min", tz="UTC"), np.array(["a"] * n)


FOLDS = [(np.arange(0, 100), np.arange(100, 200)), (np.arange(0, 200), np.arange(200, 300))]


def AT_HALF(proba):  # noqa: N802 - the operating point of objective "none"
    return 0.5


def test_rule_comparison_counts_pumps_on_the_test_parts_with_rules_fitted_on_the_training_parts():
    from pump_orchestration.ml.events import PumpDefinition
    from pump_orchestration.ml.training import rule_baseline_comparison

    X, y, ts, mints = _pumps()
    test_rows = np.arange(100, 300)
    compare = lambda pred, X=X: rule_baseline_comparison(  # noqa: E731
        X, y, FOLDS, pred, ts, mints, PumpDefinition(pd.Timedelta("2min")), model_type="xgboost",
        threshold_for=AT_HALF)
    perfect = compare(y[test_rows])
    # Half the pumps have no volume burst: the rule (volume and price) catches the other half, the model all.
    assert perfect["level"] == "event" and perfect["applicable"] and perfect["rows"] == 200
    assert perfect["model"]["events"] == perfect["rule"]["events"] == 7
    assert perfect["model"]["detected_before_peak"] == 7 and perfect["rule"]["detected_before_peak"] in (3, 4)
    assert perfect["model_score"] == 1.0 and perfect["model_score"] > perfect["rule_score"]
    silent = compare(np.zeros(200, dtype=int))
    assert silent["model_score"] == 0.0 and silent["rule_score"] == perfect["rule_score"]
    # The rule's thresholds come from the training parts only: scrambling the last test part changes nothing.
    scrambled = X.copy()
    scrambled.iloc[200:] = scrambled.iloc[200:].sample(frac=1, random_state=0).to_numpy()
    assert compare(y[test_rows], scrambled)["rule_thresholds"] == perfect["rule_thresholds"]


def test_rule_comparison_falls_back_to_rows_or_declines():
    from pump_orchestration.ml.events import PumpDefinition
    from pump_orchestration.ml.training import rule_baseline_comparison

    X, y, ts, mints = _pumps()
    rows = rule_baseline_comparison(X, y, FOLDS, y[100:], ts, None, PumpDefinition(pd.Timedelta("2min")),
                                    model_type="xgboost", threshold_for=AT_HALF)
    assert rows["level"] == "row" and rows["model_score"] == 1.0 and rows["rule_score"] < 1.0
    itself = rule_baseline_comparison(X, y, FOLDS, y[100:], ts, mints, None, model_type="rule_baseline",
                                      threshold_for=AT_HALF)
    assert not itself["applicable"] and itself["reason"] == "the model is the rule baseline itself"
    blind = rule_baseline_comparison(X[["noise"]], y, FOLDS, y[100:], ts, mints, PumpDefinition(pd.Timedelta("2min")),
                                     model_type="xgboost", threshold_for=AT_HALF)
    assert not blind["applicable"] and "volume_ratio_{w}" in blind["reason"]


def test_the_rule_gate_is_recorded_and_does_not_block():
    from pump_orchestration.ml.quality import ACTIVATION_GATES, model_checks

    X, y, ts, mints = _pumps()
    X["noise"] = np.random.default_rng(0).normal(size=len(X))
    result = fit(X, pd.Series(y), pd.Series(ts), mints=pd.Series(mints), horizon=pd.Timedelta("2min"),
                 imbalance="none")
    comparison = result.rule_baseline
    assert comparison["applicable"] and comparison["level"] == "event"
    assert comparison["rows"] == sum(result.cv_scores["test_rows_per_fold"])
    gate = {c.name: c for c in model_checks(result.metrics, result.cv_overfitting_gap, comparison)}
    rule_gate = gate["beats_rule_baseline"]
    assert not rule_gate.blocking and "beats_rule_baseline" in ACTIVATION_GATES
    assert rule_gate.passed == (comparison["model_score"] > comparison["rule_score"])
    assert "rule_baseline_seconds" in result.timings


def test_the_rule_baseline_model_type_fits_on_raw_rows_for_pumps_caught():
    X, y, ts, mints = _pumps()
    result = fit(X, pd.Series(y), pd.Series(ts), model_type="rule_baseline", params={}, mints=pd.Series(mints),
                 horizon=pd.Timedelta("2min"))  # imbalance stays smote: the rule ignores it, and says why
    assert not result.resampling["applied"] and "raw rows" in result.resampling["reason"]
    rule = result.estimator
    # Only the pumps with a volume burst (10x) can be caught; the event fit finds bars below both jumps.
    assert rule.columns_ == ("volume_ratio_15", "price_change_5") and rule.k_ < 10 and rule.p_ < 5
    assert rule.predict(X).sum() == int(((X["volume_ratio_15"] > rule.k_) & (X["price_change_5"] > rule.p_)).sum())
    assert not result.rule_baseline["applicable"]


def _known_rates(n, seed):
    """Rows whose true pump probability is known: ``0.02 + 0.3 * x**2`` (about 12 % positives)."""
    rng = np.random.default_rng(seed)
    x = rng.random(n)
    truth = 0.02 + 0.3 * x ** 2
    y = pd.Series((rng.random(n) < truth).astype(int))
    X = pd.DataFrame({"x": x, "noise": rng.normal(size=n)})
    ts = pd.Series(pd.date_range("2025-09-01", periods=n, freq="1min", tz="UTC"))
    return X, y, ts, truth


@pytest.mark.parametrize("calibration", ["sigmoid", "isotonic"])
def test_calibrated_probabilities_are_closer_to_the_known_rates_than_smote_inflated_ones(calibration):
    from sklearn.metrics import brier_score_loss

    X, y, ts, _ = _known_rates(3000, seed=1)
    X_new, y_new, _, truth = _known_rates(3000, seed=2)  # a later window neither model has seen
    raw = fit(X, y, ts, model_type="logistic_regression", cv_splits=3)
    calibrated = fit(X, y, ts, model_type="logistic_regression", cv_splits=3, calibration=calibration)
    p_raw = predict_proba_positive(raw.estimator, X_new)
    p_cal = predict_proba_positive(calibrated.estimator, X_new)
    assert p_raw.mean() > 2 * truth.mean()  # SMOTE's 1:1 training data inflates the probabilities
    assert brier_score_loss(y_new, p_cal) < brier_score_loss(y_new, p_raw)
    assert np.abs(p_cal - truth).mean() < 0.05 < np.abs(p_raw - truth).mean()
    report = calibrated.calibration
    assert report["method"] == calibration and report["after"]["brier"] < report["before"]["brier"]
    assert raw.calibration["after"] is None and raw.calibration["before"] == report["before"]
    assert sum(row["count"] for row in report["reliability_after"]) == report["rows"]
    # The alert threshold is chosen on the calibrated out-of-fold probabilities (a pump rate, not a 1:1 score).
    assert calibrated.operating_point["threshold"] < raw.operating_point["threshold"]


def test_the_calibrator_sees_only_out_of_fold_rows_of_the_window(monkeypatch):
    from pump_orchestration.ml import training

    seen = []
    original = training.ProbabilityCalibrator.fit
    monkeypatch.setattr(training.ProbabilityCalibrator, "fit",
                        lambda self, proba, labels: seen.append((np.array(proba), np.array(labels)))
                        or original(self, proba, labels))
    X, y, ts, _ = _known_rates(600, seed=3)
    shuffled = np.random.default_rng(0).permutation(len(X))  # input order must not matter
    result = fit(X.iloc[shuffled], y.iloc[shuffled], ts.iloc[shuffled], model_type="logistic_regression",
                 cv_splits=3, calibration="isotonic")
    (proba, labels), = seen
    first_test = result.cv_scores["train_rows_per_fold"][0] + result.cv_scores["purged_rows_per_fold"][0]
    # Exactly the CV test parts, in time order: every row after the first fold's training part, none before.
    assert labels.tolist() == y.iloc[first_test:].tolist() and proba.size == sum(result.cv_scores["test_rows_per_fold"])
    # Each came from a fold model fitted before the row: scrambling the last test part's labels changes
    # no earlier out-of-fold probability (a look-ahead, e.g. the final model's predictions, would).
    last = result.cv_scores["test_rows_per_fold"][-1]
    scrambled = y.copy()
    scrambled.iloc[-last:] = 1 - scrambled.iloc[-last:]
    seen.clear()
    fit(X, scrambled, ts, model_type="logistic_regression", cv_splits=3, calibration="isotonic")
    np.testing.assert_array_equal(seen[0][0][:-last], proba[:-last])


@pytest.mark.parametrize("model_type", [m for m in MODEL_TYPES if m != "rule_baseline"])
def test_class_weights_balance_the_rows_of_every_fit(model_type, monkeypatch):
    from pump_orchestration.ml import training

    calls = []
    original = training.balanced_weight_params
    monkeypatch.setattr(training, "balanced_weight_params",
                        lambda estimator, y: calls.append(np.asarray(y)) or original(estimator, y))
    X, y, ts, _ = make_data(positive_share=0.15)
    result = fit(X, y, ts, model_type=model_type, cv_splits=3, imbalance="class_weight")
    # Three CV folds, the evaluation fit and the final fit, each weighting its own rows.
    assert [len(c) for c in calls] == result.cv_scores["train_rows_per_fold"] + [result.split["n_train"], len(X)]
    for labels in calls:
        weights = original(build_estimator(model_type), labels).popitem()[1]
        assert weights[labels == 1].sum() == pytest.approx(weights[labels == 0].sum())
    assert result.resampling["method"] == "class_weight"
    assert result.resampling["after"]["n_rows"] == result.split["n_train"]
    assert result.metrics["f1"] > 0.7
    assert not isinstance(result.estimator, training.BalancedWeightsClassifier)  # the store gets the model itself


def test_unknown_imbalance_and_calibration_are_refused():
    X, y, ts, _ = make_data()
    with pytest.raises(ValueError, match="^imbalance: 'smoote' is unknown"):
        fit(X, y, ts, imbalance="smoote")
    with pytest.raises(ValueError, match="^calibration: 'beta' is unknown"):
        fit(X, y, ts, calibration="beta")


def test_a_calibrated_model_round_trips_through_the_model_store(tmp_path):
    from pump_orchestration.ml.model_store import ModelStore

    X, y, ts, _ = _known_rates(600, seed=4)
    result = fit(X, y, ts, model_type="xgboost", cv_splits=3, calibration="sigmoid", imbalance="class_weight")
    store = ModelStore(tmp_path)
    stored = store.save(result.estimator, name="calibrated", feature_names=result.feature_names, metadata={})
    loaded = store.load(stored.path, stored.sha256).estimator
    np.testing.assert_array_equal(predict_proba_positive(loaded, X), predict_proba_positive(result.estimator, X))
    raw = predict_proba_positive(result.estimator.estimator, X)
    # The calibrated probability is a monotone map of the final model's own probability.
    order = np.argsort(raw)
    assert np.all(np.diff(predict_proba_positive(loaded, X)[order]) >= 0)
    assert set(np.unique(loaded.predict(X))) <= {0, 1}


def test_known_events_choose_the_operating_point_and_judge_the_gate_by_the_table_not_by_label_runs():
    from pump_orchestration.ml.events import known_event_judge
    from pump_orchestration.ml.labels import known_event_labels

    # One coin, a row a minute; known pumps come in pairs 2 minutes apart. With lead 2 min their labels form
    # ONE run, so events extracted from the labels would count one pump per pair: the table counts two.
    n, lead = 300, pd.Timedelta("2min")
    ts = pd.date_range("2025-09-01", periods=n, freq="1min", tz="UTC")
    starts = [ts[s] for first in range(20, n - 10, 30) for s in (first, first + 3)]
    events = pd.DataFrame({"mint": "a", "start": starts, "end": [s + pd.Timedelta("1min") for s in starts]})
    frame = pd.DataFrame({"mint": "a", "timestamp": ts})
    y = known_event_labels(frame, events, lead_minutes=2.0).astype(int)
    X = pd.DataFrame({"volume_ratio_15": np.where(y == 1, 10.0, 1.0), "price_change_5": np.where(y == 1, 5.0, 0.0),
                      "noise": np.random.default_rng(0).normal(size=n)})
    result = fit(X, y, pd.Series(ts), mints=pd.Series(["a"] * n), horizon=lead, known_events=events,
                 imbalance="none", cv_splits=3)
    eval_rows = np.arange(n - sum(result.cv_scores["test_rows_per_fold"]), n)
    expected = len(known_event_judge(events, np.array(["a"] * len(eval_rows)), ts[eval_rows], lead=lead).events)
    assert expected >= 10 and expected % 2 == 0
    assert result.operating_point["used"] == "max_events_within_false_alarms"
    assert result.operating_point["at_threshold"]["events"] == expected
    assert result.rule_baseline["level"] == "event" and result.rule_baseline["model"]["events"] == expected
    # Without the table the same labels give half as many pumps.
    by_labels = fit(X, y, pd.Series(ts), mints=pd.Series(["a"] * n), horizon=lead, imbalance="none", cv_splits=3)
    assert by_labels.operating_point["at_threshold"]["events"] == expected // 2


def test_a_known_events_request_without_the_table_is_refused():
    from pump_orchestration.ml.pipeline import fit_request
    from pump_orchestration.ml.request import TrainingRequest

    X, y, ts, mints = _pumps()
    request = TrainingRequest(name="k", model_type="random_forest", label_source="known_events")
    with pytest.raises(ValueError, match="known_events: a label_source known_events request needs"):
        fit_request(X, pd.Series(y), pd.Series(ts), None, request, params={}, train_start=ts[0],
                    train_end=ts[-1], mints=pd.Series(mints))


# --- memory: folds are views, the time order copies only when the rows are out of order ---------------------


@pytest.mark.parametrize("resample", [False, True])
def test_cv_scores_and_out_of_fold_probabilities_are_those_of_sklearn_cross_validate(resample):
    from imblearn import FunctionSampler
    from imblearn.pipeline import Pipeline
    from sklearn.metrics import f1_score, make_scorer, precision_score, recall_score
    from sklearn.model_selection import TimeSeriesSplit, cross_validate

    from pump_orchestration.ml.training import _cross_validate

    X, y, _, _ = make_data(n=400, positive_share=0.15)
    folds = [(train[:-5], test) for train, test in TimeSeriesSplit(n_splits=3).split(X)]  # purged: a suffix less
    model = build_estimator("random_forest", FAST["random_forest"], n_jobs=1)
    scores, oof = _cross_validate(model, X, y, folds, [5, 5, 5], resample, 42, {})
    reference = Pipeline([("resample", FunctionSampler(func=lambda X, y: rebalance(X, y, 42)[:2], validate=False)),
                          ("model", model)]) if resample else model
    raw = cross_validate(reference, X, y, cv=folds, return_train_score=True, return_estimator=True, scoring={
        "accuracy": "accuracy", "f1": make_scorer(f1_score, zero_division=0),
        "precision": make_scorer(precision_score, zero_division=0),
        "recall": make_scorer(recall_score, zero_division=0)})
    for metric in ("accuracy", "f1", "precision", "recall"):
        for part in ("train", "test"):
            assert scores[f"{part}_{metric}"] == pytest.approx(list(raw[f"{part}_{metric}"]), abs=0)
    expected = np.concatenate([predict_proba_positive(fitted, X.iloc[test])
                               for fitted, (_, test) in zip(raw["estimator"], folds)])
    np.testing.assert_array_equal(oof, expected)


@given(st.lists(st.integers(0, 29), max_size=30), st.booleans())
@settings(max_examples=60, deadline=None)
def test_rows_are_iloc_rows_and_a_view_exactly_for_one_ascending_run(positions, run):
    from pump_orchestration.ml.training import _rows

    frame = pd.DataFrame(np.arange(60.0).reshape(30, 2), columns=["a", "b"], index=np.arange(30) * 7)
    idx = np.arange(min(positions, default=0), max(positions, default=-1) + 1) if run else np.array(positions, int)
    got = _rows(frame, idx)
    pd.testing.assert_frame_equal(got, frame.iloc[idx])
    ascending_run = idx.size > 0 and np.array_equal(idx, np.arange(idx[0], idx[0] + idx.size))
    assert np.shares_memory(got.to_numpy(), frame.to_numpy()) == ascending_run


def test_rows_in_time_order_are_not_copied_and_out_of_order_rows_are_copied_once():
    from pump_orchestration.ml.training import _in_time_order

    frame = pd.DataFrame({"a": np.arange(5.0), "b": np.arange(5.0) * 2}, index=[10, 11, 12, 13, 14])
    ordered = _in_time_order(frame, frame.index)
    assert np.shares_memory(ordered.to_numpy(), frame.to_numpy())
    assert list(ordered.index) == [0, 1, 2, 3, 4] and list(frame.index) == [10, 11, 12, 13, 14]  # caller's untouched
    order = pd.Index([13, 10, 14, 11, 12])
    shuffled = _in_time_order(frame, order)
    pd.testing.assert_frame_equal(shuffled, frame.loc[order].reset_index(drop=True))
    assert not np.shares_memory(shuffled.to_numpy(), frame.to_numpy())


def test_every_fit_of_time_ordered_rows_gets_views_of_the_callers_matrix(monkeypatch):
    """CV folds, the evaluation fit and the final fit read the caller's values: no copy of the matrix."""
    from sklearn.linear_model import LogisticRegression

    from pump_orchestration.ml import training

    X, y, ts, _ = make_data(n=400, positive_share=0.4)
    X = pd.DataFrame(np.ascontiguousarray(X.to_numpy().T).T, columns=X.columns)  # one block, as feature_frame's
    shared = []

    class Recording(LogisticRegression):
        def fit(self, X_fit, y_fit, **params):
            shared.append(np.shares_memory(X_fit.to_numpy(), X.to_numpy()))
            return super().fit(X_fit, y_fit, **params)

    monkeypatch.setattr(training, "build_estimator", lambda *args, **kwargs: Recording())
    result = fit(X, y, ts, model_type="logistic_regression", cv_splits=3, imbalance="none")
    assert shared == [True] * 5  # three folds, the evaluation fit, the final fit
    assert result.cv_scores["mean_test_accuracy"] > 0.8

