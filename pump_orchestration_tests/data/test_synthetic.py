"""Tests of the synthetic coin_metrics generator."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pump_orchestration.data.synthetic import (
    INITIAL_VIRTUAL_SOL,
    INITIAL_VIRTUAL_TOKENS,
    LAUNCH_PRICE,
    METRICS_DTYPES,
    bonding_curve_pct_from_sol,
    generate_coin_metrics,
    iter_coin_metrics,
    phase_for_age,
    phase_grid,
)
from pump_orchestration.vocabulary import BASE_COLUMNS, DEFAULT_PHASES, KEY_COLUMNS, WHALE_TRADE_SOL

N_COINS = 80
ARGS = dict(n_coins=N_COINS, start="2025-09-01T00:00:00Z", hours=3.0, seed=7, pump_share=0.25)
NUMERIC = [c for c, d in METRICS_DTYPES.items() if d in ("float64", "int64")]


@pytest.fixture(scope="module")
def generated() -> tuple[pd.DataFrame, pd.DataFrame]:
    return generate_coin_metrics(**ARGS)


@pytest.fixture(scope="module")
def by_coin(generated) -> pd.DataFrame:
    return generated[0].sort_values(["mint", "timestamp"], ignore_index=True)


def test_columns_dtypes_and_keys(generated):
    metrics, _ = generated
    assert list(metrics.columns) == [*KEY_COLUMNS, *BASE_COLUMNS]
    assert metrics.dtypes.astype(str).to_dict() == METRICS_DTYPES
    assert str(metrics["timestamp"].dt.tz) == "UTC"
    assert not metrics.duplicated(["mint", "timestamp"]).any()
    assert metrics["timestamp"].is_monotonic_increasing
    assert metrics["mint"].nunique() == N_COINS
    base58 = set("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz")
    for mint in metrics["mint"].unique():
        assert len(mint) == 44 and mint.endswith("pump") and set(mint) <= base58
    span = metrics["timestamp"].agg(["min", "max"])
    assert span["min"] >= pd.Timestamp(ARGS["start"])
    assert span["max"] < pd.Timestamp(ARGS["start"]) + pd.Timedelta(hours=ARGS["hours"])


def test_no_nan_or_inf(generated):
    metrics, pumps = generated
    assert np.isfinite(metrics[NUMERIC].to_numpy(dtype=float)).all()
    assert np.isfinite(pumps["peak_gain_pct"]).all()


def test_prices_ohlc_and_curve_consistent(generated):
    m, _ = generated
    assert (m["price_low"] <= m[["price_open", "price_close"]].min(axis=1)).all()
    assert (m["price_high"] >= m[["price_open", "price_close"]].max(axis=1)).all()
    assert (m["price_low"] >= LAUNCH_PRICE * (1 - 1e-12)).all()
    k = INITIAL_VIRTUAL_SOL * INITIAL_VIRTUAL_TOKENS
    np.testing.assert_allclose(m["price_close"], m["virtual_sol_reserves"] ** 2 / k, rtol=1e-12)
    np.testing.assert_allclose(m["market_cap_close"], m["price_close"] * 1e9, rtol=1e-12)
    np.testing.assert_allclose(m["bonding_curve_pct"], bonding_curve_pct_from_sol(m["virtual_sol_reserves"]))
    assert m["bonding_curve_pct"].between(0, 100).all()
    assert (m["virtual_sol_reserves"] >= INITIAL_VIRTUAL_SOL).all()


def test_reserves_move_by_net_buys(by_coin):
    previous = by_coin.groupby("mint")["virtual_sol_reserves"].shift(fill_value=INITIAL_VIRTUAL_SOL)
    net = by_coin["buy_volume_sol"] - by_coin["sell_volume_sol"]
    np.testing.assert_allclose(by_coin["virtual_sol_reserves"] - previous, net, atol=1e-9)


def test_volumes_counts_wallets_whales_consistent(generated):
    m, _ = generated
    np.testing.assert_allclose(m["volume_sol"], m["buy_volume_sol"] + m["sell_volume_sol"])
    for side, count in (("buy", "num_buys"), ("sell", "num_sells")):
        volume, whale = m[f"{side}_volume_sol"], m[f"whale_{side}_volume_sol"]
        assert ((volume > 0) == (m[count] > 0)).all()
        assert (whale <= volume + 1e-12).all()
        assert ((whale == 0) | (whale >= WHALE_TRADE_SOL)).all()
    trades = m["num_buys"] + m["num_sells"]
    assert (m["unique_wallets"] <= trades).all()
    assert ((m["unique_wallets"] > 0) == (trades > 0)).all()
    assert (m["num_buys"] == 0).mean() > 0.05  # quiet intervals exist


def test_phases_follow_age_and_sampling_intervals(by_coin):
    age = (by_coin["timestamp"] - by_coin.groupby("mint")["timestamp"].transform("min")).dt.total_seconds()
    # Row timestamps carry < 2 s of jitter around the phase grid.
    assert (phase_for_age(age - 2.0) <= by_coin["phase_id_at_time"]).all()
    assert (by_coin["phase_id_at_time"] <= phase_for_age(age + 2.0)).all()
    gaps = by_coin.groupby("mint")["timestamp"].diff().dt.total_seconds()
    median_gap = gaps.groupby(by_coin["phase_id_at_time"]).median()
    for phase_id, _, nominal in DEFAULT_PHASES:
        assert abs(median_gap[phase_id] - nominal) < 0.1 * nominal
    assert (gaps.dropna() > 0).all()


def test_phase_grid():
    grid = phase_grid(3700, {1: 5, 2: 30, 3: 60})
    assert grid[:3].tolist() == [0, 5, 10]
    assert grid[119:122].tolist() == [595, 600, 630]
    assert grid[-2:].tolist() == [3600, 3660]
    with pytest.raises(ValueError, match=r"\[3\]"):
        phase_grid(100, {1: 5, 2: 30})


def test_king_of_the_hill_is_top_market_cap_per_minute(generated):
    m, _ = generated
    minute = m["timestamp"].dt.floor("min")
    last = m.assign(minute=minute).groupby(["minute", "mint"]).tail(1)
    flagged = last[last["is_koth"]]
    assert not flagged["minute"].duplicated().any()
    top = last.groupby("minute")["market_cap_close"].max()
    np.testing.assert_allclose(flagged["market_cap_close"], top.loc[flagged["minute"]])
    # A flag covers all of that coin's rows in the minute; few minutes lack a flagged row.
    assert (m["is_koth"] == m.set_index([minute, "mint"]).index.isin(flagged.set_index(["minute", "mint"]).index)).all()
    assert len(flagged) >= 0.9 * minute.nunique()


def test_deterministic_for_a_seed(generated):
    again = generate_coin_metrics(**ARGS)
    pd.testing.assert_frame_equal(generated[0], again[0])
    pd.testing.assert_frame_equal(generated[1], again[1])
    other = generate_coin_metrics(**{**ARGS, "seed": 8})[0]
    assert set(other["mint"]).isdisjoint(generated[0]["mint"])


def test_pumps_table_matches_metrics(generated, by_coin):
    m, pumps = generated
    assert len(pumps) == round(ARGS["pump_share"] * N_COINS)
    assert pumps["mint"].is_unique and pumps["mint"].isin(m["mint"]).all()
    assert pumps["pump_start"].dt.tz is not None
    rows = by_coin.set_index(["mint", "timestamp"])
    for p in pumps.itertuples():
        start, peak = rows.loc[(p.mint, p.pump_start)], rows.loc[(p.mint, p.peak_time)]
        assert p.peak_gain_pct == pytest.approx(100 * (peak["price_close"] / start["price_open"] - 1))
        assert 30 <= p.peak_gain_pct <= 300
        assert pd.Timedelta(minutes=1) <= p.peak_time - p.pump_start <= pd.Timedelta(minutes=11)
        coin = rows.loc[p.mint]
        rise = coin.loc[p.pump_start : p.peak_time, "price_close"]
        assert rise.iloc[-1] == rise.max()
        # The dump: the price falls back well below the peak within 10 minutes.
        after = coin.loc[p.peak_time : p.peak_time + pd.Timedelta(minutes=10), "price_close"]
        assert after.min() < start["price_open"] + 0.8 * (peak["price_close"] - start["price_open"])


def test_pumps_have_a_build_up(generated, by_coin):
    _, pumps = generated
    rows = by_coin.set_index("timestamp")
    volume_ratio, whale_share, wallet_ratio = [], [], []
    for p in pumps.itertuples():
        coin = rows[rows["mint"] == p.mint]
        build = coin.loc[p.pump_start - pd.Timedelta(minutes=2) : p.pump_start - pd.Timedelta(seconds=1)]
        before = coin.loc[: p.pump_start - pd.Timedelta(minutes=7)]
        if before.empty:
            continue
        rate = lambda rows_, col: rows_[col].sum() / max(len(rows_), 1)  # noqa: E731 - tiny local helper
        volume_ratio.append(rate(build, "volume_sol") / max(rate(before, "volume_sol"), 1e-9))
        wallet_ratio.append(rate(build, "unique_wallets") / max(rate(before, "unique_wallets"), 1e-9))
        whale_share.append(build["whale_buy_volume_sol"].sum() / build["buy_volume_sol"].sum())
    assert len(volume_ratio) >= 5
    assert np.median(volume_ratio) > 3
    assert np.median(wallet_ratio) > 2
    assert np.median(whale_share) > 0.2


def _max_rise_within(coin: pd.DataFrame, window: str) -> float:
    close = pd.Series(coin["price_close"].to_numpy(), index=coin["timestamp"])
    ahead = close.iloc[::-1].rolling(window).max().iloc[::-1]  # reversed index: rolls over the *next* window
    return float((ahead / close - 1).max() * 100)


def test_non_pump_coins_mostly_move_less_than_pumps(generated, by_coin):
    _, pumps = generated
    rises = by_coin.groupby("mint")[["timestamp", "price_close"]].apply(_max_rise_within, window="600s")
    quiet = rises[~rises.index.isin(pumps["mint"])]
    assert rises[pumps["mint"]].min() >= 30
    assert quiet.median() < 25
    assert 0 < (quiet > 20).mean() < 0.5  # not trivially separable


def test_batches_union_equals_one_shot():
    args = {**ARGS, "n_coins": 25, "hours": 1.5}
    one_shot, _ = generate_coin_metrics(**args)
    batches = list(iter_coin_metrics(**args, batch_coins=7))
    assert len(batches) == 4
    for batch in batches:
        assert batch["timestamp"].is_monotonic_increasing
    union = pd.concat(batches).sort_values(["timestamp", "mint"], ignore_index=True)
    pd.testing.assert_frame_equal(union, one_shot)


@pytest.mark.parametrize(
    "bad", [{"hours": 0.5}, {"pump_share": 1.5}, {"n_coins": 0}], ids=["hours", "pump_share", "n_coins"]
)
def test_rejects_bad_arguments(bad):
    with pytest.raises(ValueError, match=next(iter(bad))):
        generate_coin_metrics(**{**ARGS, **bad})


def test_iterator_validates_eagerly():
    with pytest.raises(ValueError, match="batch_coins"):
        iter_coin_metrics(**ARGS, batch_coins=0)
    with pytest.raises(ValueError, match="hours"):
        iter_coin_metrics(**{**ARGS, "hours": 0.2})
