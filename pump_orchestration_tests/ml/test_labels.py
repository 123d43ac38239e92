"""Labels: agreement with a literal per-row reference, per-coin isolation, order invariance, errors."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pump_orchestration.ml.labels import known_event_labels, threshold_labels, time_based_change, time_based_labels
from pump_orchestration.vocabulary import DIRECTIONS, LABEL_MODES, OPERATORS

BASE = pd.Timestamp("2024-05-01 12:00", tz="UTC")
# Gaps like the tracker's phases (5 s, 30 s, 60 s) plus odd ones, on a coarse grid
# so that different coins share timestamps and horizons land exactly on rows.
GAPS = st.sampled_from([1, 5, 5, 5, 30, 30, 60, 60, 90, 150, 400])
VALUES = st.one_of(
    st.sampled_from([0.0, 1.0, 2.0, 1.5, float("nan")]),
    st.floats(min_value=1e-3, max_value=1e3, allow_nan=False),
)


@st.composite
def coin_frames(draw, max_coins=4, max_rows=25):
    """Multi-coin frames with irregular timestamps, in random row order with an odd index."""
    rows = []
    for coin in range(draw(st.integers(1, max_coins))):
        t = draw(st.integers(0, 600))
        for _ in range(draw(st.integers(1, max_rows))):
            rows.append((f"mint{coin}", BASE + pd.Timedelta(seconds=t), draw(VALUES)))
            t += draw(GAPS)
    df = pd.DataFrame(rows, columns=["mint", "timestamp", "price_close"])
    df = df.iloc[draw(st.permutations(range(len(df))))]
    index_kind = draw(st.sampled_from(["strings", "duplicates", "ints"]))
    if index_kind == "strings":
        df.index = [f"r{i}" for i in range(len(df))]
    elif index_kind == "duplicates":
        df.index = [i % 3 for i in range(len(df))]
    else:
        df.index = np.arange(len(df))[::-1] * 7
    return df


def reference_change(df, target, minutes, mode, direction):
    """The contract, literally: one Python loop per row over the same coin's rows."""
    horizon = pd.Timedelta(minutes=minutes)
    records = list(zip(df["mint"], df["timestamp"], df[target]))
    out = []
    for mint, t, current in records:
        same = [(ts, v) for m, ts, v in records if m == mint]
        if not any(ts >= t + horizon for ts, _ in same):
            out.append(math.nan)
            continue
        if mode == "end":
            future = max((ts, v) for ts, v in same if ts <= t + horizon)[1]
        else:
            inside = [v for ts, v in same if t < ts <= t + horizon and not math.isnan(v)]
            future = (max(inside) if direction == "up" else min(inside)) if inside else math.nan
        if math.isnan(current) or current == 0 or math.isnan(future):
            out.append(math.nan)
        else:
            out.append((future - current) / current * 100)
    return np.array(out, dtype=float)


def reference_labels(change, min_pct, direction):
    hit = change >= min_pct if direction == "up" else change <= -min_pct
    return np.where(np.isnan(change), np.nan, hit.astype(float))


MINUTES = st.sampled_from([0.5, 1, 2, 2.5, 5, 10])


@settings(max_examples=80, deadline=None)
@given(
    df=coin_frames(),
    minutes=MINUTES,
    mode=st.sampled_from(LABEL_MODES),
    direction=st.sampled_from(DIRECTIONS),
    min_pct=st.sampled_from([0.0, 5.0, 30.0, 100.0]),
)
def test_change_and_labels_match_reference(df, minutes, mode, direction, min_pct):
    change = time_based_change(df, "price_close", minutes, mode=mode, direction=direction)
    expected = reference_change(df, "price_close", minutes, mode, direction)
    assert change.index.equals(df.index)
    np.testing.assert_allclose(change.to_numpy(), expected, rtol=1e-12, equal_nan=True)

    labels = time_based_labels(df, "price_close", minutes, min_pct, direction=direction, mode=mode)
    assert labels.index.equals(df.index)
    np.testing.assert_array_equal(labels.to_numpy(), reference_labels(expected, min_pct, direction))


def _by_key(df, series):
    """Series values keyed by (mint, timestamp), independent of row order and index."""
    return dict(zip(zip(df["mint"], df["timestamp"]), series.to_numpy()))


@settings(max_examples=50, deadline=None)
@given(df=coin_frames(), minutes=MINUTES, mode=st.sampled_from(LABEL_MODES), seed=st.integers(0, 10**6))
def test_row_order_and_index_do_not_matter(df, minutes, mode, seed):
    shuffled = df.sample(frac=1, random_state=seed)
    shuffled.index = [f"x{i}" for i in range(len(shuffled))]
    a = _by_key(df, time_based_labels(df, "price_close", minutes, 10.0, mode=mode))
    b = _by_key(shuffled, time_based_labels(shuffled, "price_close", minutes, 10.0, mode=mode))
    assert a.keys() == b.keys()
    np.testing.assert_array_equal([a[k] for k in a], [b[k] for k in a])


@settings(max_examples=50, deadline=None)
@given(df=coin_frames(), minutes=MINUTES, mode=st.sampled_from(LABEL_MODES))
def test_coins_are_isolated(df, minutes, mode):
    together = _by_key(df, time_based_change(df, "price_close", minutes, mode=mode))
    for _, alone in df.groupby("mint"):
        own = _by_key(alone, time_based_change(alone, "price_close", minutes, mode=mode))
        np.testing.assert_array_equal([own[k] for k in own], [together[k] for k in own])


def frame(mint, seconds, values, column="price_close"):
    return pd.DataFrame(
        {"mint": mint, "timestamp": [BASE + pd.Timedelta(seconds=s) for s in seconds], column: values}
    )


def test_rows_whose_horizon_is_not_covered_are_nan_not_zero():
    df = frame("a", [0, 60, 120, 180, 240], [1.0, 1.0, 1.0, 1.0, 1.0])
    labels = time_based_labels(df, "price_close", 2, 10.0)
    # Rows at 0, 60, 120 s have a row at >= t + 2 min; rows at 180 and 240 s do not.
    np.testing.assert_array_equal(labels.to_numpy(), [0.0, 0.0, 0.0, np.nan, np.nan])


def test_another_coin_does_not_cover_the_horizon():
    df = pd.concat([frame("a", [0, 30], [1.0, 2.0]), frame("b", [0, 600], [1.0, 1.0])])
    change = time_based_change(df, "price_close", 1)
    np.testing.assert_array_equal(change.to_numpy(), [np.nan, np.nan, 0.0, np.nan])


def test_end_mode_uses_last_row_at_or_before_horizon_and_within_uses_the_peak():
    df = frame("a", [0, 30, 60, 90, 150], [10.0, 20.0, 12.0, 5.0, 50.0])
    end = time_based_change(df, "price_close", 1.5)  # horizon of row 0 ends exactly on the 90 s row
    np.testing.assert_allclose(end.to_numpy(), [-50.0, -75.0, 3800 / 12, np.nan, np.nan])
    peak = time_based_change(df, "price_close", 1.5, mode="within")
    np.testing.assert_allclose(peak.to_numpy(), [100.0, -40.0, 3800 / 12, np.nan, np.nan])
    trough = time_based_change(df, "price_close", 1.5, mode="within", direction="down")
    np.testing.assert_allclose(trough.to_numpy(), [-50.0, -75.0, -700 / 12, np.nan, np.nan])
    up = time_based_labels(df, "price_close", 1.5, 100.0, mode="within")
    down = time_based_labels(df, "price_close", 1.5, 50.0, direction="down")
    np.testing.assert_array_equal(up.to_numpy(), [1.0, 0.0, 1.0, np.nan, np.nan])
    np.testing.assert_array_equal(down.to_numpy(), [1.0, 1.0, 0.0, np.nan, np.nan])


def test_within_mode_with_an_empty_window_is_nan():
    # Next row is after the horizon: covered, but nothing inside (t, t + H].
    df = frame("a", [0, 300], [1.0, 2.0])
    assert np.isnan(time_based_change(df, "price_close", 1, mode="within").iloc[0])
    assert time_based_change(df, "price_close", 1).iloc[0] == 0.0


def test_zero_or_missing_current_value_is_nan():
    df = frame("a", [0, 60, 120, 180], [0.0, np.nan, 1.0, 2.0])
    change = time_based_change(df, "price_close", 1)
    np.testing.assert_array_equal(change.to_numpy(), [np.nan, np.nan, 100.0, np.nan])
    assert np.isnan(time_based_labels(df, "price_close", 1, 0.0).iloc[0])


def test_other_time_zones_and_units_are_handled():
    df = frame("a", [0, 60, 120], [1.0, 2.0, 4.0])
    df["timestamp"] = df["timestamp"].dt.tz_convert("Europe/Berlin").astype("datetime64[us, Europe/Berlin]")
    np.testing.assert_array_equal(time_based_change(df, "price_close", 1).to_numpy(), [100.0, 100.0, np.nan])


def test_threshold_operators():
    df = pd.DataFrame({"x": [1.0, 2.0, 3.0, np.nan]}, index=["a", "b", "c", "d"])
    expected = {
        ">": [0, 0, 1],
        "<": [1, 0, 0],
        ">=": [0, 1, 1],
        "<=": [1, 1, 0],
        "=": [0, 1, 0],
    }
    assert set(expected) == set(OPERATORS)
    for operator, values in expected.items():
        labels = threshold_labels(df, "x", operator, 2)
        assert labels.index.equals(df.index)
        np.testing.assert_array_equal(labels.to_numpy(), [*map(float, values), np.nan], err_msg=operator)


def test_threshold_on_boolean_column():
    df = pd.DataFrame({"is_koth": [True, False]})
    np.testing.assert_array_equal(threshold_labels(df, "is_koth", "=", 1).to_numpy(), [1.0, 0.0])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda df: threshold_labels(df, "price_close", "!=", 1), r"operator '!='.*>, <, >=, <=, ="),
        (lambda df: time_based_labels(df, "price_close", 5, 10, direction="up!"), r"direction 'up!'.*up, down"),
        (lambda df: time_based_change(df, "price_close", 5, mode="max"), r"mode 'max'.*end, within"),
        (lambda df: time_based_change(df, "volume_sol", 5), r"'volume_sol'"),
        (lambda df: threshold_labels(df, "volume_sol", ">", 1), r"'volume_sol'"),
        (lambda df: time_based_change(df.drop(columns="mint"), "price_close", 5), r"'mint'"),
        (lambda df: time_based_change(df, "price_close", 0), r"future_minutes"),
        (lambda df: time_based_change(df, "price_close", -5), r"future_minutes"),
        (lambda df: time_based_change(df, "price_close", float("nan")), r"future_minutes"),
        (lambda df: time_based_labels(df, "price_close", 5, float("nan")), r"min_percent_change"),
    ],
)
def test_errors_name_the_argument(call, message):
    with pytest.raises(ValueError, match=message):
        call(frame("a", [0, 60], [1.0, 2.0]))


def test_naive_timestamps_are_rejected():
    df = frame("a", [0, 60], [1.0, 2.0])
    df["timestamp"] = df["timestamp"].dt.tz_localize(None)
    with pytest.raises(ValueError, match="timezone-aware"):
        time_based_change(df, "price_close", 5)


def test_duplicate_mint_timestamp_rows_are_rejected_with_count():
    df = pd.concat([frame("a", [0, 60, 120], [1, 2, 3]), frame("a", [60, 120], [1, 2]), frame("b", [60], [1])])
    with pytest.raises(ValueError, match="2 duplicate"):
        time_based_labels(df, "price_close", 1, 10)


# --- labels from known events ------------------------------------------------------------------------------

_T0 = pd.Timestamp("2025-09-01", tz="UTC")


@settings(max_examples=150, deadline=None)
@given(
    rows=st.lists(st.tuples(st.sampled_from("abc"), st.integers(0, 600)), min_size=1, max_size=60, unique=True),
    events=st.lists(st.tuples(st.sampled_from("abcz"), st.integers(0, 600), st.integers(0, 120)), max_size=8),
    lead=st.sampled_from([0, 0.5, 1, 7.5]),
)
def test_known_event_label_is_exactly_inside_some_window_of_its_coin(rows, events, lead):
    # Irregular times in seconds, rows shuffled by construction, overlapping events, events of absent coins.
    df = pd.DataFrame({"mint": [m for m, _ in rows], "timestamp": [_T0 + pd.Timedelta(seconds=s) for _, s in rows]},
                      index=np.arange(len(rows)) * 3 + 1)
    table = pd.DataFrame({"mint": [m for m, _, _ in events],
                          "start": [_T0 + pd.Timedelta(seconds=s) for _, s, _ in events],
                          "end": [_T0 + pd.Timedelta(seconds=s + d) for _, s, d in events]})
    labels = known_event_labels(df, table, lead)
    lead_td = pd.Timedelta(minutes=lead)
    expected = [
        float(any(m == em and s - lead_td <= t <= e for em, s, e in zip(table["mint"], table["start"], table["end"])))
        for m, t in zip(df["mint"], df["timestamp"])
    ]
    assert labels.index.equals(df.index)
    assert labels.tolist() == expected


def test_known_event_labels_refuse_a_bad_lead_and_name_missing_columns():
    df = pd.DataFrame({"mint": ["a"], "timestamp": [_T0]})
    table = pd.DataFrame({"mint": ["a"], "start": [_T0], "end": [_T0]})
    with pytest.raises(ValueError, match="lead_minutes must be a number >= 0, got -1"):
        known_event_labels(df, table, -1)
    with pytest.raises(ValueError, match="column 'end' not in the data"):
        known_event_labels(df, table.drop(columns="end"), 0)
    assert known_event_labels(df, table.iloc[:0], 0).tolist() == [0.0]
