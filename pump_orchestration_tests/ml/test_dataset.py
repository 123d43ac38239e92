import re

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings, strategies as st

from pump_orchestration.data.synthetic import generate_coin_metrics
from pump_orchestration.ml.dataset import (
    DatasetError,
    build_feature_matrix,
    make_labels,
    select_rows,
    window_dataset,
)
from pump_orchestration.ml.features import engineered_feature_names, required_history
from pump_orchestration.ml.request import FeatureSpec, LabelSpec

FEATURES = FeatureSpec(base_features=("volume_sol", "num_buys"), use_engineered=True, windows=(5, 10, 15))


@pytest.fixture(scope="module")
def market() -> pd.DataFrame:
    metrics, _ = generate_coin_metrics(n_coins=40, start="2025-09-01T00:00:00Z", hours=3, seed=2)
    return metrics


def test_matrix_order_is_base_then_engineered(market):
    X, skipped = build_feature_matrix(market, FEATURES)
    assert list(X.columns) == ["volume_sol", "num_buys", *engineered_feature_names((5, 10, 15))]
    assert skipped == {} and X.index.equals(market.index)


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_scoring_a_row_from_its_recent_history_equals_the_training_matrix(market, data):
    """Live scoring loads only a coin's last max(windows) minutes; its features must equal training's."""
    X_full, _ = build_feature_matrix(market, FEATURES)
    i = data.draw(st.integers(0, len(market) - 1))
    row = market.iloc[i]
    history = market[(market["mint"] == row["mint"]) & (market["timestamp"] <= row["timestamp"])
                     & (market["timestamp"] > row["timestamp"] - required_history(FEATURES.windows))]
    X_scoring, _ = build_feature_matrix(history, FEATURES)
    np.testing.assert_allclose(X_scoring.loc[market.index[i]].to_numpy(), X_full.iloc[i].to_numpy(),
                               rtol=1e-6, atol=1e-9)


def test_time_based_and_threshold_labels(market):
    labels, change = make_labels(market, LabelSpec("price_close", True, future_minutes=5, min_percent_change=20.0))
    assert set(labels.dropna().unique()) <= {0.0, 1.0}
    assert ((change >= 20) == (labels == 1))[labels.notna()].all()
    classic, none = make_labels(market, LabelSpec("bonding_curve_pct", False, operator=">", value=10.0))
    assert none is None and ((market["bonding_curve_pct"] > 10) == (classic == 1)).all()
    with pytest.raises(DatasetError, match="target_var: column 'nope'"):
        make_labels(market, LabelSpec("nope", False, operator=">", value=1.0))


def test_select_rows_keeps_window_phases_labels_and_finite_inputs(market):
    X, _ = build_feature_matrix(market, FEATURES)
    labels, change = make_labels(market, LabelSpec("price_close", True, future_minutes=5, min_percent_change=20.0))
    X.iloc[:7, 0] = np.nan  # a tracker hiccup: volume missing on a few rows
    start, end = pd.Timestamp("2025-09-01T00:30", tz="UTC"), pd.Timestamp("2025-09-01T02:30", tz="UTC")
    got = select_rows(X, labels, market, start=start, end=end, phases=(1,), future_change=change)
    ts = got.timestamps
    assert ts.min() >= start and ts.max() < end
    assert (market.loc[got.X.index, "phase_id_at_time"] == 1).all()
    assert got.y.isin([0, 1]).all() and np.isfinite(got.X.to_numpy()).all()
    in_scope = (market["timestamp"] >= start) & (market["timestamp"] < end) & (market["phase_id_at_time"] == 1)
    expected = in_scope & labels.notna() & X.notna().all(axis=1)
    assert set(got.X.index) == set(market.index[expected])
    assert got.stats["rows_used"] == int(expected.sum())
    assert got.stats["rows_dropped_non_finite"] == int((in_scope & labels.notna() & X.isna().any(axis=1)).sum())


def test_select_rows_errors_name_the_problem(market):
    X, _ = build_feature_matrix(market, FEATURES)
    labels, _ = make_labels(market, LabelSpec("price_close", True, future_minutes=5, min_percent_change=20.0))
    later = pd.Timestamp("2025-09-03", tz="UTC")
    with pytest.raises(DatasetError, match="empty window"):
        select_rows(X, labels, market, start=later, end=later + pd.Timedelta(hours=1))
    start, end = market["timestamp"].min(), market["timestamp"].max() + pd.Timedelta(seconds=1)
    with pytest.raises(DatasetError, match="no labelled rows"):
        select_rows(X, labels * np.nan, market, start=start, end=end)
    X_nan = X.assign(volume_sol=np.nan)
    with pytest.raises(DatasetError, match=r"\['volume_sol'\] are NaN on every labelled row"):
        select_rows(X_nan, labels, market, start=start, end=end)


def test_within_labels_by_the_peak_but_the_trade_exits_at_the_horizon():
    from pump_orchestration.ml.metrics import classification_metrics

    t0 = pd.Timestamp("2025-09-01T00:00:00Z")
    minutes = [0, 2, 5, 6]
    prices = [1.0, 1.5, 0.9, 0.9]
    df = pd.DataFrame({"mint": "m", "timestamp": [t0 + pd.Timedelta(minutes=m) for m in minutes],
                       "price_close": prices})
    spec = LabelSpec(target_var="price_close", time_based=True, future_minutes=5, min_percent_change=30.0,
                     mode="within")
    labels, exit_change = make_labels(df, spec)
    assert labels.iloc[0] == 1  # +50 % at the peak inside (t, t + 5 min]
    assert exit_change.iloc[0] == pytest.approx(-10.0)  # the coin's last row at or before t + 5 min: 0.9
    m = classification_metrics(np.array([1]), np.array([1]), future_change_pct=exit_change.iloc[:1].to_numpy(),
                               fee_pct=2.0)
    assert m["simulated_profit_pct"] == pytest.approx(-12.0)  # not the +48 % a peak exit would claim
    end_labels, end_change = make_labels(df, LabelSpec(**{**spec.__dict__, "mode": "end"}))
    assert end_labels.iloc[0] == 0 and end_change.iloc[0] == pytest.approx(-10.0)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 10_000), st.integers(0, 2), st.sampled_from([np.nan, np.inf, -np.inf])),
                max_size=40))
def test_non_finite_inputs_are_counted_per_column_on_the_chosen_rows_only(market, holes):
    X, _ = build_feature_matrix(market, FEATURES)
    labels, _ = make_labels(market, LabelSpec("price_close", True, future_minutes=5, min_percent_change=20.0))
    for row, column, value in holes:
        X.iloc[row % len(X), column] = value
    start, end = pd.Timestamp("2025-09-01T00:30", tz="UTC"), pd.Timestamp("2025-09-01T02:30", tz="UTC")
    got = select_rows(X, labels, market, start=start, end=end)
    chosen = (market["timestamp"] >= start) & (market["timestamp"] < end) & labels.notna()
    bad = ~np.isfinite(X[chosen])
    assert got.stats["non_finite_by_column"] == {c: int(n) for c, n in bad.sum().items() if n}
    assert got.stats["rows_dropped_non_finite"] == int(bad.any(axis=1).sum())
    assert set(got.X.index) == set(X.index[chosen & ~bad.reindex(X.index, fill_value=False).any(axis=1)])


def test_feature_columns_are_the_frames_columns_without_a_copy(market):
    from pump_orchestration.ml.dataset import feature_columns

    X, _ = build_feature_matrix(market, FEATURES)
    frame = X.assign(label=1, mint=market["mint"])
    names = list(X.columns[::-1])
    got = feature_columns(frame, names)
    pd.testing.assert_frame_equal(got, frame[names])
    assert all(np.shares_memory(got[name].to_numpy(), frame[name].to_numpy()) for name in names)


def _assert_same_inputs(got, expected):
    pd.testing.assert_frame_equal(got.X, expected.X)
    pd.testing.assert_series_equal(got.y, expected.y)
    pd.testing.assert_series_equal(got.timestamps, expected.timestamps)
    pd.testing.assert_series_equal(got.mints, expected.mints)
    if expected.future_change_pct is None:
        assert got.future_change_pct is None
    else:
        pd.testing.assert_series_equal(got.future_change_pct, expected.future_change_pct)
    assert got.stats == expected.stats


@settings(max_examples=25, deadline=None)
@given(holes=st.lists(st.tuples(st.integers(0, 10_000), st.sampled_from(["volume_sol", "num_buys", "price_close"]),
                                st.sampled_from([np.nan, np.inf])), max_size=30),
       start_minute=st.integers(0, 150), minutes=st.integers(1, 180), phases=st.sampled_from([(), (1,), (1, 2)]),
       shuffle=st.booleans())
def test_window_dataset_equals_the_full_matrix_then_select_rows(market, holes, start_minute, minutes, phases, shuffle):
    """The training path computes only the window's rows; values, rows, order, counts and errors are unchanged."""
    frame = market.sample(frac=1.0, random_state=start_minute) if shuffle else market
    frame = frame.astype({"num_buys": "float64"})  # a copy that can hold NaN/inf
    for row, column, value in holes:  # inputs the tracker missed, also in the history the features read
        frame.iloc[row % len(frame), frame.columns.get_loc(column)] = value
    labels, change = make_labels(frame, LabelSpec("price_close", True, future_minutes=5, min_percent_change=20.0))
    start = pd.Timestamp("2025-09-01T00:00", tz="UTC") + pd.Timedelta(minutes=start_minute)
    end = start + pd.Timedelta(minutes=minutes)
    window = dict(start=start, end=end, phases=phases, future_change=change)
    try:
        X, skipped = build_feature_matrix(frame, FEATURES)
        expected = select_rows(X, labels, frame, **window)
    except DatasetError as exc:
        with pytest.raises(DatasetError, match=re.escape(str(exc))):
            window_dataset(frame, labels, FEATURES, **window)
        return
    got, got_skipped = window_dataset(frame, labels, FEATURES, **window)
    _assert_same_inputs(got, expected)
    assert got_skipped == skipped


def test_window_dataset_holds_one_block_of_the_kept_rows(market):
    frame = market.copy()
    frame.iloc[::5, frame.columns.get_loc("num_buys")] = np.nan  # rows to drop inside the block
    labels, _ = make_labels(frame, LabelSpec("price_close", True, future_minutes=5, min_percent_change=20.0))
    start, end = pd.Timestamp("2025-09-01T01:00", tz="UTC"), pd.Timestamp("2025-09-01T02:00", tz="UTC")
    got, _ = window_dataset(frame, labels, FEATURES, start=start, end=end)
    assert 0 < got.stats["rows_dropped_non_finite"] and got.stats["rows_used"] == len(got.X) < len(frame) / 2
    block = got.X.iloc[:, 0].to_numpy().base  # every column is a row of one block of the window's rows
    assert all(np.shares_memory(block, got.X.iloc[:, i].to_numpy()) for i in range(got.X.shape[1]))
    window_rows = got.stats["rows_used"] + got.stats["rows_dropped_non_finite"]
    assert block.shape == (got.X.shape[1], window_rows)


def test_select_rows_refuses_a_matrix_of_other_rows(market):
    X, _ = build_feature_matrix(market, FEATURES)
    labels, _ = make_labels(market, LabelSpec("price_close", True, future_minutes=5, min_percent_change=20.0))
    with pytest.raises(ValueError, match="X: its rows must be frame's rows"):
        select_rows(X.iloc[::-1], labels, market, start=market["timestamp"].min(), end=market["timestamp"].max())
