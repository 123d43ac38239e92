"""Build ``coin_metrics`` rows from raw pump.fun bonding-curve trades.

Input format (one row per trade, e.g. ``realdata/pumpfun_trades/trades_data.csv``):
``block_time`` (unix seconds), ``token_address`` (the mint), ``wallet_address``,
``is_buy``, ``amount_in_sol`` and ``virtual_sol_reserves`` / ``real_sol_reserves``
(lamports), ``amount_in_token`` and ``*_token_reserves`` (raw units, 6 decimals),
``price_in_sol`` (SOL per token). Reserves are those after the trade.

The output has exactly the columns and dtypes of the synthetic generator
(:data:`pump_orchestration.data.synthetic.METRICS_DTYPES`), so both can be
written to the same table. Derived columns:

- ``phase_id_at_time``: :func:`~pump_orchestration.data.synthetic.phase_for_age` of
  the row's interval start, age counted from the mint's first trade (the same
  rule as the synthetic data; raw trades carry no tracker phase).
- ``is_koth``: always False; king of the hill needs every live coin's market cap,
  which a trades export of a few mints does not have.
- ``bonding_curve_pct``: ``100 * (1 - real_token_reserves / 793.1e6 tokens)``, clipped to 0-100.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from pump_orchestration.data.synthetic import (
    CURVE_TOKENS,
    TOTAL_SUPPLY,
    METRICS_DTYPES,
    metrics_frame,
    phase_for_age,
    phase_grid,
)
from pump_orchestration.vocabulary import WHALE_TRADE_SOL

LAMPORTS_PER_SOL = 1e9
TOKEN_DECIMALS = 6

#: Raw trade columns the importer needs.
REQUIRED_TRADE_COLUMNS = (
    "block_time",
    "token_address",
    "wallet_address",
    "is_buy",
    "amount_in_sol",
    "amount_in_token",
    "price_in_sol",
    "virtual_sol_reserves",
    "real_token_reserves",
)

#: Columns of a parsed trades frame that :func:`trades_to_coin_metrics` needs.
PARSED_TRADE_COLUMNS = (
    "timestamp",
    "mint",
    "wallet",
    "is_buy",
    "sol_amount",
    "price",
    "virtual_sol_reserves",
    "real_token_reserves",
)

_TRUE_STRINGS = {"true", "t", "1", "yes", "y"}


def read_trades_csv(path: str | Path) -> pd.DataFrame:
    """Read a raw pump.fun trades CSV and return :func:`parse_trades` of it."""
    return parse_trades(pd.read_csv(path))


def parse_trades(raw: pd.DataFrame) -> pd.DataFrame:
    """Validate raw trades and convert units.

    Returns one row per trade, ordered by (mint, timestamp) with trades of the same
    second in input order (block times have one-second resolution; in the public
    file the input order within a second follows the reserve chain), with columns:
    ``timestamp`` (UTC), ``mint``, ``wallet``, ``is_buy``, ``sol_amount`` (SOL),
    ``token_amount`` (tokens), ``price`` (SOL per token), ``virtual_sol_reserves``
    (SOL), ``real_token_reserves`` (tokens), plus ``transaction_signature`` when
    present. Raises ``ValueError`` naming any missing required column.
    """
    missing = [col for col in REQUIRED_TRADE_COLUMNS if col not in raw.columns]
    if missing:
        raise ValueError(f"trades lack required column(s): {', '.join(missing)}")
    is_buy = raw["is_buy"]
    if is_buy.dtype != bool:
        is_buy = is_buy.astype(str).str.strip().str.lower().isin(_TRUE_STRINGS)
    trades = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(raw["block_time"], unit="s", utc=True),
            "mint": raw["token_address"].astype(str).astype(object),
            "wallet": raw["wallet_address"].astype(str).astype(object),
            "is_buy": is_buy.astype(bool),
            "sol_amount": raw["amount_in_sol"].astype("float64") / LAMPORTS_PER_SOL,
            "token_amount": raw["amount_in_token"].astype("float64") / 10**TOKEN_DECIMALS,
            "price": raw["price_in_sol"].astype("float64"),
            "virtual_sol_reserves": raw["virtual_sol_reserves"].astype("float64") / LAMPORTS_PER_SOL,
            "real_token_reserves": raw["real_token_reserves"].astype("float64") / 10**TOKEN_DECIMALS,
        }
    )
    if "transaction_signature" in raw.columns:
        trades["transaction_signature"] = raw["transaction_signature"].astype(object)
    return trades.sort_values(["mint", "timestamp"], kind="stable", ignore_index=True)


def trades_to_coin_metrics(
    trades: pd.DataFrame,
    interval_seconds: float = 5,
    phase_intervals: Mapping[int, float] | None = None,
) -> pd.DataFrame:
    """Aggregate parsed trades (:func:`parse_trades`) into ``coin_metrics`` rows per mint.

    Without ``phase_intervals`` rows are candles of ``interval_seconds`` aligned to
    the unix epoch, from the interval of a mint's first trade to that of its last.
    With ``phase_intervals`` ({phase_id: seconds}, e.g. 5/30/60) rows follow the
    tracker's phase-dependent grid starting at the mint's first trade
    (:func:`~pump_orchestration.data.synthetic.phase_grid`) and ``interval_seconds``
    is not used. Every interval gets a row: one without trades repeats the previous
    close as OHLC, reserves and progress, with zero volumes, counts and wallets.
    Timestamps are interval starts (UTC). Sorted by (timestamp, mint).
    """
    if phase_intervals is None and interval_seconds <= 0:
        raise ValueError("interval_seconds must be positive")
    missing = [col for col in PARSED_TRADE_COLUMNS if col not in trades.columns]
    if missing:
        raise ValueError(f"trades lack column(s) {', '.join(missing)}; parse raw trades with parse_trades first")
    trades = trades.sort_values(["mint", "timestamp"], kind="stable", ignore_index=True)
    if trades.empty:
        return metrics_frame({col: pd.Series(dtype=dtype) for col, dtype in METRICS_DTYPES.items()})
    seconds = trades["timestamp"].astype("int64").to_numpy() / 1e9

    # Row grid per mint (row start times in unix seconds) and each trade's row.
    mint_codes, mints = pd.factorize(trades["mint"], sort=False)
    bounds = np.flatnonzero(np.diff(mint_codes)) + 1
    first_trade = np.r_[0, bounds]
    grids, trade_row, offset = [], np.empty(len(trades), dtype=np.int64), 0
    for lo, hi in zip(first_trade, np.r_[bounds, len(trades)]):
        t0, t1 = seconds[lo], seconds[hi - 1]
        if phase_intervals is None:
            k0, k1 = np.floor(t0 / interval_seconds), np.floor(t1 / interval_seconds)
            grid = (k0 + np.arange(int(k1 - k0) + 1)) * interval_seconds
            age = grid - t0
        else:
            age = phase_grid(t1 - t0, phase_intervals)
            grid = t0 + age
        trade_row[lo:hi] = offset + np.searchsorted(grid, seconds[lo:hi], side="right") - 1
        grids.append((grid, np.maximum(age, 0.0)))
        offset += grid.size
    n_rows = offset
    row_start = np.concatenate([g for g, _ in grids])
    row_age = np.concatenate([a for _, a in grids])
    row_mint = np.repeat(np.arange(len(mints)), [g.size for g, _ in grids])

    sol = trades["sol_amount"].to_numpy()
    is_buy = trades["is_buy"].to_numpy()
    whale = sol >= WHALE_TRADE_SOL

    def total(weights: np.ndarray) -> np.ndarray:
        return np.bincount(trade_row, weights=weights, minlength=n_rows)

    # Price, reserves and progress: per traded row from its trades, then carried
    # forward into empty rows (a mint's first row always has trades).
    traded_rows, first_idx = np.unique(trade_row, return_index=True)
    last_idx = np.r_[first_idx[1:], len(trades)] - 1
    price = trades["price"].to_numpy()
    progress = np.clip(100.0 * (1.0 - trades["real_token_reserves"].to_numpy() / CURVE_TOKENS), 0.0, 100.0)
    has_trades = np.zeros(n_rows, dtype=bool)
    has_trades[traded_rows] = True
    carried = np.maximum.accumulate(np.where(has_trades, np.arange(n_rows), 0))

    def per_row(values: np.ndarray, empty: np.ndarray | None = None) -> np.ndarray:
        """Values of traded rows; empty rows get ``empty`` or else the previous row's value."""
        out = np.full(n_rows, np.nan)
        out[traded_rows] = values
        return out[carried] if empty is None else np.where(has_trades, out, empty)

    close = per_row(price[last_idx])
    open_ = per_row(price[first_idx], close)
    high = per_row(np.maximum.reduceat(price, first_idx), close)
    low = per_row(np.minimum.reduceat(price, first_idx), close)

    wallet_codes = pd.factorize(trades["wallet"])[0]
    pairs = np.unique(trade_row * (wallet_codes.max() + 1) + wallet_codes)
    unique_wallets = np.bincount(pairs // (wallet_codes.max() + 1), minlength=n_rows)

    frame = metrics_frame(
        {
            "mint": np.asarray(mints, dtype=object)[row_mint],
            "timestamp": pd.to_datetime(np.round(row_start * 1e9).astype(np.int64), unit="ns", utc=True),
            "phase_id_at_time": phase_for_age(row_age),
            "price_open": open_,
            "price_high": high,
            "price_low": low,
            "price_close": close,
            "volume_sol": total(sol),
            "market_cap_close": close * TOTAL_SUPPLY,
            "buy_volume_sol": total(sol * is_buy),
            "sell_volume_sol": total(sol * ~is_buy),
            "num_buys": np.bincount(trade_row[is_buy], minlength=n_rows),
            "num_sells": np.bincount(trade_row[~is_buy], minlength=n_rows),
            "bonding_curve_pct": per_row(progress[last_idx]),
            "virtual_sol_reserves": per_row(trades["virtual_sol_reserves"].to_numpy()[last_idx]),
            "unique_wallets": unique_wallets,
            "is_koth": np.zeros(n_rows, dtype=bool),
            "whale_buy_volume_sol": total(sol * (is_buy & whale)),
            "whale_sell_volume_sol": total(sol * (~is_buy & whale)),
        }
    )
    return frame.sort_values(["timestamp", "mint"], kind="stable", ignore_index=True)
