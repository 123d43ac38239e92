"""Engineered pump-detection features, one function for training, testing and live scoring.

Windows are in **minutes**, not rows, because sampling is irregular and
phase-dependent. Window ``w`` of a row of coin m at time t covers m's rows with
timestamp in ``(t - w min, t]``; a young coin gets its window features from the
history it has. The burst features also compare the window with the coin's own
recent past: its *reach* ``(t - R, t]``, R = max(:data:`BASELINE_MINUTES`, w),
and the *baseline* ``(t - R, t - w]`` before the window (La Morgia et al. found
trade-count and rush-order bursts against a moving window the strongest pump
signals). A feature value therefore depends only on rows of the same mint in
``(t - required_history(windows), t]``. Computing it on a truncated history (later rows
removed), on one coin alone or on shuffled rows gives bit-identical values; on
just :func:`required_history` of lookback it gives the same value up to float
rounding, because window sums, means and standard deviations run on pandas'
O(n) rolling kernels, whose running sums then start at a different row. That
rounding is ~1e-15 relative for sums and means (also the compensated sum of
squared returns behind ``volatility_scaled_return_{w}``); the running (Welford) variance
behind ``price_volatility_{w}`` and ``volume_spike_{w}`` keeps about
eps * spike**2 after a large value has left the window, so a tiny std right
after a huge spike can be off by up to ~1e-6 relative (exactly constant
windows still give std 0).

Conventions that keep every value finite for finite inputs (volumes, trade
counts and prices are assumed non-negative):

* a ratio whose denominator is 0 takes a neutral value: pressure 0.5, imbalance
  0, ratio-to-mean 1, z-score 0, change/velocity/range 0, burst 1, share shift 0;
* a burst compares the window's share of the reach's activity with its share of the
  reach's time, so it stays finite when the baseline was silent (a baseline-only
  rate would divide by 0 exactly when a dead coin wakes up) and is 1 while the
  coin's rows in the reach all lie in the window;
* the standard deviations are population ones (ddof=0), so one observation has
  std 0;
* log returns between rows where a price is not positive count as 0;
* aggregates skip NaN; a value is NaN only when the inputs it needs are NaN;
  any remaining +-inf (float overflow) becomes NaN.

Output columns come in a fixed order: the window-independent features of
:data:`FEATURE_GROUPS`, then the per-window ones for each window in the order
given. :func:`engineered_feature_names` returns that order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real
from typing import Callable, Iterable, Sequence

import numpy as np
import pandas as pd

from pump_orchestration.ml.labels import CoinTimeLayout, coin_time_layout, window_aggregate

#: Smoothing added to both sides of a buy/sell log ratio (SOL), so that one side
#: being 0 gives a large but finite value.
RATIO_SMOOTHING_SOL = 0.1

#: Window sizes (minutes) of a training request that does not name any.
DEFAULT_WINDOWS = (5, 10, 15)

#: Length (minutes) of the trailing reach the burst features compare a window with: an hour, the
#: default FEATURE_LOOKBACK_MINUTES, so the default windows need no more history than before.
BASELINE_MINUTES = 60

_NS_PER_MINUTE = 60 * 10**9


def _ratio(num: np.ndarray, den: np.ndarray, neutral: float) -> np.ndarray:
    """``num / den`` with ``neutral`` where ``den == 0``; NaN where an input is NaN."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(den == 0, neutral, num / den)
    out[np.isnan(num) | np.isnan(den)] = np.nan
    return out


def _log_ratio(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smoothed ``log((a + s) / (b + s))`` with s = :data:`RATIO_SMOOTHING_SOL`."""
    return np.log1p(a / RATIO_SMOOTHING_SOL) - np.log1p(b / RATIO_SMOOTHING_SOL)


class _Context:
    """Sorted input columns and per-window row bounds shared by the feature functions."""

    def __init__(self, df: pd.DataFrame, layout: CoinTimeLayout, baseline_minutes: float):
        self._df = df
        self.layout = layout
        self.baseline_minutes = baseline_minutes
        self._columns: dict[str, np.ndarray] = {}
        self._starts: dict[float, np.ndarray] = {}
        self._returns: np.ndarray | None = None
        self.index = np.arange(len(layout))

    def col(self, name: str) -> np.ndarray:
        if name not in self._columns:
            self._columns[name] = self.layout.take(self._df, name)
        return self._columns[name]

    def start(self, w: float) -> np.ndarray:
        """Sorted index of the first row of each row's window ``(t - w, t]``."""
        if w not in self._starts:
            width = pd.Timedelta(minutes=w).value
            self._starts[w] = self.layout.first_after(self.layout.ts - width)
        return self._starts[w]

    def window(self, values: np.ndarray, w: float, how: str) -> np.ndarray:
        return window_aggregate(values, self.start(w), self.index + 1, how)

    def elapsed_minutes(self, w: float) -> np.ndarray:
        """Minutes between the window's first row and the row itself."""
        return (self.layout.ts - self.layout.ts[self.start(w)]) / _NS_PER_MINUTE

    def change_pct(self, name: str, w: float) -> np.ndarray:
        """% change of column ``name`` versus the window's first row (0 when that is 0)."""
        values = self.col(name)
        first = values[self.start(w)]
        return _ratio(values - first, first, 0.0) * 100.0

    def ratio_to_mean(self, values: np.ndarray, w: float) -> np.ndarray:
        return _ratio(values, self.window(values, w, "mean"), 1.0)

    def log_returns(self) -> np.ndarray:
        """Log return of price_close into each sorted row from the row before it (0 where a price is not
        positive, NaN where one is NaN); the first row of a coin gets one from the previous coin, so
        callers only read returns whose both rows lie in one window."""
        if self._returns is None:
            price = self.col("price_close")
            previous = np.empty_like(price)
            previous[1:], previous[:1] = price[:-1], np.nan
            with np.errstate(divide="ignore", invalid="ignore"):
                returns = np.where((price > 0) & (previous > 0), np.log(price / previous), 0.0)
            returns[np.isnan(price) | np.isnan(previous)] = np.nan
            self._returns = returns
        return self._returns

    def reach(self, w: float) -> float:
        """Length (minutes) of the reach ``(t - R, t]`` that the burst features of window ``w`` read."""
        return max(self.baseline_minutes, w)

    def burst(self, values: np.ndarray, w: float) -> np.ndarray:
        """(window sum / reach sum) / (w / minutes the reach covers): 1 = the window's fair share.

        The reach covers from the coin's first row in it to t (at least ``w``), so a young coin's
        baseline is the life it has had, not an hour of assumed silence.
        """
        reach = self.reach(w)
        covered = np.maximum(
            (self.layout.ts - self.layout.ts[self.start(reach)]) / _NS_PER_MINUTE, w)
        return _ratio(self.window(values, w, "sum") * covered, self.window(values, reach, "sum") * w, 1.0)


# --- window-independent features -------------------------------------------------


def _buy_pressure(c: _Context, w: None) -> np.ndarray:
    buy, sell = c.col("buy_volume_sol"), c.col("sell_volume_sol")
    return _ratio(buy, buy + sell, 0.5)


def _buy_sell_ratio(c: _Context, w: None) -> np.ndarray:
    return _log_ratio(c.col("buy_volume_sol"), c.col("sell_volume_sol"))


def _order_imbalance(c: _Context, w: None) -> np.ndarray:
    buy, sell = c.col("buy_volume_sol"), c.col("sell_volume_sol")
    return _ratio(buy - sell, buy + sell, 0.0)


def _trade_count_imbalance(c: _Context, w: None) -> np.ndarray:
    buys, sells = c.col("num_buys"), c.col("num_sells")
    return _ratio(buys - sells, buys + sells, 0.0)


def _whale_buy_sell_ratio(c: _Context, w: None) -> np.ndarray:
    return _log_ratio(c.col("whale_buy_volume_sol"), c.col("whale_sell_volume_sol"))


def _whale_share(c: _Context, w: None) -> np.ndarray:
    whale = c.col("whale_buy_volume_sol") + c.col("whale_sell_volume_sol")
    return _ratio(whale, c.col("volume_sol"), 0.0)


def _avg_trade_size(c: _Context, w: None) -> np.ndarray:
    return _ratio(c.col("volume_sol"), c.col("num_buys") + c.col("num_sells"), 0.0)


# --- per-window features -----------------------------------------------------------


def _price_change(c: _Context, w: float) -> np.ndarray:
    return c.change_pct("price_close", w)


def _price_roc(c: _Context, w: float) -> np.ndarray:
    return _ratio(c.change_pct("price_close", w), c.elapsed_minutes(w), 0.0)


def _price_volatility(c: _Context, w: float) -> np.ndarray:
    # Returns of the window are those into its 2nd..last row, so they never reach
    # back to the previous coin or to rows before the window.
    start = c.start(w)
    std = window_aggregate(c.log_returns(), start + 1, c.index + 1, "std")
    std[start == c.index] = 0.0
    return std


def _price_range(c: _Context, w: float) -> np.ndarray:
    high = c.window(c.col("price_high"), w, "max")
    low = c.window(c.col("price_low"), w, "min")
    return _ratio(high - low, low, 0.0)


def _volume_ratio(c: _Context, w: float) -> np.ndarray:
    return c.ratio_to_mean(c.col("volume_sol"), w)


def _volume_spike(c: _Context, w: float) -> np.ndarray:
    volume = c.col("volume_sol")
    return _ratio(volume - c.window(volume, w, "mean"), c.window(volume, w, "std"), 0.0)


def _window_buy_pressure(c: _Context, w: float) -> np.ndarray:
    buy, sell = c.window(c.col("buy_volume_sol"), w, "sum"), c.window(c.col("sell_volume_sol"), w, "sum")
    return _ratio(buy, buy + sell, 0.5)


def _window_order_imbalance(c: _Context, w: float) -> np.ndarray:
    buy, sell = c.window(c.col("buy_volume_sol"), w, "sum"), c.window(c.col("sell_volume_sol"), w, "sum")
    return _ratio(buy - sell, buy + sell, 0.0)


def _whale_activity_spike(c: _Context, w: float) -> np.ndarray:
    return c.ratio_to_mean(c.col("whale_buy_volume_sol") + c.col("whale_sell_volume_sol"), w)


def _mcap_velocity(c: _Context, w: float) -> np.ndarray:
    return _ratio(c.change_pct("market_cap_close", w), c.elapsed_minutes(w), 0.0)


def _bonding_curve_velocity(c: _Context, w: float) -> np.ndarray:
    progress = c.col("bonding_curve_pct")
    return _ratio(progress - progress[c.start(w)], c.elapsed_minutes(w), 0.0)


def _wallet_ratio(c: _Context, w: float) -> np.ndarray:
    return c.ratio_to_mean(c.col("unique_wallets"), w)


def _buy_count_burst(c: _Context, w: float) -> np.ndarray:
    return c.burst(c.col("num_buys"), w)


def _trade_count_burst(c: _Context, w: float) -> np.ndarray:
    return c.burst(c.col("num_buys") + c.col("num_sells"), w)


def _volume_burst(c: _Context, w: float) -> np.ndarray:
    return c.burst(c.col("volume_sol"), w)


def _wallet_burst(c: _Context, w: float) -> np.ndarray:
    return c.burst(c.col("unique_wallets"), w)


def _buy_share_shift(c: _Context, w: float) -> np.ndarray:
    buys, trades = c.col("num_buys"), c.col("num_buys") + c.col("num_sells")
    reach = c.reach(w)
    in_window = c.window(trades, w, "sum")
    shift = (_ratio(c.window(buys, w, "sum"), in_window, 0.0)
             - _ratio(c.window(buys, reach, "sum"), c.window(trades, reach, "sum"), 0.0))
    shift[in_window == 0] = 0.0  # a reach with trades but a silent window: no share to compare
    return shift


def _volatility_scaled_return(c: _Context, w: float) -> np.ndarray:
    """Log return since the baseline's last row over the baseline's realised volatility for that long.

    Realised variance per minute (sum of squared row returns / time they span) handles irregular,
    phase-dependent sampling, where a per-row std would change with the row interval.
    """
    ts, price = c.layout.ts, c.col("price_close")
    first, window_start = c.start(c.reach(w)), c.start(w)
    last = np.maximum(window_start - 1, first)  # the baseline's last row (valid where the baseline has rows)
    has_baseline = window_start - first >= 2  # two rows: at least one return inside the baseline
    with np.errstate(divide="ignore", invalid="ignore"):
        move = np.where((price > 0) & (price[last] > 0), np.log(price / price[last]), 0.0)
    move[np.isnan(price) | np.isnan(price[last])] = np.nan
    returns = c.log_returns()
    squares = window_aggregate(returns * returns, np.minimum(first + 1, window_start), window_start, "sum")
    variance_per_minute = _ratio(squares, (ts[last] - ts[first]) / _NS_PER_MINUTE, 0.0)
    scale = np.sqrt(variance_per_minute * (ts - ts[last]) / _NS_PER_MINUTE)
    z = _ratio(move, scale, 0.0)
    z[~has_baseline] = 0.0
    return z


@dataclass(frozen=True)
class _Feature:
    pattern: str
    columns: tuple[str, ...]
    description: str
    compute: Callable[[_Context, float | None], np.ndarray]

    @property
    def per_window(self) -> bool:
        return "{w}" in self.pattern


_BUY_SELL = ("buy_volume_sol", "sell_volume_sol")
_WHALE = ("whale_buy_volume_sol", "whale_sell_volume_sol")
_TRADES = ("num_buys", "num_sells")

_FEATURES: tuple[_Feature, ...] = (
    _Feature("buy_pressure", _BUY_SELL,
             "buy / (buy + sell) volume; 0.5 without volume", _buy_pressure),
    _Feature("buy_sell_ratio", _BUY_SELL,
             "log((buy + 0.1) / (sell + 0.1)), volumes in SOL", _buy_sell_ratio),
    _Feature("order_imbalance", _BUY_SELL,
             "(buy - sell) / (buy + sell) volume; 0 without volume", _order_imbalance),
    _Feature("trade_count_imbalance", _TRADES,
             "(num_buys - num_sells) / (num_buys + num_sells); 0 without trades", _trade_count_imbalance),
    _Feature("whale_buy_sell_ratio", _WHALE,
             "log((whale buy + 0.1) / (whale sell + 0.1)), volumes in SOL", _whale_buy_sell_ratio),
    _Feature("whale_share", (*_WHALE, "volume_sol"),
             "(whale buy + whale sell volume) / volume_sol; 0 without volume", _whale_share),
    _Feature("avg_trade_size", ("volume_sol", *_TRADES),
             "volume_sol / (num_buys + num_sells); 0 without trades", _avg_trade_size),
    _Feature("price_change_{w}", ("price_close",),
             "% change of price_close vs the window's first row; 0 when that price is 0", _price_change),
    _Feature("price_roc_{w}", ("price_close",),
             "price_change_{w} per minute from the window's first row; 0 when no time elapsed", _price_roc),
    _Feature("price_volatility_{w}", ("price_close",),
             "population std of row-to-row log returns of price_close in the window; 0 below 2 rows",
             _price_volatility),
    _Feature("price_range_{w}", ("price_high", "price_low"),
             "(max price_high - min price_low) / min price_low in the window (a fraction); 0 when min is 0",
             _price_range),
    _Feature("volume_ratio_{w}", ("volume_sol",),
             "volume_sol / its window mean; 1 when the mean is 0", _volume_ratio),
    _Feature("volume_spike_{w}", ("volume_sol",),
             "z-score of volume_sol in the window (population std); 0 when the std is 0", _volume_spike),
    _Feature("buy_pressure_{w}", _BUY_SELL,
             "window sums: buy / (buy + sell) volume; 0.5 without volume", _window_buy_pressure),
    _Feature("order_imbalance_{w}", _BUY_SELL,
             "window sums: (buy - sell) / (buy + sell) volume; 0 without volume", _window_order_imbalance),
    _Feature("whale_activity_spike_{w}", _WHALE,
             "(whale buy + sell volume) / its window mean; 1 when the mean is 0", _whale_activity_spike),
    _Feature("mcap_velocity_{w}", ("market_cap_close",),
             "% change of market_cap_close vs the window's first row, per minute elapsed; 0 at 0 min",
             _mcap_velocity),
    _Feature("bonding_curve_velocity_{w}", ("bonding_curve_pct",),
             "bonding_curve_pct points gained since the window's first row, per minute; 0 at 0 min",
             _bonding_curve_velocity),
    _Feature("wallet_ratio_{w}", ("unique_wallets",),
             "unique_wallets / its window mean (wallet growth); 1 when the mean is 0", _wallet_ratio),
    _Feature("buy_count_burst_{w}", ("num_buys",),
             f"buys per minute in the window / in the reach (t - max({BASELINE_MINUTES}, w) min, t]; "
             "1 without buys",
             _buy_count_burst),
    _Feature("trade_count_burst_{w}", _TRADES,
             "trades (buys + sells) per minute in the window / in the reach; 1 without trades", _trade_count_burst),
    _Feature("volume_burst_{w}", ("volume_sol",),
             "volume_sol per minute in the window / in the reach; 1 without volume", _volume_burst),
    _Feature("wallet_burst_{w}", ("unique_wallets",),
             "unique_wallets (per row, summed) per minute in the window / in the reach: new-wallet inflow; "
             "1 without wallets", _wallet_burst),
    _Feature("buy_share_shift_{w}", _TRADES,
             "buys / trades in the window minus the same in the reach; 0 without trades in the window",
             _buy_share_shift),
    _Feature("volatility_scaled_return_{w}", ("price_close",),
             "log return from the baseline's last row to t / (baseline realised volatility per minute x "
             "sqrt(minutes)); 0 below 2 baseline rows or at 0 volatility", _volatility_scaled_return),
)

#: Feature name pattern (``{w}`` = window in minutes) -> base columns it needs, in output order.
FEATURE_GROUPS: dict[str, tuple[str, ...]] = {f.pattern: f.columns for f in _FEATURES}
#: Feature name pattern -> one-line definition (for docs and the UI).
FEATURE_DESCRIPTIONS: dict[str, str] = {f.pattern: f.description for f in _FEATURES}


def _is_minutes(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, Real) and math.isfinite(value) and value > 0


def _check_windows(windows: Iterable[float]) -> tuple[float, ...]:
    windows = tuple(windows)
    if not windows:
        raise ValueError("windows must name at least one window (minutes)")
    for w in windows:
        if not _is_minutes(w):
            raise ValueError(f"windows must be positive numbers of minutes, got {w!r}")
    if len(set(windows)) != len(windows):
        raise ValueError(f"windows must not repeat, got {list(windows)}")
    return windows


def _name(pattern: str, w: float | None) -> str:
    return pattern if w is None else pattern.format(w=f"{w:g}")


def _planned(windows: Sequence[float]) -> list[tuple[str, _Feature, float | None]]:
    """(name, feature, window) for every feature, in output order."""
    plan = [(f.pattern, f, None) for f in _FEATURES if not f.per_window]
    for w in windows:
        plan += [(_name(f.pattern, w), f, w) for f in _FEATURES if f.per_window]
    return plan


def _check_baseline(baseline_minutes: float) -> float:
    if not _is_minutes(baseline_minutes):
        raise ValueError(f"baseline_minutes must be a positive number of minutes, got {baseline_minutes!r}")
    return baseline_minutes


def required_history(windows: Iterable[float] = DEFAULT_WINDOWS,
                     baseline_minutes: float = BASELINE_MINUTES) -> pd.Timedelta:
    """History a row needs for exact features: the largest window or the burst baseline, whichever is longer."""
    return pd.Timedelta(minutes=max(*_check_windows(windows), _check_baseline(baseline_minutes)))


def engineered_feature_names(
    windows: Iterable[float] = DEFAULT_WINDOWS, available_columns: Iterable[str] | None = None
) -> list[str]:
    """Names of the engineered features in output order; with ``available_columns``,
    only those whose base columns (:data:`FEATURE_GROUPS`) are all available."""
    plan = _planned(_check_windows(windows))
    if available_columns is None:
        return [name for name, _, _ in plan]
    available = set(available_columns)
    return [name for name, f, _ in plan if available.issuperset(f.columns)]


def feature_pattern(name: str) -> str | None:
    """The :data:`FEATURE_GROUPS` pattern an engineered feature name comes from (``volume_burst_5`` ->
    ``volume_burst_{w}``), None for any other column; e.g. to sum importances over windows."""
    for pattern in FEATURE_GROUPS:
        prefix, braces, suffix = pattern.partition("{w}")
        if name == pattern and not braces:
            return pattern
        if braces and name.startswith(prefix) and name.endswith(suffix):
            try:
                float(name[len(prefix):len(name) - len(suffix)])
            except ValueError:
                continue
            return pattern
    return None


def engineer_features(df: pd.DataFrame, windows: Iterable[float] = DEFAULT_WINDOWS,
                      out: np.ndarray | None = None,
                      baseline_minutes: float = BASELINE_MINUTES,
                      rows: np.ndarray | None = None) -> pd.DataFrame:
    """Engineered features of every row of ``df``, aligned to ``df.index``.

    ``df`` needs ``mint`` and a timezone-aware ``timestamp`` (ValueError
    otherwise, also for duplicate (mint, timestamp) rows) plus any of the base
    columns in :data:`FEATURE_GROUPS`; rows may come in any order. Only the
    engineered columns are returned, in :func:`engineered_feature_names` order.
    Features whose base columns are missing are left out and listed in
    ``result.attrs["skipped_features"]`` as ``{name: reason}``.

    ``out``: a float64 array of shape (features kept, ``len(df)``) to compute into, e.g. rows of a
    larger model matrix; the result's columns are then views of it, so the values exist once.
    ``baseline_minutes``: the burst features' reach (stored models and live scoring use the default;
    the feature names do not carry it).
    ``rows``: positions (into ``df``) of the only rows to return, in that order; every row still serves as
    history, so their values equal those of the full result, but no (features x all rows) block exists.
    """
    windows = _check_windows(windows)
    context = _Context(df, coin_time_layout(df), _check_baseline(baseline_minutes))
    kept: list[tuple[str, _Feature, float | None]] = []
    skipped: dict[str, str] = {}
    for name, feature, w in _planned(windows):
        missing = [c for c in feature.columns if c not in df.columns]
        if missing:
            noun = "column" if len(missing) == 1 else "columns"
            skipped[name] = f"needs {noun} {', '.join(repr(c) for c in missing)}, not in the data"
        else:
            kept.append((name, feature, w))
    order = context.layout.order
    sorted_position = None
    if rows is not None:
        sorted_position = np.empty_like(order)
        sorted_position[order] = np.arange(len(order))
        sorted_position = sorted_position[rows]
    # One (feature, row) block, transposed into the frame without a copy.
    shape = (len(kept), len(df) if rows is None else len(rows))
    if out is not None and (out.shape != shape or out.dtype != np.float64):
        raise ValueError(f"out: expected a float64 array of shape {shape}, got {out.dtype} {out.shape}")
    block = np.empty(shape) if out is None else out
    for row, (_, feature, w) in enumerate(kept):
        values = feature.compute(context, w)
        values[np.isinf(values)] = np.nan
        if sorted_position is None:
            block[row, order] = values
        else:
            np.take(values, sorted_position, out=block[row])
    index = df.index if rows is None else df.index[rows]
    result = pd.DataFrame(block.T, index=index, columns=[name for name, _, _ in kept], copy=False)
    result.attrs["skipped_features"] = skipped
    return result
