import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from pump_orchestration.data.synthetic import generate_coin_metrics
from pump_orchestration.ml.dataset import build_feature_matrix
from pump_orchestration.ml.pipeline import label_frame, plan_windows, walk_forward, window_inputs
from pump_orchestration.ml.request import RequestValidationError, TrainingRequest

T0 = pd.Timestamp("2025-09-01", tz="UTC")
REQUEST = TrainingRequest(name="wf", model_type="xgboost", target_var="price_close", features=("volume_sol",),
                          future_minutes=10, min_percent_change=30.0, label_mode="within", cv_splits=3,
                          params={"n_estimators": 10})


@pytest.fixture(scope="module")
def market() -> pd.DataFrame:
    metrics, _ = generate_coin_metrics(n_coins=120, start="2025-09-01T00:00:00Z", hours=6, seed=4)
    return metrics


def test_plan_windows_steps_forward_inside_the_range():
    windows = plan_windows(T0, T0 + pd.Timedelta(hours=10), train_hours=3, test_hours=2, step_hours=2)
    assert [(w.train_start.hour, w.train_end.hour, w.test_start.hour, w.test_end.hour) for w in windows] == [
        (0, 3, 3, 5), (2, 5, 5, 7), (4, 7, 7, 9)]
    with pytest.raises(RequestValidationError, match="do not fit in the selected days"):
        plan_windows(T0, T0 + pd.Timedelta(hours=4), train_hours=3, test_hours=2, step_hours=1)
    with pytest.raises(RequestValidationError, match="step_hours: must be > 0"):
        plan_windows(T0, T0 + pd.Timedelta(hours=4), train_hours=1, test_hours=1, step_hours=0)


@settings(max_examples=15, deadline=None)
@given(boundary_minutes=st.integers(60, 300))
def test_purge_no_training_label_reaches_the_test_window(market, boundary_minutes):
    """Training labels are built from data before the boundary only: every training row's horizon ends before it."""
    boundary = T0 + pd.Timedelta(minutes=boundary_minutes)
    X, _ = build_feature_matrix(market, REQUEST.feature_spec)
    labelled = label_frame(market, REQUEST, boundary)
    inputs = window_inputs(labelled, X, REQUEST, T0, boundary)
    horizon = pd.Timedelta(minutes=REQUEST.future_minutes)
    assert (inputs.timestamps + horizon < boundary).all()
    # ...and the rows lost to the purge are exactly those whose horizon the pre-boundary data cannot cover.
    full = label_frame(market, REQUEST, T0 + pd.Timedelta(days=1))
    near = (full["timestamp"] < boundary) & (full["timestamp"] + horizon >= boundary) & full["label"].notna()
    assert labelled.loc[near[near].index, "label"].isna().all()


def test_walk_forward_builds_features_once_and_reports_each_window(market, monkeypatch):
    import pump_orchestration.ml.pipeline as pipeline

    import pump_orchestration.ml.evaluation as evaluation

    calls = []
    real = pipeline.build_feature_matrix
    counting = lambda *a, **k: calls.append(1) or real(*a, **k)  # noqa: E731
    monkeypatch.setattr(pipeline, "build_feature_matrix", counting)
    monkeypatch.setattr(evaluation, "build_feature_matrix", counting)
    windows = plan_windows(T0, T0 + pd.Timedelta(hours=6), train_hours=3, test_hours=1, step_hours=1)
    outcomes, skipped, timings = walk_forward(market, REQUEST, windows, params={"n_estimators": 10}, n_bootstrap=50)
    assert len(calls) == 1 and skipped == []  # tests and comparisons reuse the range's features too
    assert [o.test["test_start"] for o in outcomes] == [w.test_start for w in windows]
    assert outcomes[0].comparison is None and all(o.comparison is not None for o in outcomes[1:])
    for o in outcomes:
        assert o.trained.train_end == o.window.test_start and o.test["has_overlap"] is False
        assert pd.Timestamp(o.trained.result.split["train_end_ts"]) < o.window.train_end
    assert set(timings) == {"features", "labels", "fit", "evaluate"}


def test_walk_forward_on_known_events_and_windows_without_one():
    import dataclasses

    metrics, pumps = generate_coin_metrics(n_coins=120, start="2025-09-01T00:00:00Z", hours=6, seed=4)
    request = dataclasses.replace(REQUEST, label_source="known_events", lead_minutes=1.0)
    windows = plan_windows(T0, T0 + pd.Timedelta(hours=6), train_hours=3, test_hours=1, step_hours=1)
    # Only the pumps starting in the first 3 h are known: the later training windows still meet them,
    # the events' tests count only those of their own window.
    known = pumps[pumps["pump_start"] < T0 + pd.Timedelta(hours=3)]
    events = pd.DataFrame({"mint": known["mint"], "start": known["pump_start"], "end": known["peak_time"]})
    outcomes, skipped, _ = walk_forward(metrics, request, windows, params={"n_estimators": 10}, n_bootstrap=20,
                                        known_events=events)
    assert outcomes and all(o.trained.request.label_spec.known_events for o in outcomes)
    assert all(o.comparison is None or o.comparison.comparison["significance"]["winner_by"] == "event_f1"
               for o in outcomes)
    from pump_orchestration.ml.dataset import DatasetError

    with pytest.raises(DatasetError, match="every one of the 3 windows was skipped; first reason: label_source "
                                           "known_events: no event of ml_known_events meets the window"):
        walk_forward(metrics, request, windows, params={"n_estimators": 10}, n_bootstrap=20,
                     known_events=events.iloc[:0])
