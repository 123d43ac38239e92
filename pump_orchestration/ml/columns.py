"""The ``coin_metrics`` column catalogue shared by the warehouse, the data tools and the ML core.

The tracker owns ``coin_metrics``; these are the columns this product knows how
to use. ``REQUIRED_COLUMNS`` must exist for anything to work; every other column
is optional and the features that need it are skipped (with the reason recorded)
when a user's table lacks it.
"""
from __future__ import annotations

KEY_COLUMNS = ("mint", "timestamp")

#: Numeric base columns of ``coin_metrics`` with a short description (shown in docs and the UI).
BASE_COLUMNS: dict[str, str] = {
    "phase_id_at_time": "coin phase when the row was written (see ref_coin_phases)",
    "price_open": "first trade price in the interval, SOL per token",
    "price_high": "highest trade price in the interval, SOL per token",
    "price_low": "lowest trade price in the interval, SOL per token",
    "price_close": "last trade price in the interval, SOL per token",
    "volume_sol": "traded volume in the interval, SOL",
    "market_cap_close": "market cap at price_close, SOL",
    "buy_volume_sol": "buy volume in the interval, SOL",
    "sell_volume_sol": "sell volume in the interval, SOL",
    "num_buys": "number of buy trades in the interval",
    "num_sells": "number of sell trades in the interval",
    "bonding_curve_pct": "bonding-curve progress, 0-100 %",
    "virtual_sol_reserves": "virtual SOL reserves of the bonding curve, SOL",
    "unique_wallets": "distinct wallets that traded in the interval",
    "is_koth": "coin is king of the hill at this time (0/1)",
    # Optional extras this product defines; a tracker may not write them.
    "whale_buy_volume_sol": "buy volume from single trades >= WHALE_TRADE_SOL, SOL (optional)",
    "whale_sell_volume_sol": "sell volume from single trades >= WHALE_TRADE_SOL, SOL (optional)",
}

#: Columns without which no dataset can be built.
REQUIRED_COLUMNS = ("mint", "timestamp")

#: A single trade of at least this many SOL counts as whale activity.
WHALE_TRADE_SOL = 1.0

#: Default ``ref_coin_phases`` rows: (phase_id, name, nominal sampling interval in seconds).
DEFAULT_PHASES: tuple[tuple[int, str, int], ...] = (
    (1, "launch", 5),
    (2, "active", 30),
    (3, "established", 60),
)
