import dataclasses

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

from pump_orchestration.data.synthetic import generate_coin_metrics
from pump_orchestration.ml import evaluation
from pump_orchestration.ml.dataset import DatasetError, build_feature_matrix, make_labels, select_rows
from pump_orchestration.ml.evaluation import (
    OVERFIT_GAP,
    ModelUnderTest,
    choose_winner,
    compare_models,
    degradation,
    evaluate_model,
    overlap_check,
    paired_significance,
    score_rows,
)
from pump_orchestration.ml.events import event_f1
from pump_orchestration.ml.model_store import LoadedModel, ModelStore
from pump_orchestration.ml.records import TrainedModel
from pump_orchestration.ml.request import FeatureSpec, LabelSpec, TrainingRequest
from pump_orchestration.ml.training import train_classifier
from pump_orchestration.warehouse import schema

T0 = pd.Timestamp("2025-09-01T00:00:00Z")
TRAIN_END = T0 + pd.Timedelta(hours=5)
TEST_END = T0 + pd.Timedelta(hours=8)
LABEL = dict(target_var="price_close", future_minutes=5, min_percent_change=10.0)
INFORMATIVE = ("volume_sol", "buy_volume_sol", "sell_volume_sol", "num_buys", "num_sells")
NOISE = ("noise_1", "noise_2")


def h(hours: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=hours)


def train(frame: pd.DataFrame, request: TrainingRequest, start: pd.Timestamp, end: pd.Timestamp,
          known_events: pd.DataFrame | None = None) -> TrainedModel:
    """The training pipeline in miniature: labels before ``end``, features, rows, a small forest."""
    before_end = frame[frame["timestamp"] < end]
    labels, change = make_labels(before_end, request.label_spec, known_events)
    X, _ = build_feature_matrix(before_end, request.feature_spec)
    inputs = select_rows(X, labels, before_end, start=start, end=end, phases=request.phases, future_change=change)
    result = train_classifier(inputs.X, inputs.y, inputs.timestamps, model_type="random_forest",
                              params={"n_estimators": 30, "max_depth": 6}, cv_splits=2,
                              horizon=request.label_spec.horizon, future_change_pct=inputs.future_change_pct,
                              n_jobs=1)
    return TrainedModel(request=request, train_start=start, train_end=end, result=result)


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    """8 h of synthetic coin_metrics with planted pumps, two pure-noise columns, rows shuffled."""
    metrics, _ = generate_coin_metrics(n_coins=150, hours=8, seed=7)
    rng = np.random.default_rng(1)
    for column in NOISE:
        metrics[column] = rng.normal(size=len(metrics))
    return metrics.sample(frac=1.0, random_state=3)


@pytest.fixture(scope="module")
def trained(frame) -> dict[str, TrainedModel]:
    informative = TrainingRequest(name="informative", model_type="random_forest", features=INFORMATIVE,
                                  feature_engineering_windows=(1, 5), **LABEL)
    noise = TrainingRequest(name="noise", model_type="random_forest", features=NOISE,
                            use_engineered_features=False, **LABEL)
    return {"a": train(frame, informative, T0, TRAIN_END), "b": train(frame, noise, T0, TRAIN_END)}


@pytest.fixture(scope="module")
def model_a(trained) -> ModelUnderTest:
    return ModelUnderTest.from_trained(trained["a"], model_id=1)


@pytest.fixture(scope="module")
def model_b(trained) -> ModelUnderTest:
    return ModelUnderTest.from_trained(trained["b"], model_id=2)


@pytest.fixture(scope="module")
def comparison(model_a, model_b, frame):
    return compare_models(model_a, model_b, frame, TRAIN_END, TEST_END)


def assert_plain(values: dict) -> None:
    """JSON/DB-ready: plain Python scalars (no numpy subclasses), Timestamps, dicts and lists of them."""
    for key, value in values.items():
        if isinstance(value, dict):
            assert_plain(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    assert_plain(item)
                else:
                    assert type(item) in (int, float), key
        else:
            assert type(value) in (int, float, bool, str, type(None), pd.Timestamp), (key, type(value))


# --- pure helpers -------------------------------------------------------------------------------


def test_overlap_disjoint_and_adjacent_windows_do_not_overlap():
    assert overlap_check(h(0), h(24), h(48), h(72)) == (False, None)
    assert overlap_check(h(48), h(72), h(0), h(24)) == (False, None)
    # Half-open windows: a test window starting at train_end shares no instant with it.
    assert overlap_check(h(0), h(24), h(24), h(48)) == (False, None)


def test_overlap_partial_reports_hours_and_share_of_test_window():
    has_overlap, note = overlap_check(h(0), h(24), h(18), h(42))
    assert has_overlap
    assert note == ("test window overlaps the training window by 6.0 h (25.0 % of the test window); "
                    "metrics may be optimistic")


def test_overlap_contained_in_either_direction():
    assert overlap_check(h(0), h(48), h(10), h(20)) == (
        True, "test window overlaps the training window by 10.0 h (100.0 % of the test window); "
              "metrics may be optimistic")
    has_overlap, note = overlap_check(h(10), h(12), h(0), h(24))
    assert has_overlap and "by 2.0 h (8.3 % of the test window)" in note


def test_overlap_accepts_naive_datetimes_as_utc_and_rejects_an_empty_test_window():
    assert overlap_check(h(0).tz_localize(None), h(24).tz_localize(None), h(12), h(36))[0]
    with pytest.raises(ValueError, match="test_start .* must be before test_end"):
        overlap_check(h(0), h(24), h(30), h(30))


def test_degradation_and_the_overfitting_boundary():
    at_boundary = degradation({"accuracy": 0.8, "f1": 0.6}, {"accuracy": 0.7, "f1": 0.5})
    assert at_boundary["accuracy_degradation"] == pytest.approx(OVERFIT_GAP)
    assert at_boundary["f1_degradation"] == pytest.approx(0.1)
    assert at_boundary["is_overfitted"] is False  # 0.8 - 0.7 is 0.10000000000000009 in floats
    assert degradation({"accuracy": 0.95}, {"accuracy": 0.85})["is_overfitted"] is False
    assert degradation({"accuracy": 0.801}, {"accuracy": 0.7})["is_overfitted"] is True
    improved = degradation({"accuracy": 0.7, "f1": 0.4}, {"accuracy": 0.9, "f1": 0.5})
    assert improved["accuracy_degradation"] == pytest.approx(-0.2) and improved["is_overfitted"] is False
    assert degradation({"accuracy": None, "f1": 0.5}, {"accuracy": 0.7, "f1": None}) == {
        "accuracy_degradation": None, "f1_degradation": None, "is_overfitted": None}
    assert degradation({}, {"accuracy": 0.7})["is_overfitted"] is None


def test_choose_winner_f1_first_then_roc_auc():
    assert choose_winner({"f1": 0.6, "roc_auc": 0.5}, {"f1": 0.5, "roc_auc": 0.9}) == "a"
    assert choose_winner({"f1": 0.5, "roc_auc": 0.9}, {"f1": 0.6, "roc_auc": 0.5}) == "b"
    assert choose_winner({"f1": 0.5, "roc_auc": 0.7}, {"f1": 0.5, "roc_auc": 0.8}) == "b"
    assert choose_winner({"f1": 0.5 + 1e-12, "roc_auc": 0.8}, {"f1": 0.5, "roc_auc": 0.7}) == "a"  # F1 within tol
    assert choose_winner({"f1": 0.5, "roc_auc": 0.8}, {"f1": 0.5, "roc_auc": 0.8}) is None
    assert choose_winner({"f1": 0.5, "roc_auc": 0.8}, {"f1": 0.52, "roc_auc": 0.7}, tol=0.05) == "a"


def test_choose_winner_by_event_f1_then_f1_then_roc_auc_and_by_roc_auc_alone():
    a, b = {"event_f1": 0.4, "f1": 0.9, "roc_auc": 0.9}, {"event_f1": 0.6, "f1": 0.1, "roc_auc": 0.1}
    assert choose_winner(a, b, winner_by="event_f1") == "b"
    assert choose_winner(a, b, winner_by="f1") == "a"
    tied_events = {**b, "event_f1": 0.4}
    assert choose_winner(a, tied_events, winner_by="event_f1") == "a"  # event F1 ties: F1 decides
    assert choose_winner(a, {**a}, winner_by="event_f1") is None
    assert choose_winner({"f1": 0.9, "roc_auc": 0.6}, {"f1": 0.1, "roc_auc": 0.7}, winner_by="roc_auc") == "b"
    assert choose_winner({"f1": 0.9, "roc_auc": 0.7}, {"f1": 0.1, "roc_auc": 0.7}, winner_by="roc_auc") is None
    assert choose_winner({"event_f1": None, "f1": 0.1}, {"event_f1": 0.0, "f1": 0.9}, winner_by="event_f1") == "b"


def test_winner_by_decides_the_comparison_and_is_stored(model_a, model_b, frame):
    # The noise model alerts on nearly every row: it loses on every figure, so the rules agree on the winner here;
    # what winner_by must change is the stored rule and which figure the winner follows.
    for winner_by, rule in (("f1", "F1, then ROC-AUC"), ("roc_auc", "ROC-AUC"),
                            ("event_f1", "event F1, then F1, then ROC-AUC")):
        result = compare_models(model_a, model_b, frame, TRAIN_END, TEST_END, winner_by=winner_by, n_bootstrap=10)
        sig = result.comparison["significance"]
        assert (sig["winner_by"], sig["rule"]) == (winner_by, rule)
        figures = [{"event_f1": event_f1(t["event_metrics"]), "f1": t["f1_score"], "roc_auc": t["roc_auc"]}
                   for t in (result.test_a, result.test_b)]
        assert result.winner == choose_winner(*figures, winner_by=winner_by) == "a"


def test_winner_by_event_f1_needs_time_based_targets(model_a, model_b, frame):
    classic = dataclasses.replace(model_b, model_id=6, label_spec=LabelSpec(
        target_var="price_close", time_based=False, operator=">", value=1.0))
    with pytest.raises(ValueError, match="winner_by: event_f1 needs time-based or known-event targets, but model .noise."):
        compare_models(model_a, classic, frame, TRAIN_END, TEST_END, winner_by="event_f1")
    with pytest.raises(ValueError, match="winner_by: 'best' is unknown; allowed: event_f1, f1, roc_auc"):
        compare_models(model_a, model_b, frame, TRAIN_END, TEST_END, winner_by="best")
    assert evaluation.resolve_winner_by(None, model_a, classic) == "f1"
    assert evaluation.resolve_winner_by(None, model_a, model_b) == "event_f1"


def test_choose_winner_none_roc_auc_is_lower_than_any_value():
    assert choose_winner({"f1": 0.5, "roc_auc": None}, {"f1": 0.5, "roc_auc": 0.0}) == "b"
    assert choose_winner({"f1": 0.5, "roc_auc": 0.1}, {"f1": 0.5, "roc_auc": None}) == "a"
    assert choose_winner({"f1": 0.5, "roc_auc": None}, {"f1": 0.5, "roc_auc": None}) is None
    assert choose_winner({"f1": 0.7, "roc_auc": None}, {"f1": 0.5, "roc_auc": 0.9}) == "a"


def _scored(y_true, y_pred) -> evaluation.ScoredRows:
    n = len(y_true)
    return evaluation.ScoredRows(
        index=pd.RangeIndex(n), y_true=np.asarray(y_true), y_pred=np.asarray(y_pred), proba=np.full(n, 0.5),
        future_change_pct=None, timestamps=pd.Series(pd.date_range(T0, periods=n, freq="s")),
        mints=pd.Series(["m"] * n), stats={})


def test_bootstrap_counts_give_sklearn_f1_difference_of_resampled_rows():
    """The multinomial shortcut: F1 from joint confusion counts equals sklearn's F1 on the resampled rows."""
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    pred_a = np.where(rng.random(300) < 0.8, y, 1 - y)
    pred_b = np.where(rng.random(300) < 0.6, y, 1 - y)
    for _ in range(20):
        rows = rng.integers(0, 300, 300)
        joint = 4 * (2 * y[rows] + pred_a[rows]) + 2 * y[rows] + pred_b[rows]
        counts = np.bincount(joint, minlength=16).reshape(4, 4)
        expected = f1_score(y[rows], pred_a[rows]) - f1_score(y[rows], pred_b[rows])
        assert evaluation._f1_diff(counts) == pytest.approx(expected, abs=1e-12)

    result = paired_significance(_scored(y, pred_a), _scored(y, pred_b), n_bootstrap=2000, random_state=0)
    naive = [f1_score(y[r], pred_a[r]) - f1_score(y[r], pred_b[r]) for r in rng.integers(0, 300, (2000, 300))]
    assert result["f1_diff"] == pytest.approx(f1_score(y, pred_a) - f1_score(y, pred_b))
    assert result["f1_diff_ci95"] == pytest.approx(np.percentile(naive, [2.5, 97.5]), abs=0.02)
    assert result == paired_significance(_scored(y, pred_a), _scored(y, pred_b), n_bootstrap=2000, random_state=0)


def test_mcnemar_counts_discordant_pairs_and_uses_the_exact_binomial_test():
    from scipy.stats import binomtest

    y = np.array([1, 1, 1, 1, 0, 0, 0, 0, 1, 0])
    a = np.array([1, 1, 1, 1, 0, 0, 0, 0, 0, 0])  # right on 9 rows
    b = np.array([0, 0, 0, 1, 0, 1, 0, 0, 1, 0])  # right on 6 rows
    result = paired_significance(_scored(y, a), _scored(y, b), n_bootstrap=50)
    assert (result["mcnemar_b01"], result["mcnemar_b10"]) == (4, 1)
    assert result["mcnemar_p"] == pytest.approx(binomtest(4, 5, 0.5).pvalue)
    assert result["significant"] is False  # p = 0.375


# --- testing a model ------------------------------------------------------------------------------


def test_every_metric_equals_sklearn_on_the_scored_rows(model_a, frame):
    scored = score_rows(model_a, frame, TRAIN_END, TEST_END)
    row = evaluate_model(model_a, frame, TRAIN_END, TEST_END)
    y, pred, proba = scored.y_true, scored.y_pred, scored.proba
    assert row["accuracy"] == pytest.approx(accuracy_score(y, pred))
    assert row["f1_score"] == pytest.approx(f1_score(y, pred))
    assert row["precision_score"] == pytest.approx(precision_score(y, pred))
    assert row["recall"] == pytest.approx(recall_score(y, pred))
    assert row["roc_auc"] == pytest.approx(roc_auc_score(y, proba))
    assert row["mcc"] == pytest.approx(matthews_corrcoef(y, pred))
    (tn, fp), (fn, tp) = confusion_matrix(y, pred)
    assert (row["tn"], row["fp"], row["fn"], row["tp"]) == (tn, fp, fn, tp)
    assert row["confusion_matrix"] == {"tp": tp, "tn": tn, "fp": fp, "fn": fn}
    assert row["fpr"] == pytest.approx(fp / (fp + tn)) and row["fnr"] == pytest.approx(fn / (fn + tp))
    assert (row["num_samples"], row["num_positive"]) == (len(y), int(y.sum()))
    assert row["num_negative"] == len(y) - int(y.sum())
    # Net mean return per predicted positive: long the future change, minus the 2 % round trip.
    assert row["simulated_profit_pct"] == pytest.approx(np.mean(scored.future_change_pct[pred == 1] - 2.0))

    # Predictions come from the model's own inputs, in its stored feature order.
    X, _ = build_feature_matrix(frame, model_a.feature_spec)
    X = X.loc[scored.index, model_a.feature_names]
    assert np.allclose(proba, model_a.estimator.predict_proba(X)[:, 1])
    # Positive = probability above the model's operating point, as live scoring alerts.
    assert row["alert_threshold"] == model_a.alert_threshold == scored.threshold
    assert np.array_equal(pred, (model_a.estimator.predict_proba(X)[:, 1] > model_a.alert_threshold).astype(int))
    assert scored.timestamps.between(TRAIN_END, TEST_END, inclusive="left").all()


def test_a_report_at_a_threshold_the_user_asks_for(model_a, frame):
    scored = score_rows(model_a, frame, TRAIN_END, TEST_END)
    for threshold in (0.2, 0.9):
        row = evaluate_model(model_a, frame, TRAIN_END, TEST_END, threshold=threshold)
        pred = (scored.proba > threshold).astype(int)
        assert row["alert_threshold"] == threshold
        assert row["f1_score"] == pytest.approx(f1_score(scored.y_true, pred, zero_division=0))
        assert row["event_metrics"]["alerts"] == int(pred.sum())
        assert row["roc_auc"] == pytest.approx(roc_auc_score(scored.y_true, scored.proba))  # threshold-free
    with pytest.raises(ValueError, match=r"threshold: must be a probability within \[0, 1\]"):
        evaluate_model(model_a, frame, TRAIN_END, TEST_END, threshold=1.5)


def test_test_row_has_exactly_the_ml_test_results_columns_as_plain_values(model_a, frame):
    row = evaluate_model(model_a, frame, TRAIN_END, TEST_END)
    assert set(row) == set(schema.ml_test_results.columns.keys()) - {"id", "created_at"}
    assert_plain(row)
    assert row["model_id"] == 1
    assert (row["test_start"], row["test_end"]) == (TRAIN_END, TEST_END)
    assert row["test_duration_days"] == pytest.approx(3 / 24)
    assert row["has_overlap"] is False and row["overlap_note"] is None
    train = model_a.train_metrics
    assert (row["train_accuracy"], row["train_f1"]) == (train["accuracy"], train["f1"])
    assert row["accuracy_degradation"] == pytest.approx(train["accuracy"] - row["accuracy"])
    assert row["f1_degradation"] == pytest.approx(train["f1"] - row["f1_score"])
    assert row["is_overfitted"] == (row["accuracy_degradation"] > OVERFIT_GAP)
    events = row["event_metrics"]
    assert events["events"] >= 1 and 0 <= events["detected_before_peak"] <= events["detected"] <= events["events"]
    assert events["parameters"]["lead_s"] == events["parameters"]["cooldown_s"] == 5 * 60  # one label horizon


def test_overlapping_test_window_is_tested_with_a_warning(model_a, frame):
    row = evaluate_model(model_a, frame, h(4), h(6))
    assert row["has_overlap"] is True
    assert "by 1.0 h (50.0 % of the test window)" in row["overlap_note"]


def test_labels_never_look_past_test_end(model_a, frame):
    test_end = h(6.5)
    truncated = frame[frame["timestamp"] < test_end]
    own, _ = make_labels(truncated, model_a.label_spec)
    full, _ = make_labels(frame, model_a.label_spec)
    in_window = (frame["timestamp"] >= TRAIN_END) & (frame["timestamp"] < test_end)
    crosses_end = full[in_window].notna() & own.reindex(frame.index)[in_window].isna()
    assert crosses_end.sum() > 50  # rows the full data could label, but only by looking past test_end

    scored = score_rows(model_a, frame, TRAIN_END, test_end)
    assert not scored.index.isin(crosses_end[crosses_end].index).any()
    assert np.array_equal(scored.y_true, own.loc[scored.index].to_numpy(dtype=int))
    assert (scored.timestamps + model_a.label_spec.horizon < test_end).all()
    assert evaluate_model(model_a, frame, TRAIN_END, test_end)["num_samples"] == len(scored.index)


def test_a_feature_the_frame_lacks_is_named(model_a, model_b, frame):
    with pytest.raises(DatasetError, match="noise_1"):
        evaluate_model(model_b, frame.drop(columns=["noise_1"]), TRAIN_END, TEST_END)
    # Engineered features the data (here: the spec) does not produce are named too.
    no_engineered = dataclasses.replace(
        model_a, feature_spec=FeatureSpec(base_features=model_a.feature_spec.base_features, use_engineered=False))
    first_engineered = model_a.feature_names[len(INFORMATIVE)]
    with pytest.raises(DatasetError, match=f"'informative' needs feature.*{first_engineered}"):
        evaluate_model(no_engineered, frame, TRAIN_END, TEST_END)


def test_features_are_built_once_per_spec(model_a, model_b, frame, monkeypatch):
    calls = []

    def counting(df, spec):
        calls.append(spec)
        return build_feature_matrix(df, spec)

    monkeypatch.setattr(evaluation, "build_feature_matrix", counting)
    cache: dict = {}
    copy_of_a = dataclasses.replace(model_a, model_id=3)
    first = evaluate_model(model_a, frame, TRAIN_END, TEST_END, features_cache=cache)
    again = evaluate_model(copy_of_a, frame, h(5.5), TEST_END, features_cache=cache)
    evaluate_model(model_b, frame, TRAIN_END, TEST_END, features_cache=cache)
    assert calls == [model_a.feature_spec, model_b.feature_spec]
    assert {k for k in cache if isinstance(k, FeatureSpec)} == set(calls)
    assert first["num_samples"] > again["num_samples"] > 0


def test_model_from_row_and_artifact_equals_model_from_training(trained, model_a, frame, tmp_path):
    store = ModelStore(tmp_path)
    artifact = store.save(trained["a"].result.estimator, name="informative",
                          feature_names=trained["a"].result.feature_names,
                          metadata=trained["a"].artifact_metadata())
    row = {"id": 1, **trained["a"].ml_models_values(artifact.path, artifact.sha256)}
    loaded = store.load(artifact.path, artifact.sha256)
    from_row = ModelUnderTest.from_row(row, loaded)
    assert (from_row.label_spec, from_row.feature_spec, from_row.phases) == (
        model_a.label_spec, model_a.feature_spec, model_a.phases)
    assert (from_row.feature_names, from_row.train_metrics, from_row.fee_pct) == (
        model_a.feature_names, model_a.train_metrics, model_a.fee_pct)
    assert (from_row.train_start, from_row.train_end) == (T0, TRAIN_END)
    assert from_row.alert_threshold == model_a.alert_threshold == row["alert_threshold"]
    assert evaluate_model(from_row, frame, TRAIN_END, TEST_END) == evaluate_model(model_a, frame, TRAIN_END, TEST_END)

    # An artifact without metadata falls back to the row's columns and params["_request"].
    bare = LoadedModel(estimator=loaded.estimator, feature_names=[], metadata={}, library_versions={})
    naive_row = {**row, "train_start": T0.tz_localize(None), "train_end": TRAIN_END.tz_localize(None)}
    fallback = ModelUnderTest.from_row(naive_row, bare)
    assert dataclasses.replace(fallback, estimator=None) == dataclasses.replace(from_row, estimator=None)

    with pytest.raises(ValueError, match="do not belong together"):
        ModelUnderTest.from_row({**row, "features": list(reversed(row["features"]))}, loaded)


# --- comparing two models -------------------------------------------------------------------------


def test_informative_model_beats_noise_significantly(comparison):
    sig = comparison.comparison["significance"]
    assert comparison.winner == "a"
    assert comparison.test_a["f1_score"] > comparison.test_b["f1_score"]
    assert sig["rule"] == "event F1, then F1, then ROC-AUC" and sig["winner_by"] == "event_f1"  # time-based default
    assert sig["n_bootstrap"] == 1000 and sig["same_labels"] is True
    assert event_f1(comparison.test_a["event_metrics"]) > event_f1(comparison.test_b["event_metrics"])
    assert sig["f1_diff"] == pytest.approx(comparison.test_a["f1_score"] - comparison.test_b["f1_score"])
    lo, hi = sig["f1_diff_ci95"]
    assert 0 < lo <= sig["f1_diff"] <= hi
    assert sig["mcnemar_b01"] > sig["mcnemar_b10"] and sig["mcnemar_p"] < 0.05
    assert sig["significant"] is True


def test_comparison_row_has_the_ml_comparisons_columns(comparison):
    ids = {"id", "model_a_id", "model_b_id", "test_a_id", "test_b_id", "winner_id", "created_at"}
    values = comparison.comparison
    assert set(values) == set(schema.ml_comparisons.columns.keys()) - ids
    assert_plain(values)
    assert_plain(comparison.test_a)
    assert values["num_samples"] == comparison.test_a["num_samples"] == comparison.test_b["num_samples"]
    assert values["a_f1"] == comparison.test_a["f1_score"] and values["b_roc_auc"] == comparison.test_b["roc_auc"]
    assert comparison.rows_dropped == {"only_a": 0, "only_b": 0}


def test_identical_models_tie(model_a, frame):
    copy = dataclasses.replace(model_a, model_id=3)  # the same estimator object
    result = compare_models(model_a, copy, frame, TRAIN_END, TEST_END)
    sig = result.comparison["significance"]
    assert result.winner is None
    assert sig["f1_diff"] == 0 and sig["f1_diff_ci95"] == [0.0, 0.0]
    assert (sig["mcnemar_b01"], sig["mcnemar_b10"], sig["mcnemar_p"]) == (0, 0, 1.0)
    assert sig["significant"] is False


def test_the_same_model_cannot_be_compared_with_itself(model_a, frame):
    with pytest.raises(ValueError, match="model_a and model_b must differ"):
        compare_models(model_a, dataclasses.replace(model_a, name="other"), frame, TRAIN_END, TEST_END)
    unsaved = dataclasses.replace(model_a, model_id=None)
    with pytest.raises(ValueError, match="model_a and model_b must differ"):
        compare_models(unsaved, unsaved, frame, TRAIN_END, TEST_END)


def test_rows_one_model_cannot_score_are_dropped_for_both(model_a, model_b, frame, comparison):
    broken = frame.copy()
    in_window = broken.index[(broken["timestamp"] >= TRAIN_END) & (broken["timestamp"] < TEST_END)]
    broken.loc[in_window[::7], "noise_1"] = np.nan
    scored_a = score_rows(model_a, broken, TRAIN_END, TEST_END)
    lost = int(scored_a.index.isin(in_window[::7]).sum())
    assert lost > 0

    result = compare_models(model_a, model_b, broken, TRAIN_END, TEST_END)
    assert result.rows_dropped == {"only_a": lost, "only_b": 0}
    n = len(scored_a.index) - lost
    assert result.test_a["num_samples"] == result.test_b["num_samples"] == result.comparison["num_samples"] == n
    assert comparison.comparison["num_samples"] == len(scored_a.index)


def test_models_with_different_label_specs_use_their_own_labels(model_a, model_b, frame):
    stricter = dataclasses.replace(
        model_b, model_id=5, label_spec=dataclasses.replace(model_b.label_spec, min_percent_change=20.0))
    result = compare_models(model_a, stricter, frame, TRAIN_END, TEST_END)
    sig = result.comparison["significance"]
    assert sig["same_labels"] is False and "own labels" in sig["note"]
    assert result.test_a["num_samples"] == result.test_b["num_samples"]
    assert result.test_b["num_positive"] < result.test_a["num_positive"]


class LowThreshold:
    """Wraps a classifier but predicts class 1 from probability 0.3: predict and predict_proba disagree."""

    def __init__(self, estimator):
        self.estimator, self.classes_ = estimator, estimator.classes_

    def predict_proba(self, X):
        return self.estimator.predict_proba(X)

    def predict(self, X):
        return (self.predict_proba(X)[:, 1] > 0.3).astype(int)


def test_predict_must_agree_with_predict_proba_at_one_half(model_a, frame):
    inconsistent = dataclasses.replace(model_a, estimator=LowThreshold(model_a.estimator))
    with pytest.raises(ValueError, match=r"predict\(\) and predict_proba\(\) at 0.5 disagree on \d+ rows"):
        evaluate_model(inconsistent, frame, TRAIN_END, TEST_END)


# --- labels from known events --------------------------------------------------------------------------------


def test_a_known_event_model_is_tested_and_compared_against_the_known_events():
    # The planted pumps play the Telegram signals: known start, the peak as the end.
    metrics, pumps = generate_coin_metrics(n_coins=80, hours=8, seed=11)
    events = pd.DataFrame({"mint": pumps["mint"], "start": pumps["pump_start"], "end": pumps["peak_time"]})
    request = TrainingRequest(name="known", model_type="random_forest", features=INFORMATIVE,
                              feature_engineering_windows=(1, 5), label_source="known_events", lead_minutes=1.0)
    with pytest.raises(DatasetError, match="label_source: known_events needs the ml_known_events table"):
        train(metrics, request, T0, TRAIN_END)
    model = ModelUnderTest.from_trained(train(metrics, request, T0, TRAIN_END, events), model_id=7)
    assert model.label_spec.known_events and model.label_spec.horizon == pd.Timedelta(minutes=1)

    scored = score_rows(model, metrics, TRAIN_END, TEST_END, known_events=events)
    rows = metrics.loc[scored.index]
    lead = pd.Timedelta(minutes=1)
    inside = [any((e.mint == m) and e.start - lead <= t <= e.end for e in events.itertuples())
              for m, t in zip(rows["mint"], rows["timestamp"])]
    assert scored.y_true.tolist() == [int(x) for x in inside]

    test = evaluate_model(model, metrics, TRAIN_END, TEST_END, known_events=events)
    report = test["event_metrics"]
    coins = set(rows["mint"])
    lo, hi = rows["timestamp"].min(), rows["timestamp"].max()
    expected = events[events["mint"].isin(coins) & (events["end"] >= lo) & (events["start"] - lead <= hi)]
    assert report["events"] == len(expected) > 0
    assert report["parameters"]["lead_s"] == 60.0
    assert {e["coin"] for e in report["per_event"]} <= coins
    assert 0 < report["detected_before_peak"] <= report["events"]

    other = dataclasses.replace(model, model_id=8, name="known_copy")
    result = compare_models(model, other, metrics, TRAIN_END, TEST_END, known_events=events, n_bootstrap=10)
    assert result.comparison["significance"]["winner_by"] == "event_f1" and result.winner is None  # a tie


def test_a_training_window_without_a_known_event_is_refused():
    from pump_orchestration.ml.dataset import require_known_events

    events = pd.DataFrame({"mint": ["a", "b"], "start": [h(1), h(5)], "end": [h(1.1), h(5.1)]})
    require_known_events(events, ["a"], h(0), h(2))
    with pytest.raises(DatasetError, match="label_source known_events: no event of ml_known_events meets the window"):
        require_known_events(events, ["a"], h(2), h(6))  # b's event is not one of the window's coins
