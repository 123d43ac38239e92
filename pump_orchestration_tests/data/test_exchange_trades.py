"""Tests of the exchange (Binance) trades importer."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pump_orchestration.data.exchange_trades import (
    CANDLE_DTYPES,
    UNKNOWN_COLUMNS,
    exchange_trades_to_candles,
    parse_exchange_trades,
    pump_time_from_filename,
    read_exchange_trades,
)
from pump_orchestration.data.synthetic import METRICS_DTYPES
from pump_orchestration.ml.dataset import build_feature_matrix
from pump_orchestration.ml.request import FeatureSpec

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"
PUMP_CSV = REALDATA / "lamorgia_pumps" / "OAX_2018-08-17_1600.csv"
T0_MS = 1_600_000_000_000  # a multiple of 10 s: the first 10-second interval starts here


def _trade(ms_after: int, side: str, price: float, btc: float) -> dict:
    """One raw trade in the file's format (timestamp in ms)."""
    ts = T0_MS + ms_after
    return {"symbol": "XYZ/BTC", "timestamp": ts, "datetime": pd.Timestamp(ts, unit="ms").isoformat(),
            "side": side, "price": price, "amount": btc / price, "btc_volume": btc}


# Deliberately out of time order; the two trades at +3.5 s share a millisecond (input order kept).
HAND_TRADES = [
    _trade(1_000, "buy", 10.0, 10.0),
    _trade(3_500, "sell", 12.0, 2.0),
    _trade(3_500, "buy", 11.0, 3.0),
    _trade(25_000, "sell", 8.0, 4.0),
    _trade(9_999, "buy", 9.0, 1.0),
    _trade(21_000, "buy", 8.5, 0.5),
]


def test_hand_made_trades_give_hand_computed_candles():
    candles = exchange_trades_to_candles(parse_exchange_trades(pd.DataFrame(HAND_TRADES)), interval_seconds=10)

    assert list(candles.columns) == list(METRICS_DTYPES)
    assert candles.dtypes.astype(str).to_dict() == CANDLE_DTYPES
    assert candles["mint"].tolist() == ["XYZ/BTC"] * 3
    t0 = pd.Timestamp(T0_MS, unit="ms", tz="UTC")
    assert candles["timestamp"].tolist() == [t0, t0 + pd.Timedelta(seconds=10), t0 + pd.Timedelta(seconds=20)]
    # [0, 10): 10 -> 12 (sell) -> 11 (buy, same ms, later in the input) -> 9.
    # [10, 20): no trade: previous close, zero volumes. [20, 30): 8.5 at +21 s, 8 at +25 s.
    expected = pd.DataFrame({
        "price_open": [10.0, 9.0, 8.5],
        "price_high": [12.0, 9.0, 8.5],
        "price_low": [9.0, 9.0, 8.0],
        "price_close": [9.0, 9.0, 8.0],
        "volume_sol": [16.0, 0.0, 4.5],
        "buy_volume_sol": [14.0, 0.0, 0.5],
        "sell_volume_sol": [2.0, 0.0, 4.0],
        "num_buys": [3, 0, 1],
        "num_sells": [1, 0, 1],
        "phase_id_at_time": [1, 1, 1],
    })
    pd.testing.assert_frame_equal(candles[expected.columns], expected)
    assert not candles["is_koth"].any()
    assert candles[list(UNKNOWN_COLUMNS)].isna().all().all()


def test_mint_name_overrides_symbol_and_several_symbols_need_one():
    trades = parse_exchange_trades(pd.DataFrame(HAND_TRADES))
    assert set(exchange_trades_to_candles(trades, 10, mint="event-1")["mint"]) == {"event-1"}
    mixed = pd.concat([trades, trades.assign(symbol="ABC/BTC")], ignore_index=True)
    with pytest.raises(ValueError, match="one symbol"):
        exchange_trades_to_candles(mixed, 10)
    with pytest.raises(ValueError, match="interval_seconds"):
        exchange_trades_to_candles(trades, 0)


def test_feature_matrix_skips_what_an_exchange_lacks():
    candles = exchange_trades_to_candles(parse_exchange_trades(pd.DataFrame(HAND_TRADES)), 10)
    X, skipped = build_feature_matrix(candles, FeatureSpec(base_features=("volume_sol",), windows=(1,)))

    assert "mcap_velocity_1" in skipped and "'market_cap_close'" in skipped["mcap_velocity_1"]
    assert {"whale_share", "wallet_ratio_1", "bonding_curve_velocity_1"} <= set(skipped)
    assert np.isfinite(X.to_numpy()).all()


def test_pump_time_from_filename():
    assert pump_time_from_filename("AST_2018-09-07_1530.csv") == pd.Timestamp("2018-09-07T15:30:00Z")
    assert pump_time_from_filename(Path("/x/BRD_2018-12-22_1700.csv")) == pd.Timestamp("2018-12-22T17:00:00Z")
    for bad in ("pump_telegram.csv", "AST_2018-09-07_2590.csv"):
        with pytest.raises(ValueError, match=bad):
            pump_time_from_filename(bad)


def test_missing_columns_and_bad_sides_are_named(tmp_path):
    path = tmp_path / "trades.csv"
    pd.DataFrame(HAND_TRADES).drop(columns=["side", "btc_volume"]).to_csv(path, index=False)
    with pytest.raises(ValueError, match="side, btc_volume"):
        read_exchange_trades(path)
    with pytest.raises(ValueError, match="'hold'"):
        parse_exchange_trades(pd.DataFrame(HAND_TRADES).assign(side="hold"))


@pytest.mark.realdata
def test_real_pump_file_candles_show_the_event():
    if not PUMP_CSV.exists():
        pytest.skip(f"real data absent: {PUMP_CSV} (the shared realdata folder is not next to the repository)")
    trades = read_exchange_trades(PUMP_CSV)
    candles = exchange_trades_to_candles(trades, interval_seconds=25)

    steps = candles["timestamp"].diff().dropna().unique()
    assert list(steps) == [pd.Timedelta(seconds=25)]
    assert candles["volume_sol"].sum() == pytest.approx(trades["btc_volume"].sum(), rel=1e-9)
    assert np.allclose(candles["buy_volume_sol"] + candles["sell_volume_sol"], candles["volume_sol"])
    assert (candles["num_buys"] + candles["num_sells"]).sum() == len(trades)

    pump, ts = pump_time_from_filename(PUMP_CSV), candles["timestamp"]
    hour_before = candles[(ts >= pump - pd.Timedelta(hours=1)) & (ts < pump)]
    first_minutes = candles[(ts >= pump) & (ts < pump + pd.Timedelta(minutes=5))]
    # The README: in the minutes around the pump BTC volume is 15-85 times the previous hour's.
    assert first_minutes["volume_sol"].sum() >= 15 * hour_before["volume_sol"].sum()
    # ...and the price peaks 7-21 % above its level before.
    peak = candles.loc[(ts >= pump) & (ts < pump + pd.Timedelta(hours=1)), "price_close"].max()
    assert peak >= 1.07 * hour_before["price_close"].iloc[-1]
