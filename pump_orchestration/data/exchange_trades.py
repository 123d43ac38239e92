"""Build ``coin_metrics`` rows from raw centralised-exchange trades (e.g. Binance).

Input format (one row per trade, e.g. ``realdata/lamorgia_pumps/AST_2018-09-07_1530.csv``):
``symbol`` (e.g. ``AST/BTC``), ``timestamp`` (unix milliseconds), ``datetime``
(ISO text of the same instant, not used), ``side`` (``buy``/``sell``, the taker
side), ``price`` (quote currency per token), ``amount`` (tokens) and
``btc_volume`` (quote volume of the trade).

The candles have the column order of
:data:`pump_orchestration.data.synthetic.METRICS_DTYPES`, so they go through the
same label and feature code as pump.fun rows and can be written to the same table.
What differs from pump.fun and why:

- ``volume_sol``, ``buy_volume_sol``, ``sell_volume_sol`` hold the *quote* volume
  (BTC for ``*/BTC`` pairs). The columns keep their names so that every feature
  works unchanged; only ratios and window statistics of them are used, which do
  not depend on the unit.
- ``market_cap_close`` is NaN: a market cap needs the circulating supply, which
  trades do not carry (a copy of the price would only duplicate ``price_roc``).
- ``bonding_curve_pct``, ``virtual_sol_reserves``, ``unique_wallets`` and the whale
  volumes are NaN (an exchange has no curve or reserves, and its trades name no
  wallet); ``is_koth`` is False. ``build_feature_matrix`` treats an all-NaN column
  as missing and records the features it skips.
- ``phase_id_at_time`` is 1 on every row: the tracker's age phases do not apply.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from pump_orchestration.data.synthetic import METRICS_DTYPES

#: Raw trade columns the reader needs (``datetime`` duplicates ``timestamp`` and is ignored).
REQUIRED_EXCHANGE_COLUMNS = ("symbol", "timestamp", "side", "price", "amount", "btc_volume")

#: Output dtypes: those of the pump.fun data tools, except ``unique_wallets``, which is
#: unknown here and therefore float NaN (NULL when written), as the warehouse loader returns it.
CANDLE_DTYPES: dict[str, str] = METRICS_DTYPES | {"unique_wallets": "float64"}

#: Columns an exchange cannot fill; NaN on every candle.
UNKNOWN_COLUMNS = ("market_cap_close", "bonding_curve_pct", "virtual_sol_reserves", "unique_wallets",
                   "whale_buy_volume_sol", "whale_sell_volume_sol")

_FILENAME = re.compile(r"^[A-Za-z0-9]+_(?P<date>\d{4}-\d{2}-\d{2})_(?P<hhmm>\d{4})\.csv$")


def read_exchange_trades(path: str | Path) -> pd.DataFrame:
    """Read a raw exchange trades CSV and return :func:`parse_exchange_trades` of it."""
    return parse_exchange_trades(pd.read_csv(path))


def parse_exchange_trades(raw: pd.DataFrame) -> pd.DataFrame:
    """Validate raw exchange trades and convert types.

    Returns ``symbol``, ``timestamp`` (UTC, from the millisecond ``timestamp``),
    ``side`` (``buy``/``sell``), ``price``, ``amount`` and ``btc_volume`` (floats),
    sorted by timestamp with trades of the same millisecond in input order.
    Raises ``ValueError`` naming every missing column, the unknown ``side`` values
    or the columns with missing values.
    """
    missing = [col for col in REQUIRED_EXCHANGE_COLUMNS if col not in raw.columns]
    if missing:
        raise ValueError(f"exchange trades lack required column(s): {', '.join(missing)}")
    with_nan = [col for col in REQUIRED_EXCHANGE_COLUMNS if raw[col].isna().any()]
    if with_nan:
        raise ValueError(f"exchange trades have missing values in column(s): {', '.join(with_nan)}")
    side = raw["side"].astype(str).str.strip().str.lower()
    unknown = sorted(set(side) - {"buy", "sell"})
    if unknown:
        raise ValueError(f"column 'side' must be 'buy' or 'sell', found {unknown[:5]}")
    trades = pd.DataFrame(
        {
            "symbol": raw["symbol"].astype(str).astype(object),
            "timestamp": pd.to_datetime(raw["timestamp"].astype("int64"), unit="ms", utc=True),
            "side": side.astype(object),
            "price": raw["price"].astype("float64"),
            "amount": raw["amount"].astype("float64"),
            "btc_volume": raw["btc_volume"].astype("float64"),
        }
    )
    return trades.sort_values("timestamp", kind="stable", ignore_index=True)


def exchange_trades_to_candles(
    trades: pd.DataFrame, interval_seconds: float = 25, mint: str | None = None
) -> pd.DataFrame:
    """Aggregate parsed trades (:func:`parse_exchange_trades`) of ONE symbol into candles.

    One row per ``interval_seconds`` interval aligned to the unix epoch, from the
    interval of the first trade to that of the last; ``timestamp`` is the interval
    start (UTC) and ``mint`` is ``mint`` or else the trades' symbol. Open/close are
    the first/last trade of the interval (input order within a millisecond), volumes
    sum ``btc_volume`` (split by ``side``) and counts are trades per side. An interval
    without trades repeats the previous close as OHLC with zero volumes and counts.
    See the module docstring for the columns an exchange cannot fill.
    """
    if not interval_seconds > 0:
        raise ValueError(f"interval_seconds must be positive, got {interval_seconds!r}")
    missing = [col for col in ("timestamp", "side", "price", "btc_volume") if col not in trades.columns]
    if missing:
        raise ValueError(f"trades lack column(s) {', '.join(missing)}; parse raw trades with parse_exchange_trades")
    if trades.empty:
        raise ValueError("no trades to aggregate")
    if mint is None:
        if "symbol" not in trades.columns:
            raise ValueError("trades have no 'symbol' column; pass mint=")
        symbols = trades["symbol"].unique()
        if len(symbols) != 1:
            raise ValueError(f"trades of one symbol expected, got {len(symbols)}: {list(symbols)[:5]}; "
                             "filter them or pass mint=")
        mint = str(symbols[0])

    trades = trades.sort_values("timestamp", kind="stable")
    interval_ns = int(round(interval_seconds * 1e9))
    bins = pd.DatetimeIndex(trades["timestamp"]).as_unit("ns").asi8 // interval_ns
    is_buy = (trades["side"] == "buy").to_numpy()
    volume = trades["btc_volume"].to_numpy()
    per_trade = pd.DataFrame({
        "bin": bins,
        "price": trades["price"].to_numpy(),
        "volume": volume,
        "buy_volume": np.where(is_buy, volume, 0.0),
        "sell_volume": np.where(is_buy, 0.0, volume),
        "buys": is_buy.astype(np.int64),
        "sells": (~is_buy).astype(np.int64),
    })
    grouped = per_trade.groupby("bin", sort=True).agg(
        price_open=("price", "first"),
        price_high=("price", "max"),
        price_low=("price", "min"),
        price_close=("price", "last"),
        volume_sol=("volume", "sum"),
        buy_volume_sol=("buy_volume", "sum"),
        sell_volume_sol=("sell_volume", "sum"),
        num_buys=("buys", "sum"),
        num_sells=("sells", "sum"),
    )
    candles = grouped.reindex(np.arange(bins.min(), bins.max() + 1))
    traded = candles["price_close"].notna().to_numpy()
    close = candles["price_close"].ffill()  # the first interval always has trades
    for col in ("price_open", "price_high", "price_low"):
        candles[col] = candles[col].where(traded, close)
    candles["price_close"] = close
    totals = ["volume_sol", "buy_volume_sol", "sell_volume_sol", "num_buys", "num_sells"]
    candles[totals] = candles[totals].fillna(0)
    n = len(candles)
    columns = {
        "mint": np.full(n, mint, dtype=object),
        "timestamp": pd.to_datetime(candles.index.to_numpy() * interval_ns, unit="ns", utc=True),
        "phase_id_at_time": np.ones(n, dtype=np.int64),
        **{col: candles[col].to_numpy() for col in ("price_open", "price_high", "price_low", "price_close")},
        **{col: candles[col].to_numpy() for col in totals},
        "is_koth": np.zeros(n, dtype=bool),
        **{col: np.full(n, np.nan) for col in UNKNOWN_COLUMNS},
    }
    frame = pd.DataFrame({col: columns[col] for col in CANDLE_DTYPES})
    return frame.astype(CANDLE_DTYPES)


def pump_time_from_filename(path: str | Path) -> pd.Timestamp:
    """Pump start (UTC) encoded in a file name ``<SYMBOL>_<YYYY-MM-DD>_<HHMM>.csv``.

    ``AST_2018-09-07_1530.csv`` gives 2018-09-07 15:30 UTC. Raises ``ValueError`` for
    any other name.
    """
    match = _FILENAME.match(Path(path).name)
    if match is None:
        raise ValueError(f"{Path(path).name!r} is not named <SYMBOL>_<YYYY-MM-DD>_<HHMM>.csv")
    hhmm = match["hhmm"]
    try:
        return pd.Timestamp(f"{match['date']}T{hhmm[:2]}:{hhmm[2:]}:00", tz="UTC")
    except ValueError as exc:
        raise ValueError(f"{Path(path).name!r}: invalid date or time ({exc})") from None
