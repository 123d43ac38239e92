"""Tests of the raw pump.fun trades importer."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pump_orchestration.data.synthetic import METRICS_DTYPES, generate_coin_metrics
from pump_orchestration.data.trades_import import (
    REQUIRED_TRADE_COLUMNS,
    parse_trades,
    read_trades_csv,
    trades_to_coin_metrics,
)

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
TRADES_CSV = REALDATA / "pumpfun_trades" / "trades_data.csv"
T = 1_757_782_395  # a multiple of 5: the first 5-second interval starts here


def _raw_trade(mint, dt, buy, wallet, sol, tokens, price, vsol, real_tokens, signature="sig"):
    """One raw trade in the file's units (lamports, raw token units with 6 decimals)."""
    return {
        "block_time": T + dt,
        "transaction_signature": signature,
        "token_address": mint,
        "wallet_address": wallet,
        "is_buy": "true" if buy else "false",
        "amount_in_sol": round(sol * 1e9),
        "amount_in_token": round(tokens * 1e6),
        "price_in_sol": price,
        "virtual_sol_reserves": round(vsol * 1e9),
        "real_token_reserves": round(real_tokens * 1e6),
    }


# Deliberately out of time order: the importer sorts per mint, keeping the order within a second.
HAND_TRADES = [
    _raw_trade("mintA", 0, True, "w1", 1.5, 50e6, 3.0e-8, 31.5, 743.1e6, "tx1"),
    _raw_trade("mintA", 1, False, "w2", 0.2, 6.9e6, 2.9e-8, 31.3, 750.0e6, "tx2"),
    _raw_trade("mintA", 12, False, "w3", 2.0, 70e6, 2.7e-8, 30.2, 790.0e6, "tx5"),
    _raw_trade("mintB", 7, True, "w5", 1.0, 34e6, 2.9e-8, 31.3, 748.0e6, "tx4"),
    _raw_trade("mintA", 3, True, "w1", 0.5, 15.6e6, 3.2e-8, 31.8, 734.4e6, "tx3"),
    _raw_trade("mintB", 6, True, "w4", 0.3, 10.7e6, 2.8e-8, 30.3, 782.0e6, "tx4"),
    _raw_trade("mintA", 14, True, "w3", 0.1, 3.6e6, 2.75e-8, 30.3, 786.0e6, "tx6"),
    _raw_trade("mintB", 13, False, "w4", 0.05, 1.75e6, 2.85e-8, 31.25, 749.7e6, "tx7"),
]


def _progress(real_tokens: float) -> float:
    return 100 * (1 - real_tokens / 793.1e6)


@pytest.fixture
def hand_csv(tmp_path: Path) -> Path:
    path = tmp_path / "trades.csv"
    pd.DataFrame(HAND_TRADES).to_csv(path, index=False)
    return path


def test_read_trades_converts_units(hand_csv):
    trades = read_trades_csv(hand_csv)
    first = trades.iloc[0]
    assert first["mint"] == "mintA" and first["wallet"] == "w1" and first["is_buy"]
    assert first["timestamp"] == pd.Timestamp(T, unit="s", tz="UTC")
    assert first["sol_amount"] == pytest.approx(1.5)
    assert first["token_amount"] == pytest.approx(50e6)
    assert first["price"] == pytest.approx(3.0e-8)
    assert first["virtual_sol_reserves"] == pytest.approx(31.5)
    assert first["real_token_reserves"] == pytest.approx(743.1e6)
    assert trades["is_buy"].dtype == bool
    assert trades.groupby("mint")["timestamp"].apply(lambda s: s.is_monotonic_increasing).all()


def test_hand_written_trades_every_value(hand_csv):
    metrics = trades_to_coin_metrics(read_trades_csv(hand_csv), interval_seconds=5)
    ts = [pd.Timestamp(T + dt, unit="s", tz="UTC") for dt in (0, 5, 5, 10, 10)]
    expected = pd.DataFrame(
        {
            "mint": ["mintA", "mintA", "mintB", "mintA", "mintB"],
            "timestamp": ts,
            "phase_id_at_time": [1, 1, 1, 1, 1],
            "price_open": [3.0e-8, 3.2e-8, 2.8e-8, 2.7e-8, 2.85e-8],
            "price_high": [3.2e-8, 3.2e-8, 2.9e-8, 2.75e-8, 2.85e-8],
            "price_low": [2.9e-8, 3.2e-8, 2.8e-8, 2.7e-8, 2.85e-8],
            "price_close": [3.2e-8, 3.2e-8, 2.9e-8, 2.75e-8, 2.85e-8],
            "volume_sol": [2.2, 0.0, 1.3, 2.1, 0.05],
            "market_cap_close": [32.0, 32.0, 29.0, 27.5, 28.5],
            "buy_volume_sol": [2.0, 0.0, 1.3, 0.1, 0.0],
            "sell_volume_sol": [0.2, 0.0, 0.0, 2.0, 0.05],
            "num_buys": [2, 0, 2, 1, 0],
            "num_sells": [1, 0, 0, 1, 1],
            "bonding_curve_pct": [_progress(r) for r in (734.4e6, 734.4e6, 748.0e6, 786.0e6, 749.7e6)],
            "virtual_sol_reserves": [31.8, 31.8, 31.3, 30.3, 31.25],
            "unique_wallets": [2, 0, 2, 1, 1],
            "is_koth": [False] * 5,
            "whale_buy_volume_sol": [1.5, 0.0, 1.0, 0.0, 0.0],
            "whale_sell_volume_sol": [0.0, 0.0, 0.0, 2.0, 0.0],
        }
    ).astype(METRICS_DTYPES)
    pd.testing.assert_frame_equal(metrics, expected, check_exact=False, rtol=1e-12)


def test_output_schema_matches_synthetic(hand_csv):
    imported = trades_to_coin_metrics(read_trades_csv(hand_csv))
    synthetic, _ = generate_coin_metrics(n_coins=3, hours=1.0, seed=1)
    assert list(imported.columns) == list(synthetic.columns)
    assert imported.dtypes.equals(synthetic.dtypes)


def test_phase_dependent_grid(hand_csv):
    raw = [_raw_trade("mintC", dt, True, "w", 0.1, 1e6, 3e-8, 30.1, 790e6) for dt in (0, 700, 4000)]
    metrics = trades_to_coin_metrics(parse_trades(pd.DataFrame(raw)), phase_intervals={1: 5, 2: 30, 3: 60})
    # 120 rows of 5 s (ages 0-595), 100 of 30 s (600-3570), 7 of 60 s (3600-3960).
    assert metrics["phase_id_at_time"].value_counts().to_dict() == {1: 120, 2: 100, 3: 7}
    traded = metrics.loc[metrics["num_buys"] > 0, "timestamp"] - pd.Timestamp(T, unit="s", tz="UTC")
    assert traded.dt.total_seconds().tolist() == [0, 690, 3960]
    assert metrics["volume_sol"].sum() == pytest.approx(0.3)


def test_missing_columns_are_named():
    raw = pd.DataFrame(HAND_TRADES).drop(columns=["price_in_sol", "wallet_address"])
    with pytest.raises(ValueError, match="wallet_address, price_in_sol"):
        parse_trades(raw)
    with pytest.raises(ValueError, match="parse_trades"):
        trades_to_coin_metrics(pd.DataFrame(HAND_TRADES))


def test_no_trades_gives_empty_frame():
    empty = parse_trades(pd.DataFrame({col: [] for col in REQUIRED_TRADE_COLUMNS}))
    metrics = trades_to_coin_metrics(empty)
    assert metrics.empty and metrics.dtypes.astype(str).to_dict() == METRICS_DTYPES


_trade = st.tuples(
    st.sampled_from(["m1", "m2"]),
    st.integers(0, 300),
    st.booleans(),
    st.sampled_from(["a", "b", "c", "d"]),
    st.floats(0.0, 3.0),
    st.floats(2.8e-8, 1e-7),
)


@settings(max_examples=40, deadline=None)
@given(st.lists(_trade, min_size=1, max_size=25), st.sampled_from([1, 5, 7, 30]))
def test_aggregation_properties(trades, interval):
    raw = pd.DataFrame([_raw_trade(m, dt, b, w, sol, 1e6, p, 31.0, 700e6) for m, dt, b, w, sol, p in trades])
    parsed = parse_trades(raw)
    metrics = trades_to_coin_metrics(parsed, interval_seconds=interval)
    assert metrics["volume_sol"].sum() == pytest.approx(parsed["sol_amount"].sum())
    assert (metrics["num_buys"] + metrics["num_sells"]).sum() == len(parsed)
    assert (metrics["price_low"] <= metrics[["price_open", "price_close"]].min(axis=1)).all()
    assert (metrics["price_high"] >= metrics[["price_open", "price_close"]].max(axis=1)).all()
    for mint, rows in metrics.groupby("mint"):
        seconds = parsed.loc[parsed["mint"] == mint, "timestamp"].astype("int64") // 10**9
        assert len(rows) == seconds.max() // interval - seconds.min() // interval + 1
        assert (rows["timestamp"].diff().dropna() == pd.Timedelta(seconds=interval)).all()
        last_price = parsed.loc[parsed["mint"] == mint, "price"].iloc[-1]
        assert rows["price_close"].iloc[-1] == last_price


@pytest.fixture(scope="module")
def real_trades() -> pd.DataFrame:
    if not TRADES_CSV.exists():
        pytest.skip(f"real trades file absent: {TRADES_CSV} (../shared/realdata is not shipped with the project)")
    return read_trades_csv(TRADES_CSV)


@pytest.mark.realdata
def test_real_trades_file(real_trades):
    metrics = trades_to_coin_metrics(real_trades, interval_seconds=5)
    assert metrics["mint"].nunique() == 5 and real_trades["mint"].nunique() == 5
    assert metrics.dtypes.astype(str).to_dict() == METRICS_DTYPES
    prices = metrics[["price_open", "price_high", "price_low", "price_close"]]
    assert (prices > 0).all().all()
    assert prices.min().min() >= 2.7e-8 and prices.max().max() < 1e-6  # pump.fun launches at ~2.8e-8
    assert metrics["volume_sol"].sum() == pytest.approx(real_trades["sol_amount"].sum(), rel=1e-12)
    assert (metrics["num_buys"] + metrics["num_sells"]).sum() == len(real_trades)
    span = real_trades.groupby("mint")["timestamp"].agg(["min", "max"])
    expected_rows = span["max"].dt.floor("5s") - span["min"].dt.floor("5s")
    rows = metrics.groupby("mint").size()
    pd.testing.assert_series_equal(rows, (expected_rows.dt.total_seconds() // 5 + 1).astype("int64"), check_names=False)
    # Progress (from token reserves) rises with the virtual SOL reserves (a separate column).
    by_sol = metrics.sort_values("virtual_sol_reserves")
    assert by_sol["bonding_curve_pct"].is_monotonic_increasing
    assert metrics["bonding_curve_pct"].between(0, 100).all()


@pytest.mark.realdata
def test_real_trades_phase_grid(real_trades):
    metrics = trades_to_coin_metrics(real_trades, phase_intervals={1: 5, 2: 30, 3: 60})
    assert metrics["volume_sol"].sum() == pytest.approx(real_trades["sol_amount"].sum(), rel=1e-12)
    assert set(metrics["phase_id_at_time"]) == {1, 2, 3}
    assert (metrics.groupby("mint")["phase_id_at_time"].apply(lambda p: p.is_monotonic_increasing)).all()
