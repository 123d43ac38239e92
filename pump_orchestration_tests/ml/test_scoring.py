"""Live scoring equals the offline (test-report) path, row by row, and says why it skips a row."""
import numpy as np
import pandas as pd
import pytest

from pump_orchestration.data.synthetic import generate_coin_metrics
from pump_orchestration.ml.dataset import build_feature_matrix, make_labels, select_rows
from pump_orchestration.ml.evaluation import ModelUnderTest, score_rows
from pump_orchestration.ml.features import required_history
from pump_orchestration.ml.records import TrainedModel
from pump_orchestration.ml.request import TrainingRequest
from pump_orchestration.ml.scoring import LiveModel, history_start, payload_predictions, score_live
from pump_orchestration.ml.training import train_classifier

T0 = pd.Timestamp("2025-09-01T00:00:00Z")
TRAIN_END = T0 + pd.Timedelta(hours=4)
TEST_END = T0 + pd.Timedelta(hours=6)


@pytest.fixture(scope="module")
def market() -> pd.DataFrame:
    frame, _ = generate_coin_metrics(n_coins=120, start=T0.isoformat(), hours=6, seed=3)
    return frame.sort_values(["timestamp", "mint"]).reset_index(drop=True)


def _live(market: pd.DataFrame, phases=(), active_model_id: int = 1, threshold: float = 0.7,
          features: list[str] | None = None) -> LiveModel:
    """A model trained on the first four hours; ``features``: train on these matrix columns only."""
    request = TrainingRequest(name="live", model_type="random_forest", features=("volume_sol", "buy_volume_sol",
                              "num_buys"), phases=tuple(phases), label_mode="within")
    before = market[market["timestamp"] < TRAIN_END]
    labels, change = make_labels(before, request.label_spec)
    X, _ = build_feature_matrix(before, request.feature_spec)
    inputs = select_rows(X, labels, before, start=T0, end=TRAIN_END, phases=request.phases, future_change=change)
    result = train_classifier(inputs.X if features is None else inputs.X[features], inputs.y, inputs.timestamps,
                              model_type="random_forest",
                              params={"n_estimators": 20, "max_depth": 5}, cv_splits=2,
                              horizon=request.label_spec.horizon, future_change_pct=inputs.future_change_pct,
                              n_jobs=1)
    trained = TrainedModel(request=request, train_start=T0, train_end=TRAIN_END, result=result)
    return LiveModel(active_model_id=active_model_id, model=ModelUnderTest.from_trained(trained, model_id=7),
                     alert_threshold=threshold, info={"id": 7, "name": "live"})


def test_rows_scored_one_by_one_as_they_arrive_equal_the_test_report_path(market):
    live = _live(market)
    offline = score_rows(live.model, market, TRAIN_END, TEST_END)
    offline_proba = pd.Series(offline.proba, index=offline.index)
    X_offline, _ = build_feature_matrix(market, live.model.feature_spec)
    sample = market.loc[offline.index].sample(60, random_state=1).sort_values("timestamp")
    need = required_history(live.model.feature_spec.windows)
    for row_id, row in sample.iterrows():
        # What the warehouse holds when this row arrives: the coin's rows up to it, from the history start on.
        arrived = market[(market["timestamp"] <= row["timestamp"])]
        history = arrived[(arrived["mint"] == row["mint"]) &
                          (arrived["timestamp"] >= history_start([live], row["timestamp"]))]
        assert history["timestamp"].min() >= row["timestamp"] - need
        scores = score_live(history, pd.DataFrame([row[["mint", "timestamp"]]]), [live])
        [prediction] = scores.predictions.to_dict("records")
        assert prediction["probability"] == pytest.approx(offline_proba[row_id], abs=1e-12)
        X_live, _ = build_feature_matrix(history.reset_index(drop=True), live.model.feature_spec)
        live_row = X_live.iloc[-1 if history["timestamp"].iloc[-1] == row["timestamp"] else
                               int(np.flatnonzero(history.reset_index(drop=True)["timestamp"] == row["timestamp"])[0])]
        np.testing.assert_allclose(live_row[live.model.feature_names].to_numpy(dtype=float),
                                   X_offline.loc[row_id, live.model.feature_names].to_numpy(dtype=float),
                                   rtol=1e-9, atol=1e-12)


def test_a_batch_scores_every_model_once_and_builds_shared_features_once(market):
    a, b = _live(market, active_model_id=1), _live(market, active_model_id=2, threshold=0.0)
    b.model.model_id = 8
    b.info = {"id": 8, "name": "b"}
    targets = market[(market["timestamp"] >= TRAIN_END)].head(50)[["mint", "timestamp"]]
    history = market[(market["timestamp"] >= history_start([a, b], targets["timestamp"].min())) &
                     (market["timestamp"] <= targets["timestamp"].max()) & market["mint"].isin(targets["mint"])]
    scores = score_live(history, targets, [a, b])
    scored = len(scores.predictions) // 2
    assert len(scores.predictions) == 2 * scored and scored + len(scores.skipped) // 2 == 50
    assert scores.predictions[scores.predictions["model_id"] == 8]["is_alert"].all()  # threshold 0
    payloads = payload_predictions(scores.predictions, [a, b])
    assert all(len(entries) == 2 for entries in payloads.values())
    assert {e["model"]["name"] for e in next(iter(payloads.values()))} == {"live", "b"}


def test_skips_name_the_reason_and_other_models_still_score(market):
    good = _live(market)
    broken = _live(market, active_model_id=2)
    broken.model.model_id = 9
    broken.model.name = "broken"
    broken.model.feature_names = [*broken.model.feature_names[:-1], "no_such_feature"]
    phase_bound = _live(market, phases=(3,), active_model_id=3)
    phase_bound.model.model_id = 10
    phase_bound.model.name = "phase3"
    targets = market[(market["timestamp"] >= TRAIN_END) & (market["phase_id_at_time"] != 3)].head(20)
    history = market[market["mint"].isin(targets["mint"]) & (market["timestamp"] <= targets["timestamp"].max())]
    scores = score_live(history, targets[["mint", "timestamp"]], [good, broken, phase_bound])
    by_model = {}
    for skip in scores.skipped:
        by_model.setdefault(skip["model"], set()).add(skip["reason"])
    assert by_model["broken"] == {"DatasetError: needs feature(s) the loaded rows cannot produce "
                                  "(no_such_feature: not built)"}
    assert by_model["phase3"] == {"phase not among the model's phases [3]"}
    assert set(scores.predictions["model_id"]) == {7} and len(scores.predictions) + len(by_model.get("live", [])) > 0


def test_young_coins_score_like_offline_and_missing_values_are_skipped_with_the_reason(market):
    live = _live(market)
    first = market.groupby("mint").head(1)
    first = first[first["timestamp"] > T0 + pd.Timedelta(hours=4)].head(4)
    history = market[market["mint"].isin(first["mint"])].copy()
    broken = first.index[0]
    history.loc[broken, "volume_sol"] = np.nan  # a NULL the tracker wrote
    scores = score_live(history, first[["mint", "timestamp"]], [live])
    [skip] = scores.skipped
    assert skip["reason"].startswith("inputs not finite (volume_sol, ") and skip["reason"].endswith(
        "; the coin has 0.0 min of history")
    # The others are first rows too: scored from the little past they have, and counted as such.
    assert len(scores.predictions) == 3 and scores.short_history == 3


def test_an_old_coin_cut_at_the_loaded_range_is_not_counted_as_young(market):
    live = _live(market)
    targets = market[market["timestamp"] >= TRAIN_END].groupby("mint").head(1).head(20)
    start = history_start([live], targets["timestamp"].min())
    history = market[market["mint"].isin(targets["mint"]) & (market["timestamp"] >= start) &
                     (market["timestamp"] <= targets["timestamp"].max())]
    first_rows = market.groupby("mint")["timestamp"].min()
    age = targets["timestamp"].to_numpy() - first_rows.loc[targets["mint"]].to_numpy()
    assert (first_rows.loc[targets["mint"]] < start).any()  # the case under test: coins older than the load
    with_dates = score_live(history, targets[["mint", "timestamp"]], [live], first_rows=first_rows)
    scored = set(with_dates.predictions["coin_id"])
    need = required_history(live.model.feature_spec.windows).to_timedelta64()
    young = sum(a < need for a, m in zip(age, targets["mint"]) if m in scored)
    assert with_dates.short_history == young
    # Dated by the loaded rows alone, old coins would look young: the count the warehouse lookup corrects.
    assert score_live(history, targets[["mint", "timestamp"]], [live]).short_history > young


#: Feature name prefixes added after the first models were stored (the burst features).
LATER_FEATURES = ("buy_count_burst_", "trade_count_burst_", "volume_burst_", "wallet_burst_", "buy_share_shift_",
                  "volatility_scaled_return_")


def test_a_model_stored_before_the_burst_features_scores_on_its_own_feature_list(market):
    newest = _live(market)
    assert any(f.startswith(LATER_FEATURES) for f in newest.model.feature_names)
    older = [f for f in newest.model.feature_names if not f.startswith(LATER_FEATURES)]
    live = _live(market, features=older)
    assert live.model.feature_names == older
    offline = score_rows(live.model, market, TRAIN_END, TEST_END)
    targets = market.loc[offline.index].sample(40, random_state=2)
    history = market[(market["timestamp"] >= history_start([live], targets["timestamp"].min())) &
                     (market["timestamp"] <= targets["timestamp"].max()) & market["mint"].isin(targets["mint"])]
    scores = score_live(history, targets[["mint", "timestamp"]], [live])
    assert not scores.skipped and len(scores.predictions) == 40
    by_row = dict(zip(zip(market.loc[offline.index, "mint"], market.loc[offline.index, "timestamp"]), offline.proba))
    for p in scores.predictions.to_dict("records"):
        assert p["probability"] == pytest.approx(by_row[(p["coin_id"], p["data_timestamp"])], abs=1e-12)
