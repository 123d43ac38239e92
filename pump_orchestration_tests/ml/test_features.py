"""Engineered features: literal per-row reference, history invariances, finiteness, skips, order."""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pump_orchestration.vocabulary import BASE_COLUMNS
from pump_orchestration.ml.features import (
    BASELINE_MINUTES,
    FEATURE_DESCRIPTIONS,
    FEATURE_GROUPS,
    RATIO_SMOOTHING_SOL,
    engineer_features,
    engineered_feature_names,
    feature_pattern,
    required_history,
)

BASE = pd.Timestamp("2024-05-01 12:00", tz="UTC")
WINDOWS = (1, 2.5)  # minutes; small so that short generated series span several windows
# The burst features' reach, shortened like the windows so that generated series (up to ~45 min)
# have rows before it: a feature reading past its reach then fails the required-history test.
REACH = 4
INPUTS = [
    "price_high", "price_low", "price_close", "volume_sol", "market_cap_close", "buy_volume_sol",
    "sell_volume_sol", "num_buys", "num_sells", "bonding_curve_pct", "unique_wallets",
    "whale_buy_volume_sol", "whale_sell_volume_sol",
]
# Whole seconds in phase-like steps: window edges often fall exactly on rows.
GAPS = st.sampled_from([1, 5, 5, 5, 15, 30, 30, 60, 90])
# Non-negative, with zeros (empty intervals) and 2-decimal amounts.
AMOUNTS = st.one_of(st.just(0.0), st.integers(1, 100_000).map(lambda c: c / 100))


@st.composite
def coin_frames(draw, max_coins=3, max_rows=30):
    """All-input frames of a few coins with irregular timestamps, in random row order."""
    rows = []
    for coin in range(draw(st.integers(1, max_coins))):
        t = draw(st.integers(0, 120))
        for _ in range(draw(st.integers(1, max_rows))):
            row = {"mint": f"mint{coin}", "timestamp": BASE + pd.Timedelta(seconds=t)}
            row.update({c: draw(AMOUNTS) for c in INPUTS})
            row["num_buys"], row["num_sells"] = draw(st.integers(0, 20)), draw(st.integers(0, 20))
            rows.append(row)
            t += draw(GAPS)
    df = pd.DataFrame(rows)
    df = df.iloc[draw(st.permutations(range(len(df))))]
    df.index = [f"r{i}" for i in range(len(df))]
    return df


def _ratio(num, den, neutral):
    return neutral if den == 0 else num / den


def _std(values):
    return 0.0 if len(set(values)) <= 1 else float(np.std(values))


def _log_ratio(a, b):
    return math.log((a + RATIO_SMOOTHING_SOL) / (b + RATIO_SMOOTHING_SOL))


def features(df, windows=WINDOWS):
    return engineer_features(df, windows, baseline_minutes=REACH)


def _burst(win, reach_rows, r, w, value):
    covered = max((r["timestamp"] - reach_rows[0]["timestamp"]).total_seconds() / 60, w)
    return _ratio(sum(map(value, win)) * covered, sum(map(value, reach_rows)) * w, 1.0)


def _volatility_scaled_return(base, r):
    if len(base) < 2:
        return 0.0
    last = base[-1]
    move = math.log(r["price_close"] / last["price_close"]) if r["price_close"] > 0 and last["price_close"] > 0 else 0.0
    prices = [s["price_close"] for s in base]
    squares = sum((math.log(b / a) if a > 0 and b > 0 else 0.0) ** 2 for a, b in zip(prices, prices[1:]))
    per_minute = _ratio(squares, (last["timestamp"] - base[0]["timestamp"]).total_seconds() / 60, 0.0)
    return _ratio(move, math.sqrt(per_minute * (r["timestamp"] - last["timestamp"]).total_seconds() / 60), 0.0)


def reference_features(df, windows, baseline=REACH):
    """The documented definitions, literally: one Python loop per row and window."""
    records = df.to_dict("records")
    out = []
    for r in records:
        f = {
            "buy_pressure": _ratio(r["buy_volume_sol"], r["buy_volume_sol"] + r["sell_volume_sol"], 0.5),
            "buy_sell_ratio": _log_ratio(r["buy_volume_sol"], r["sell_volume_sol"]),
            "order_imbalance": _ratio(
                r["buy_volume_sol"] - r["sell_volume_sol"], r["buy_volume_sol"] + r["sell_volume_sol"], 0.0
            ),
            "trade_count_imbalance": _ratio(r["num_buys"] - r["num_sells"], r["num_buys"] + r["num_sells"], 0.0),
            "whale_buy_sell_ratio": _log_ratio(r["whale_buy_volume_sol"], r["whale_sell_volume_sol"]),
            "whale_share": _ratio(r["whale_buy_volume_sol"] + r["whale_sell_volume_sol"], r["volume_sol"], 0.0),
            "avg_trade_size": _ratio(r["volume_sol"], r["num_buys"] + r["num_sells"], 0.0),
        }
        for w in windows:
            since = r["timestamp"] - pd.Timedelta(minutes=w)
            win = sorted(
                (s for s in records if s["mint"] == r["mint"] and since < s["timestamp"] <= r["timestamp"]),
                key=lambda s: s["timestamp"],
            )
            first = win[0]
            elapsed = (r["timestamp"] - first["timestamp"]).total_seconds() / 60
            change = _ratio(r["price_close"] - first["price_close"], first["price_close"], 0.0) * 100
            prices = [s["price_close"] for s in win]
            returns = [math.log(b / a) if a > 0 and b > 0 else 0.0 for a, b in zip(prices, prices[1:])]
            volumes = [s["volume_sol"] for s in win]
            vol_mean = sum(volumes) / len(volumes)
            buy = sum(s["buy_volume_sol"] for s in win)
            sell = sum(s["sell_volume_sol"] for s in win)
            whale = [s["whale_buy_volume_sol"] + s["whale_sell_volume_sol"] for s in win]
            wallets = [s["unique_wallets"] for s in win]
            reach = max(baseline, w)
            reach_rows = sorted(
                (s for s in records if s["mint"] == r["mint"]
                 and r["timestamp"] - pd.Timedelta(minutes=reach) < s["timestamp"] <= r["timestamp"]),
                key=lambda s: s["timestamp"],
            )
            base = [s for s in reach_rows if s["timestamp"] <= since]
            trades = lambda s: s["num_buys"] + s["num_sells"]  # noqa: E731
            window_trades = sum(map(trades, win))
            low = min(s["price_low"] for s in win)
            mcap_change = _ratio(r["market_cap_close"] - first["market_cap_close"], first["market_cap_close"], 0.0)
            f.update({
                f"price_change_{w:g}": change,
                f"price_roc_{w:g}": _ratio(change, elapsed, 0.0),
                f"price_volatility_{w:g}": _std(returns),
                f"price_range_{w:g}": _ratio(max(s["price_high"] for s in win) - low, low, 0.0),
                f"volume_ratio_{w:g}": _ratio(r["volume_sol"], vol_mean, 1.0),
                f"volume_spike_{w:g}": _ratio(r["volume_sol"] - vol_mean, _std(volumes), 0.0),
                f"buy_pressure_{w:g}": _ratio(buy, buy + sell, 0.5),
                f"order_imbalance_{w:g}": _ratio(buy - sell, buy + sell, 0.0),
                f"whale_activity_spike_{w:g}": _ratio(whale[-1], sum(whale) / len(whale), 1.0),
                f"mcap_velocity_{w:g}": _ratio(mcap_change * 100, elapsed, 0.0),
                f"bonding_curve_velocity_{w:g}": _ratio(
                    r["bonding_curve_pct"] - first["bonding_curve_pct"], elapsed, 0.0
                ),
                f"wallet_ratio_{w:g}": _ratio(wallets[-1], sum(wallets) / len(wallets), 1.0),
                f"buy_count_burst_{w:g}": _burst(win, reach_rows, r, w, lambda s: s["num_buys"]),
                f"trade_count_burst_{w:g}": _burst(win, reach_rows, r, w, trades),
                f"volume_burst_{w:g}": _burst(win, reach_rows, r, w, lambda s: s["volume_sol"]),
                f"wallet_burst_{w:g}": _burst(win, reach_rows, r, w, lambda s: s["unique_wallets"]),
                f"buy_share_shift_{w:g}": 0.0 if window_trades == 0 else (
                    sum(s["num_buys"] for s in win) / window_trades
                    - _ratio(sum(s["num_buys"] for s in reach_rows), sum(map(trades, reach_rows)), 0.0)),
                f"volatility_scaled_return_{w:g}": _volatility_scaled_return(base, r),
            })
        out.append(f)
    return pd.DataFrame(out, index=df.index)


# Running (Welford) window variances keep ~eps * spike**2 of a large value that left
# the window; with amounts spanning 0.01..1000 that is ~1e-6 (seen up to 1.2e-6) of a small std, so allow 1e-5.
RUNNING_STD = ("price_volatility_", "volume_spike_")


def assert_frames_close(actual, expected, rtol=1e-9, atol=1e-9):
    assert list(actual.columns) == list(expected.columns)
    for column in expected.columns:
        std_based = rtol > 0 and column.startswith(RUNNING_STD)
        np.testing.assert_allclose(
            actual[column].to_numpy(), expected[column].to_numpy(), rtol=1e-5 if std_based else rtol, atol=atol,
            equal_nan=True, err_msg=column,
        )


@settings(max_examples=40, deadline=None)
@given(df=coin_frames())
def test_features_match_literal_reference(df):
    actual = features(df)
    assert actual.index.equals(df.index)
    assert_frames_close(actual, reference_features(df, WINDOWS)[engineered_feature_names(WINDOWS)])


@settings(max_examples=60, deadline=None)
@given(df=coin_frames(), data=st.data())
def test_truncated_history_gives_the_same_values(df, data):
    full = features(df)
    cut = data.draw(st.sampled_from(sorted(df["timestamp"].unique())))
    kept = df["timestamp"] <= cut
    assert_frames_close(features(df[kept]), full[kept], rtol=0, atol=0)


@settings(max_examples=60, deadline=None)
@given(df=coin_frames(), data=st.data())
def test_required_history_is_enough(df, data):
    full = features(df)
    since = data.draw(st.sampled_from(sorted(df["timestamp"].unique())))
    lookback = df[df["timestamp"] > since - required_history(WINDOWS, baseline_minutes=REACH)]
    scored = lookback["timestamp"] >= since
    # Running window sums restart at a different row, so only float rounding may differ.
    assert_frames_close(features(lookback)[scored], full.loc[lookback.index[scored]])


@settings(max_examples=50, deadline=None)
@given(df=coin_frames(), seed=st.integers(0, 10**6))
def test_coins_are_isolated_and_row_order_does_not_matter(df, seed):
    full = features(df)
    for _, alone in df.groupby("mint"):
        assert_frames_close(features(alone), full.loc[alone.index], rtol=0, atol=0)
    shuffled = df.sample(frac=1, random_state=seed)
    keys = list(shuffled.index)
    shuffled = shuffled.reset_index(drop=True)
    result = features(shuffled)
    assert result.index.equals(shuffled.index)
    result.index = keys
    assert_frames_close(result, full.loc[keys], rtol=0, atol=0)


@settings(max_examples=50, deadline=None)
@given(
    df=coin_frames(),
    data=st.data(),
    scale=st.sampled_from([1e-9, 1e-3, 1.0, 1e6]),
)
def test_finite_inputs_give_finite_features(df, data, scale):
    df = df.copy()
    df[INPUTS] = df[INPUTS] * scale
    assert np.isfinite(engineer_features(df).to_numpy()).all()
    # A missing value only spoils the features that read that column.
    column = data.draw(st.sampled_from(INPUTS))
    df.iloc[data.draw(st.integers(0, len(df) - 1)), df.columns.get_loc(column)] = np.nan
    result = features(df)
    needs = {p.format(w=f"{w:g}"): cols for p, cols in FEATURE_GROUPS.items() for w in WINDOWS}
    clean = [name for name in result.columns if column not in needs[name]]
    assert np.isfinite(result[clean].to_numpy()).all()


def test_hand_computed_values():
    seconds = [0, 60, 120, 200]
    df = pd.DataFrame({
        "mint": "a",
        "timestamp": [BASE + pd.Timedelta(seconds=s) for s in seconds],
        "price_close": [1.0, 2.0, 4.0, 2.0],
        "price_high": [1.0, 3.0, 5.0, 2.0],
        "price_low": [0.5, 1.0, 4.0, 1.0],
        "volume_sol": [0.0, 2.0, 4.0, 0.0],
        "buy_volume_sol": [0.0, 2.0, 1.0, 0.0],
        "sell_volume_sol": [0.0, 0.0, 3.0, 0.0],
        "num_buys": [0, 3, 1, 0],
        "num_sells": [0, 0, 1, 0],
    }).iloc[::-1]
    result = engineer_features(df, windows=(2,)).iloc[::-1]
    # Window (t - 2 min, t]: row 60 s sees {0, 60}; row 120 s sees {60, 120}; row 200 s sees {120, 200}.
    np.testing.assert_allclose(result["buy_pressure"], [0.5, 1.0, 0.25, 0.5])
    np.testing.assert_allclose(result["order_imbalance"], [0.0, 1.0, -0.5, 0.0])
    np.testing.assert_allclose(result["trade_count_imbalance"], [0.0, 1.0, 0.0, 0.0])
    np.testing.assert_allclose(result["avg_trade_size"], [0.0, 2 / 3, 2.0, 0.0])
    np.testing.assert_allclose(result["buy_sell_ratio"], [0.0, math.log(2.1 / 0.1), math.log(1.1 / 3.1), 0.0])
    np.testing.assert_allclose(result["price_change_2"], [0.0, 100.0, 100.0, -50.0])
    np.testing.assert_allclose(result["price_roc_2"], [0.0, 100.0, 100.0, -50.0 / (80 / 60)])
    np.testing.assert_allclose(result["price_volatility_2"], [0.0, 0.0, 0.0, 0.0], atol=0)
    np.testing.assert_allclose(result["price_range_2"], [1.0, 5.0, 4.0, 4.0])
    np.testing.assert_allclose(result["volume_ratio_2"], [1.0, 2.0, 4 / 3, 0.0])
    np.testing.assert_allclose(result["volume_spike_2"], [0.0, 1.0, 1.0, -1.0])
    np.testing.assert_allclose(result["buy_pressure_2"], [0.5, 1.0, 0.5, 0.25])
    np.testing.assert_allclose(result["order_imbalance_2"], [0.0, 1.0, 0.0, -0.5])
    assert set(result.attrs["skipped_features"]) == {
        "whale_buy_sell_ratio", "whale_share", "whale_activity_spike_2", "mcap_velocity_2",
        "bonding_curve_velocity_2", "wallet_ratio_2", "wallet_burst_2",
    }


def test_bursts_and_volatility_scaled_return_by_hand():
    # One row a minute; window 1 min, reach 4 min: the row at 300 s reads (60 s, 300 s], its
    # baseline is {120, 180, 240} and its window {300}. The rows at 0 and 60 s lie outside the reach.
    df = pd.DataFrame({
        "mint": "a",
        "timestamp": [BASE + pd.Timedelta(seconds=s) for s in (0, 60, 120, 180, 240, 300)],
        "price_close": np.exp([5.0, -5.0, 0.0, 0.1, 0.0, 0.3]),
        "volume_sol": [100.0, 100.0, 1.0, 1.0, 1.0, 3.0],
        "num_buys": [50, 50, 2, 2, 2, 10],
        "num_sells": [0, 0, 2, 2, 2, 0],
    })
    last = engineer_features(df, windows=(1,), baseline_minutes=4).iloc[-1]
    # Buys: 10 of the reach's 16 in 1 of the 3 minutes it covers (first row at 120 s).
    assert last["buy_count_burst_1"] == pytest.approx(10 / 16 / (1 / 3))
    assert last["trade_count_burst_1"] == pytest.approx(10 / 22 / (1 / 3))
    assert last["volume_burst_1"] == pytest.approx(3 / 6 / (1 / 3))
    assert last["buy_share_shift_1"] == pytest.approx(1.0 - 16 / 22)
    # Baseline returns +0.1, -0.1 over 2 min: variance 0.01 per minute; the move since 240 s, +0.3
    # in 1 min, is 3 of its standard deviations.
    assert last["volatility_scaled_return_1"] == pytest.approx(3.0)
    # A window as long as the reach has no baseline: neutral values.
    wide = engineer_features(df, windows=(4,), baseline_minutes=4).iloc[-1]
    assert wide["buy_count_burst_4"] == wide["volume_burst_4"] == 1.0
    assert wide["volatility_scaled_return_4"] == 0.0


def test_volatility_is_the_std_of_log_returns():
    df = pd.DataFrame({
        "mint": "a",
        "timestamp": [BASE + pd.Timedelta(seconds=s) for s in (0, 10, 20)],
        "price_close": [1.0, 2.0, 2.0],
    })
    result = engineer_features(df, windows=(1,))
    np.testing.assert_allclose(result["price_volatility_1"], [0.0, 0.0, np.std([math.log(2), 0.0])])


def test_columns_follow_the_documented_order():
    names = engineered_feature_names((5, 10, 15))
    assert len(names) == len(set(names)) == 61
    per_window = [p for p in FEATURE_GROUPS if "{w}" in p]
    independent = [p for p in FEATURE_GROUPS if "{w}" not in p]
    assert names == independent + [p.format(w=w) for w in (5, 10, 15) for p in per_window]
    assert engineered_feature_names((15, 5))[len(independent)] == "price_change_15"
    df = pd.DataFrame({"mint": ["a"], "timestamp": [BASE], **{c: [1.0] for c in INPUTS}})
    assert list(engineer_features(df).columns) == names


def test_every_feature_name_maps_back_to_its_pattern():
    for w in (5, 2.5):
        for p in FEATURE_GROUPS:
            assert feature_pattern(p.format(w=f"{w:g}")) == p
    assert feature_pattern("volume_sol") is None
    assert feature_pattern("volume_burst_x") is None


def test_catalogue_names_known_base_columns():
    assert set(FEATURE_DESCRIPTIONS) == set(FEATURE_GROUPS)
    for columns in FEATURE_GROUPS.values():
        assert set(columns) <= set(BASE_COLUMNS)


def test_missing_optional_columns_are_skipped_with_reason():
    df = pd.DataFrame({"mint": ["a", "a"], "timestamp": [BASE, BASE + pd.Timedelta(seconds=5)]})
    for column in INPUTS:
        df[column] = 1.0
    df = df.drop(columns=["whale_buy_volume_sol", "unique_wallets"])
    result = engineer_features(df)
    assert list(result.columns) == engineered_feature_names(available_columns=df.columns)
    skipped = result.attrs["skipped_features"]
    assert skipped["whale_share"] == "needs column 'whale_buy_volume_sol', not in the data"
    assert skipped["wallet_ratio_10"] == "needs column 'unique_wallets', not in the data"
    assert set(skipped) | set(result.columns) == set(engineered_feature_names())
    assert not set(skipped) & set(result.columns)


def test_only_keys_gives_an_empty_feature_frame():
    df = pd.DataFrame({"mint": ["a"], "timestamp": [BASE]}, index=["k"])
    result = engineer_features(df)
    assert result.shape == (1, 0)
    assert result.index.equals(df.index)
    assert len(result.attrs["skipped_features"]) == 61


def test_required_history_is_the_largest_window_or_the_burst_reach():
    assert required_history() == pd.Timedelta(minutes=BASELINE_MINUTES)
    assert required_history((5, 15, 10), baseline_minutes=12) == pd.Timedelta(minutes=15)
    assert required_history((5, 90)) == pd.Timedelta(minutes=90)
    with pytest.raises(ValueError, match="baseline_minutes"):
        required_history(baseline_minutes=0)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda df: df.drop(columns="mint"), "'mint'"),
        (lambda df: df.drop(columns="timestamp"), "'timestamp'"),
        (lambda df: df.assign(timestamp=df["timestamp"].dt.tz_localize(None)), "timezone-aware"),
        (lambda df: pd.concat([df, df]), "1 duplicate"),
    ],
)
def test_bad_keys_are_rejected(change, message):
    df = pd.DataFrame({"mint": ["a"], "timestamp": [BASE], "price_close": [1.0]})
    with pytest.raises(ValueError, match=message):
        engineer_features(change(df))


@pytest.mark.parametrize("windows", [(), (0,), (-5,), (5, 5), (float("nan"),), ("5",)])
def test_bad_windows_are_rejected(windows):
    with pytest.raises(ValueError, match="windows"):
        engineered_feature_names(windows)


@settings(max_examples=20, deadline=None)
@given(coin_frames())
def test_computing_into_a_given_block_gives_the_same_values_without_a_copy(df):
    expected = engineer_features(df, windows=(5, 15))
    block = np.full((len(expected.columns), len(df)), -1.0)
    into = engineer_features(df, windows=(5, 15), out=block)
    pd.testing.assert_frame_equal(into, expected)
    assert len(df) == 0 or np.shares_memory(into.to_numpy(), block)
    with pytest.raises(ValueError, match="out: expected a float64 array"):
        engineer_features(df, windows=(5, 15), out=np.empty((len(expected.columns) + 1, len(df))))


@settings(max_examples=25, deadline=None)
@given(coin_frames(), st.data())
def test_computing_only_some_rows_gives_their_values_of_the_full_result(df, data):
    expected = engineer_features(df, windows=(5, 15))
    rows = np.asarray(data.draw(st.lists(st.integers(0, max(len(df) - 1, 0)), unique=True, max_size=len(df))),
                      dtype=np.intp)
    got = engineer_features(df, windows=(5, 15), rows=rows)
    pd.testing.assert_frame_equal(got, expected.iloc[rows])
