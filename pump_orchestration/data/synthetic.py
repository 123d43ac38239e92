"""Synthetic ``coin_metrics`` with planted pumps, for tests, demos and benchmarks.

Each coin is simulated on a 5-second base grid (the finest tracker interval):
trade activity that fades with age, a reserve path that follows pump.fun's
constant-product bonding curve, and (for a share of coins) one planted pump.
The base grid is then sampled the way the tracker writes rows: every 5 s in
phase 1, every 30 s in phase 2, every 60 s in phase 3 (with timestamp jitter
and a few missed writes). A row covers the interval from its timestamp to the
coin's next row, so its timestamp is the interval start, as in
:func:`pump_orchestration.data.trades_import.trades_to_coin_metrics`.

Bonding-curve model (pump.fun): virtual reserves start at 30 SOL and
1,073,000,000 tokens with ``sol * tokens`` constant; 793,100,000 tokens are
sold on the curve. Hence ``price = sol**2 / k`` (2.8e-8 SOL per token at
launch), ``market_cap_close = price_close * 1e9`` and the progress is a function
of the virtual SOL reserves, which move by exactly the net SOL bought.

Phases are assigned by coin age (:func:`phase_for_age`): the rows of a coin
therefore follow a grid that is known before its prices are simulated, which
lets a pump start exactly at a row boundary.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping

import numpy as np
import pandas as pd

from pump_orchestration.vocabulary import BASE_COLUMNS, DEFAULT_PHASES, KEY_COLUMNS, WHALE_TRADE_SOL, to_utc

INITIAL_VIRTUAL_SOL = 30.0
INITIAL_VIRTUAL_TOKENS = 1_073_000_000.0
CURVE_TOKENS = 793_100_000.0
TOTAL_SUPPLY = 1_000_000_000.0
_K = INITIAL_VIRTUAL_SOL * INITIAL_VIRTUAL_TOKENS
LAUNCH_PRICE = INITIAL_VIRTUAL_SOL / INITIAL_VIRTUAL_TOKENS

#: A coin enters each phase at this age (seconds since its first row).
PHASE_MIN_AGE_SECONDS: dict[int, float] = {1: 0.0, 2: 600.0, 3: 3600.0}

_INT_COLUMNS = {"phase_id_at_time", "num_buys", "num_sells", "unique_wallets"}
#: Column order and dtypes of a ``coin_metrics`` frame written by the data tools.
METRICS_DTYPES: dict[str, str] = dict(zip(KEY_COLUMNS, ("object", "datetime64[ns, UTC]"))) | {
    col: "bool" if col == "is_koth" else "int64" if col in _INT_COLUMNS else "float64" for col in BASE_COLUMNS
}

_DEFAULT_INTERVALS = {pid: float(sec) for pid, _, sec in DEFAULT_PHASES}
_STEP_S = 5  # base simulation step: the phase-1 interval
_STEP_MS = _STEP_S * 1000
_MISSED_WRITE_P = 0.02  # share of rows the tracker fails to write
_BASE_CAP = 0.6  # soft cap of the baseline log-reserve level (keeps progress < 100 %)
_BASE58 = np.array(list("123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"))


def phase_for_age(age_seconds: np.ndarray | float) -> np.ndarray:
    """Phase id (1, 2, 3) of a coin at the given age(s) in seconds, per :data:`PHASE_MIN_AGE_SECONDS`."""
    age = np.asarray(age_seconds, dtype=float)
    phase = np.full(age.shape, min(PHASE_MIN_AGE_SECONDS), dtype=np.int64)
    for pid, min_age in PHASE_MIN_AGE_SECONDS.items():
        phase[age >= min_age] = pid
    return phase


def phase_grid(duration_seconds: float, phase_intervals: Mapping[int, float]) -> np.ndarray:
    """Row start offsets (seconds after a coin's first row) covering ages 0..duration_seconds.

    Within each phase rows are ``phase_intervals[phase]`` seconds apart, starting at
    the age the phase begins.
    """
    missing = sorted(set(PHASE_MIN_AGE_SECONDS) - set(phase_intervals))
    if missing:
        raise ValueError(f"phase_intervals lacks phase(s) {missing}")
    if any(v <= 0 for v in phase_intervals.values()):
        raise ValueError("phase intervals must be positive")
    bounds = [*PHASE_MIN_AGE_SECONDS.items()]
    parts = []
    for j, (pid, lo) in enumerate(bounds):
        hi = bounds[j + 1][1] if j + 1 < len(bounds) else duration_seconds + 1.0
        if lo > duration_seconds:
            break
        parts.append(np.arange(lo, hi, float(phase_intervals[pid])))
    offsets = np.concatenate(parts)
    return offsets[offsets <= duration_seconds]


def bonding_curve_pct_from_sol(virtual_sol_reserves: np.ndarray) -> np.ndarray:
    """Bonding-curve progress (0-100 %) implied by the virtual SOL reserves (SOL)."""
    real_tokens = _K / np.asarray(virtual_sol_reserves, dtype=float) - (INITIAL_VIRTUAL_TOKENS - CURVE_TOKENS)
    return np.clip(100.0 * (1.0 - real_tokens / CURVE_TOKENS), 0.0, 100.0)


def metrics_frame(columns: Mapping[str, object]) -> pd.DataFrame:
    """Build a ``coin_metrics`` frame with the column order and dtypes of :data:`METRICS_DTYPES`."""
    frame = pd.DataFrame({col: columns[col] for col in METRICS_DTYPES})
    return frame.astype(METRICS_DTYPES)


def generate_coin_metrics(
    n_coins: int = 300,
    start: str | pd.Timestamp = "2025-09-01T00:00:00Z",
    hours: float = 24.0,
    seed: int = 0,
    pump_share: float = 0.25,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Simulate ``coin_metrics`` rows for ``n_coins`` coins launched during ``hours`` hours from ``start``.

    Returns ``(metrics, pumps)``. ``metrics`` has the columns of :data:`METRICS_DTYPES`,
    unique (mint, timestamp), sorted by (timestamp, mint). ``pumps`` has one row per
    planted pump: mint, pump_start (timestamp of the row at which the price rise
    starts; its ``price_open`` is the pre-pump price), peak_time (row with the highest
    ``price_close`` of the pump) and peak_gain_pct (``100 * (close at peak / open at
    pump_start - 1)``, 30-300 % by design). ``round(pump_share * n_coins)`` coins get a
    pump. Same arguments, same output.
    """
    plan = _plan_coins(n_coins, start, hours, seed, pump_share)
    coins = [_simulate_coin(plan, i, seed) for i in range(n_coins)]
    koth = _king_of_the_hill([_minute_caps(c) for c in coins])
    metrics = _to_frame(plan, coins, koth)
    planted = [(plan["mint"][c["coin"]], *c["pump"]) for c in coins if c["pump"] is not None]
    mints, start_ms, peak_ms, gains = (list(col) for col in zip(*planted)) if planted else ([], [], [], [])
    pumps = pd.DataFrame(
        {
            "mint": pd.Series(mints, dtype=object),
            "pump_start": pd.to_datetime(np.asarray(start_ms, dtype=np.int64), unit="ms", utc=True),
            "peak_time": pd.to_datetime(np.asarray(peak_ms, dtype=np.int64), unit="ms", utc=True),
            "peak_gain_pct": np.asarray(gains, dtype=float),
        }
    )
    return metrics, pumps.sort_values(["pump_start", "mint"], ignore_index=True)


def iter_coin_metrics(
    n_coins: int = 300,
    start: str | pd.Timestamp = "2025-09-01T00:00:00Z",
    hours: float = 24.0,
    seed: int = 0,
    pump_share: float = 0.25,
    batch_coins: int = 200,
) -> Iterator[pd.DataFrame]:
    """Yield the metrics of :func:`generate_coin_metrics` in batches of ``batch_coins`` coins.

    Each batch is sorted by (timestamp, mint); the union of all batches sorted the
    same way equals ``generate_coin_metrics(...)[0]`` for the same arguments. Memory
    stays proportional to one batch plus a per-minute market-cap summary: king of the
    hill needs every coin, so all coins are simulated once for that summary before the
    batches are simulated again and yielded (about twice the CPU of the one-shot call).
    """
    if batch_coins < 1:
        raise ValueError("batch_coins must be >= 1")
    # Validate and plan now, not at the first next().
    return _iter_batches(_plan_coins(n_coins, start, hours, seed, pump_share), seed, batch_coins)


def _iter_batches(plan: dict[str, np.ndarray], seed: int, batch_coins: int) -> Iterator[pd.DataFrame]:
    """Generator behind :func:`iter_coin_metrics`."""
    n_coins = plan["mint"].size
    koth = _king_of_the_hill([_minute_caps(_simulate_coin(plan, i, seed)) for i in range(n_coins)])
    for lo in range(0, n_coins, batch_coins):
        coins = [_simulate_coin(plan, i, seed) for i in range(lo, min(lo + batch_coins, n_coins))]
        yield _to_frame(plan, coins, koth)


def _plan_coins(n_coins: int, start, hours: float, seed: int, pump_share: float) -> dict[str, np.ndarray]:
    """Coin-level draws (mint, launch time, lifetime, pump schedule), all from one seeded stream."""
    if n_coins < 1:
        raise ValueError("n_coins must be >= 1")
    if hours < 1.0:
        raise ValueError("hours must be >= 1 so that planted pumps fit in the period")
    if not 0.0 <= pump_share <= 1.0:
        raise ValueError("pump_share must be within 0..1")
    rng = np.random.default_rng(seed)
    period = hours * 3600.0
    mint = np.char.add(_BASE58[rng.integers(0, 58, (n_coins, 40))].view("<U40").ravel(), "pump").astype(object)
    # Heavy-tailed lifetimes: median 12 min, ~10 % beyond an hour.
    lifetime = np.clip(rng.lognormal(np.log(720.0), 1.2, n_coins), 60.0, 12 * 3600.0)
    arrival = rng.uniform(0.0, period - 60.0, n_coins)
    is_pump = np.zeros(n_coins, dtype=bool)
    is_pump[rng.choice(n_coins, int(round(pump_share * n_coins)), replace=False)] = True
    buildup = rng.uniform(120.0, 360.0, n_coins)
    rise = rng.uniform(120.0, 600.0, n_coins)
    dump = rng.uniform(60.0, 300.0, n_coins)
    tail = rng.uniform(600.0, 1800.0, n_coins)
    gain = np.exp(rng.uniform(np.log(40.0), np.log(250.0), n_coins))
    pump_age = np.minimum(buildup + 60.0 + rng.lognormal(np.log(600.0), 1.0, n_coins), period - rise - dump - tail)
    # Pump coins live long enough for build-up, pump, dump and an aftermath inside the period.
    pump_life = np.minimum(np.maximum(lifetime, pump_age + rise + dump + tail), period)
    lifetime = np.where(is_pump, pump_life, lifetime)
    arrival = np.where(is_pump, np.minimum(arrival, period - pump_life), arrival)
    lifetime = np.minimum(lifetime, period - arrival)
    start_ts = to_utc(start, "start")
    start_ms = start_ts.value // 1_000_000
    return {
        "mint": mint,
        "arrival_ms": start_ms + np.round(arrival * 1000.0).astype(np.int64),
        "lifetime": lifetime,
        "is_pump": is_pump,
        "buildup": buildup,
        "rise": rise,
        "dump": dump,
        "gain": gain,
        "pump_age": pump_age,
    }


def _ramp(steps: np.ndarray, a: float, b: float) -> np.ndarray:
    """0 before step a, rising linearly to 1 at step b, 1 after."""
    return np.clip((steps - a) / max(b - a, 1.0), 0.0, 1.0)


def _simulate_coin(plan: dict[str, np.ndarray], i: int, seed: int) -> dict:
    """Simulate coin ``i`` (its own seeded stream, so batches reproduce it exactly); returns row arrays."""
    rng = np.random.default_rng([seed, i])
    n = max(1, int(plan["lifetime"][i] // _STEP_S))
    steps = np.arange(n, dtype=float)
    age = steps * _STEP_S

    starts = (phase_grid(age[-1], _DEFAULT_INTERVALS) // _STEP_S).astype(np.int64)
    keep = rng.random(starts.size) >= _MISSED_WRITE_P
    keep[0] = True
    starts = starts[keep]

    # Activity profile; windows of unusual activity raise these multipliers.
    boost = np.ones(n)  # trade-rate multiplier
    size_boost = np.ones(n)  # trade-size multiplier
    whale_scale = np.full(n, 4.0)  # SOL scale of the whale-trade probability (smaller: whales likelier)
    unique_p = np.full(n, 0.55)  # chance that an extra trade comes from a new wallet
    calm = np.ones(n)  # baseline price-noise multiplier
    window = np.zeros(n, dtype=bool)
    pump_u = np.zeros(n)
    quiet_spikes = None
    pump_steps = None

    if plan["is_pump"][i]:
        s_rise = int(starts[np.searchsorted(starts, plan["pump_age"][i] / _STEP_S)])
        s_peak = int(starts[np.searchsorted(starts, s_rise + plan["rise"][i] / _STEP_S)]) - 1
        s_build = s_rise - int(plan["buildup"][i] / _STEP_S)
        s_end = min(s_peak + int(plan["dump"][i] / _STEP_S), n - 1)
        build = (steps >= s_build) & (steps < s_rise)
        rising = (steps >= s_rise) & (steps <= s_peak)
        dumping = (steps > s_peak) & (steps <= s_end)
        f_build = _ramp(steps, s_build, s_rise)
        boost = np.where(build, 1.0 + rng.uniform(2.0, 4.0) * f_build, boost)
        boost = np.where(rising, rng.uniform(4.0, 8.0), boost)
        boost = np.where(dumping, rng.uniform(3.0, 6.0), boost)
        size_boost = np.where(build, 1.0 + 1.5 * f_build, np.where(rising | dumping, 2.5, 1.0))
        window = build | rising | dumping
        whale_scale[window] = 0.7
        unique_p[window] = 0.85
        calm[window] = 0.3
        # Log-reserve component: slight build-up drift, rise of the target gain, fast dump, slow fade.
        g_build = 0.5 * np.log1p(rng.uniform(0.02, 0.08))
        top = g_build + 0.5 * np.log1p(plan["gain"][i] / 100.0)
        final = top * rng.uniform(0.0, 0.3)
        up = g_build * f_build + (top - g_build) * _ramp(steps, s_rise - 1, s_peak) ** 1.3
        down = top - (top - final) * (1.0 - (1.0 - _ramp(steps, s_peak, s_end)) ** 2)
        fade = final * np.exp(-(steps - s_end) * _STEP_S / 1200.0)
        pump_u = np.where(steps <= s_peak, up, np.where(steps <= s_end, down, fade))
        quiet_spikes = (s_build - 120, s_end + 120)
        pump_steps = (s_rise, s_end)
    elif n > 150 and rng.random() < 0.35:
        # Decoy: a burst of buying, whales and wallets without a price pump.
        a = int(rng.integers(24, n - 100))
        b = a + int(rng.integers(24, 72))
        decoy = (steps >= a) & (steps < b)
        boost[decoy] = rng.uniform(2.0, 5.0)
        size_boost[decoy] = 2.0
        whale_scale[decoy] = 0.7
        unique_p[decoy] = 0.85
        window = decoy

    # Trades per step: intensity fading with age; windows always trade.
    rate = rng.lognormal(np.log(0.5), 0.6) * (
        np.exp(-age / rng.lognormal(np.log(600.0), 0.8)) + rng.uniform(0.01, 0.08)
    )
    rate = np.where(window, np.maximum(rate, 0.4) * boost, rate)
    n_trades = rng.poisson(rate * _STEP_S)
    n_trades[0] = max(n_trades[0], 1)
    n_trades[window] = np.maximum(n_trades[window], 1)
    active = n_trades > 0

    # Baseline log of virtual SOL reserves over 30 SOL: quick launch buying that
    # fades, an hourly drift, noise on traded steps; reflected at 0 (reserves never
    # fall below 30 SOL) and softly capped.
    launch = rng.uniform(0.0, 0.08) * (1.0 - np.exp(-age / rng.uniform(3.0, 15.0)))
    trend = launch * np.exp(-age / rng.lognormal(np.log(900.0), 0.7)) + rng.normal(0.0, 0.08) * age / 3600.0
    noise = np.cumsum(rng.normal(0.0, rng.uniform(0.003, 0.008), n) * active * calm)
    level = trend + noise
    level = level - np.minimum(np.minimum.accumulate(level), 0.0)
    u = _BASE_CAP * np.tanh(level / _BASE_CAP) + pump_u

    # Small spikes (< 20 %): the largest of overlapping spikes counts, so they never add up.
    n_spikes = rng.poisson(n * _STEP_S / 1800.0)
    if n_spikes:
        centre = rng.uniform(0, n, n_spikes)
        if quiet_spikes is not None:
            centre = centre[(centre < quiet_spikes[0]) | (centre > quiet_spikes[1])]
        height = 0.5 * np.log1p(rng.uniform(0.05, 0.18, centre.size))
        width_up = rng.uniform(6, 30, centre.size)
        width_down = rng.uniform(12, 80, centre.size)
        rel = steps[None, :] - centre[:, None]
        shape = np.where(rel <= 0, np.clip(1.0 + rel / width_up[:, None], 0.0, 1.0), np.exp(-rel / width_down[:, None]))
        if centre.size:
            u = u + (height[:, None] * shape).max(axis=0)

    # The price only moves when someone trades.
    u = u[np.maximum.accumulate(np.where(active, np.arange(n), 0))]
    sol = INITIAL_VIRTUAL_SOL * np.exp(u)
    price = sol**2 / _K
    prev_sol = np.concatenate(([INITIAL_VIRTUAL_SOL], sol[:-1]))
    prev_price = prev_sol**2 / _K

    # Volumes: the net SOL bought equals the reserve change; churn (matched buys and
    # sells) comes on top. Whale trades make up part of sides with >= WHALE_TRADE_SOL.
    net = sol - prev_sol
    size = rng.lognormal(np.log(0.25), 0.5) * rng.lognormal(0.0, 0.4, n) * size_boost
    churn = np.maximum(n_trades * size - np.abs(net), 0.0) / 2.0 * active
    buy = np.maximum(net, 0.0) + churn
    sell = np.maximum(-net, 0.0) + churn
    whale_buy = _whale_volume(rng, buy, whale_scale)
    whale_sell = _whale_volume(rng, sell, whale_scale)
    num_buys = np.where(buy > 0, 1 + (whale_buy > 0) + rng.poisson(buy / size), 0)
    num_sells = np.where(sell > 0, 1 + (whale_sell > 0) + rng.poisson(sell / size), 0)
    wick = rng.exponential(0.003, (2, n)) * active * np.sqrt(boost)
    high = np.maximum(price, prev_price) * (1.0 + wick[0])
    low = np.maximum(np.minimum(price, prev_price) * (1.0 - wick[1]), LAUNCH_PRICE)

    # Rows: each aggregates the base steps from its start to the next row's start.
    ends = np.append(starts[1:], n) - 1
    n_rows = starts.size
    trades_row = np.add.reduceat(num_buys + num_sells, starts)
    unique_row = np.add.reduceat(unique_p, starts) / (ends - starts + 1)
    unique_wallets = np.where(trades_row > 0, 1 + rng.binomial(np.maximum(trades_row - 1, 0), unique_row), 0)
    rows = {
        "phase_id_at_time": phase_for_age(starts * float(_STEP_S)),
        "price_open": prev_price[starts],
        "price_high": np.maximum.reduceat(high, starts),
        "price_low": np.minimum.reduceat(low, starts),
        "price_close": price[ends],
        "volume_sol": np.add.reduceat(buy + sell, starts),
        "market_cap_close": price[ends] * TOTAL_SUPPLY,
        "buy_volume_sol": np.add.reduceat(buy, starts),
        "sell_volume_sol": np.add.reduceat(sell, starts),
        "num_buys": np.add.reduceat(num_buys, starts),
        "num_sells": np.add.reduceat(num_sells, starts),
        "bonding_curve_pct": bonding_curve_pct_from_sol(sol[ends]),
        "virtual_sol_reserves": sol[ends],
        "unique_wallets": unique_wallets,
        "whale_buy_volume_sol": np.add.reduceat(whale_buy, starts),
        "whale_sell_volume_sol": np.add.reduceat(whale_sell, starts),
    }
    ts_ms = plan["arrival_ms"][i] + starts * _STEP_MS + rng.integers(0, 2000, n_rows)

    pump = None
    if pump_steps is not None:
        r0 = int(np.searchsorted(starts, pump_steps[0]))
        r1 = int(np.searchsorted(starts, pump_steps[1], side="right"))
        peak = r0 + int(np.argmax(rows["price_close"][r0:r1]))
        gain = 100.0 * (rows["price_close"][peak] / rows["price_open"][r0] - 1.0)
        pump = (int(ts_ms[r0]), int(ts_ms[peak]), gain)
    return {"coin": i, "ts_ms": ts_ms, "rows": rows, "pump": pump}


def _whale_volume(rng: np.random.Generator, volume: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """Part of each step's one-sided volume that came from trades >= WHALE_TRADE_SOL."""
    has_whale = (volume >= WHALE_TRADE_SOL) & (rng.random(volume.size) < 1.0 - np.exp(-volume / scale))
    share = rng.beta(2.0, 2.0, volume.size)
    return np.where(has_whale, np.clip(share * volume, WHALE_TRADE_SOL, volume), 0.0)


def _minute_caps(coin: dict) -> tuple[int, np.ndarray, np.ndarray]:
    """(coin, minutes alive, market cap at the end of each minute) for king-of-the-hill."""
    ts = coin["ts_ms"]
    minutes = np.arange(ts[0] // 60_000, ts[-1] // 60_000 + 1)
    last_row = np.searchsorted(ts, (minutes + 1) * 60_000, side="left") - 1
    return coin["coin"], minutes, coin["rows"]["market_cap_close"][last_row]


def _king_of_the_hill(summaries: list[tuple[int, np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Per minute, the coin with the highest market cap among live coins (ties: lowest coin index)."""
    minutes = np.concatenate([m for _, m, _ in summaries])
    caps = np.concatenate([c for _, _, c in summaries])
    coins = np.concatenate([np.full(m.size, i) for i, m, _ in summaries])
    order = np.lexsort((coins, -caps, minutes))
    minutes, coins = minutes[order], coins[order]
    first = np.concatenate(([True], minutes[1:] != minutes[:-1]))
    return minutes[first], coins[first]


def _to_frame(plan: dict[str, np.ndarray], coins: list[dict], koth: tuple[np.ndarray, np.ndarray]) -> pd.DataFrame:
    """Concatenate simulated coins into a sorted metrics frame with king-of-the-hill flags."""
    ts_ms = np.concatenate([c["ts_ms"] for c in coins])
    coin = np.concatenate([np.full(c["ts_ms"].size, c["coin"]) for c in coins])
    koth_minutes, koth_coins = koth
    is_koth = koth_coins[np.searchsorted(koth_minutes, ts_ms // 60_000)] == coin
    columns = {col: np.concatenate([c["rows"][col] for c in coins]) for col in coins[0]["rows"]}
    frame = metrics_frame(
        {
            "mint": plan["mint"][coin],
            "timestamp": pd.to_datetime(ts_ms, unit="ms", utc=True),
            "is_koth": is_koth,
            **columns,
        }
    )
    return frame.sort_values(["timestamp", "mint"], ignore_index=True)
