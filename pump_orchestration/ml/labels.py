"""Training labels for ``coin_metrics`` rows, computed per coin.

Three kinds of target, as a training request chooses them:

* a *threshold* label, ``target_var <operator> value`` on the row itself
  (:func:`threshold_labels`);
* a *time-based* label: did ``target_var`` of the same coin rise (or fall) by at
  least ``min_percent_change`` % within ``future_minutes``
  (:func:`time_based_change`, :func:`time_based_labels`);
* a *known-event* label: the row lies inside a known pump event of its coin, such as a
  Telegram pump signal (:func:`known_event_labels`).

A time-based label is only defined when the coin's own data covers the whole
horizon, i.e. the coin has a row at or after ``t + future_minutes``; other rows
get NaN and must be excluded from training, never treated as 0. Coins never mix:
every search runs inside one coin's rows sorted by time.

This module also holds the per-coin time-index primitives
(:class:`CoinTimeLayout`, :func:`window_aggregate`) that
:mod:`pump_orchestration.ml.features` builds its rolling windows on.
"""
from __future__ import annotations

import math
import operator as op
from dataclasses import dataclass
from numbers import Real

import numpy as np
import pandas as pd
from pandas.api.indexers import BaseIndexer

from pump_orchestration.vocabulary import DIRECTIONS, KEY_COLUMNS, LABEL_MODES, OPERATORS

_COMPARE = {">": op.gt, "<": op.lt, ">=": op.ge, "<=": op.le, "=": op.eq}


def _check_choice(name: str, value: object, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"unknown {name} {value!r}; allowed values: {', '.join(allowed)}")


def require_columns(df: pd.DataFrame, columns: tuple[str, ...] | list[str]) -> None:
    """Raise ValueError naming every column of ``columns`` that ``df`` lacks."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        names = ", ".join(repr(c) for c in missing)
        raise ValueError(f"column{'s' if len(missing) > 1 else ''} {names} not in the data")


def numeric_column(df: pd.DataFrame, column: str) -> np.ndarray:
    """``df[column]`` as float64 (booleans become 0/1, missing values NaN)."""
    require_columns(df, [column])
    try:
        return df[column].to_numpy(dtype=np.float64, na_value=np.nan)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"column {column!r} is not numeric: {exc}") from exc


@dataclass(frozen=True)
class CoinTimeLayout:
    """The rows of a frame sorted by (mint, timestamp), with searches confined to one coin.

    ``order[k]`` is the position (in the frame) of the k-th sorted row; ``codes``
    (ascending, dense from 0) and ``ts`` (int64 ns UTC) describe the sorted rows.
    Build it with :func:`coin_time_layout`.
    """

    order: np.ndarray
    codes: np.ndarray
    ts: np.ndarray
    segment_end: np.ndarray
    _unique_ts: np.ndarray
    _keys: np.ndarray

    def __len__(self) -> int:
        return len(self.order)

    def take(self, df: pd.DataFrame, column: str) -> np.ndarray:
        """Column ``column`` of ``df`` as float64 in sorted order."""
        return numeric_column(df, column)[self.order]

    def restore(self, sorted_values: np.ndarray) -> np.ndarray:
        """Put values computed in sorted order back into the frame's row order."""
        out = np.empty_like(sorted_values)
        out[self.order] = sorted_values
        return out

    def first_after(self, query_ns: np.ndarray) -> np.ndarray:
        """For each sorted row k, the sorted index of the first row of the same coin
        with timestamp > ``query_ns[k]`` (``segment_end[k]`` when there is none).

        Timestamps are replaced by their rank among all timestamps so that
        (coin, rank) packs into one int64 key without overflow, then one global
        ``searchsorted`` answers every row at once.
        """
        width = len(self._unique_ts) + 1
        rank_after = np.searchsorted(self._unique_ts, query_ns, side="right")
        return np.searchsorted(self._keys, self.codes * width + rank_after, side="left")


def coin_time_layout(df: pd.DataFrame) -> CoinTimeLayout:
    """Validate ``mint``/``timestamp`` of ``df`` and sort its rows by (mint, timestamp).

    Raises ValueError when ``mint`` or ``timestamp`` is missing or has missing
    values, when ``timestamp`` is not timezone-aware, or when a (mint, timestamp)
    pair occurs more than once (the warehouse guarantees uniqueness, so
    duplicates mean a bad input).
    """
    require_columns(df, KEY_COLUMNS)
    if not isinstance(df["timestamp"].dtype, pd.DatetimeTZDtype):
        raise ValueError(
            f"column 'timestamp' must be timezone-aware (got dtype {df['timestamp'].dtype}); "
            "localise it, e.g. with .dt.tz_localize('UTC')"
        )
    stamps = pd.DatetimeIndex(df["timestamp"])
    if stamps.hasnans:
        raise ValueError(f"column 'timestamp' has {int(stamps.isna().sum())} missing values")
    codes, _ = pd.factorize(df["mint"], use_na_sentinel=True)
    if (codes < 0).any():
        raise ValueError(f"column 'mint' has {int((codes < 0).sum())} missing values")
    ts = stamps.as_unit("ns").asi8
    order = np.lexsort((ts, codes))
    codes, ts = codes[order].astype(np.int64), ts[order]
    duplicates = int(np.count_nonzero((codes[1:] == codes[:-1]) & (ts[1:] == ts[:-1])))
    if duplicates:
        raise ValueError(f"{duplicates} duplicate (mint, timestamp) rows; each pair must be unique")
    unique_ts = np.unique(ts)
    width = len(unique_ts) + 1
    segment_end = np.cumsum(np.bincount(codes))[codes]
    return CoinTimeLayout(
        order=order,
        codes=codes,
        ts=ts,
        segment_end=segment_end,
        _unique_ts=unique_ts,
        _keys=codes * width + np.searchsorted(unique_ts, ts, side="left"),
    )


class _BoundsIndexer(BaseIndexer):
    """Hands precomputed [start, end) row bounds to pandas' rolling kernels."""

    def get_window_bounds(self, num_values=0, min_periods=None, center=None, closed=None, step=None):
        return self.start, self.end


def window_aggregate(values: np.ndarray, start: np.ndarray, end: np.ndarray, how: str) -> np.ndarray:
    """Aggregate ``values[start[k]:end[k]]`` for every k, skipping NaN.

    ``how`` is "sum", "mean", "max", "min" or "std" (population std, ddof=0).
    Empty or all-NaN windows give NaN. Both bounds must be non-decreasing, which
    lets pandas' O(n) rolling kernels do the work; those kernels restart from
    scratch whenever a window does not overlap the previous one, so windows of
    different coins never share state.
    """
    indexer = _BoundsIndexer(start=start.astype(np.int64), end=end.astype(np.int64))
    rolling = pd.Series(values, dtype=np.float64).rolling(indexer, min_periods=1)
    result = rolling.std(ddof=0) if how == "std" else getattr(rolling, how)()
    return result.to_numpy()


def _horizon_ns(future_minutes: float) -> int:
    if isinstance(future_minutes, bool) or not isinstance(future_minutes, Real):
        raise ValueError(f"future_minutes must be a number, got {future_minutes!r}")
    if not math.isfinite(future_minutes) or future_minutes <= 0:
        raise ValueError(f"future_minutes must be > 0, got {future_minutes!r}")
    horizon = pd.Timedelta(minutes=float(future_minutes)).value
    if horizon < 1:
        raise ValueError(f"future_minutes {future_minutes!r} is shorter than a nanosecond")
    return horizon


def time_based_change(
    df: pd.DataFrame,
    target_var: str,
    future_minutes: float,
    mode: str = "end",
    direction: str = "up",
) -> pd.Series:
    """Percent change of ``target_var`` over the next ``future_minutes`` of the same coin.

    For a row of coin m at time t and H = ``future_minutes``: NaN unless m has a
    row with timestamp >= t + H. Otherwise the future value is

    * ``mode="end"``: m's ``target_var`` at its last row with timestamp <= t + H;
    * ``mode="within"``: the peak (``direction="up"``) or trough ("down") of
      m's ``target_var`` over its rows with t < timestamp <= t + H (NaN values
      ignored; NaN when there is no such non-NaN value).

    and the change is ``(future - current) / current * 100``, NaN when the
    current value is 0 or NaN or the future value is NaN. ``direction`` only
    matters for ``mode="within"``. Rows may come in any order with any index;
    the result is aligned to ``df.index``.
    """
    _check_choice("mode", mode, LABEL_MODES)
    _check_choice("direction", direction, DIRECTIONS)
    horizon = _horizon_ns(future_minutes)
    require_columns(df, [target_var])
    layout = coin_time_layout(df)
    current = layout.take(df, target_var)
    horizon_end = layout.ts + horizon
    # Exclusive end of the rows with t < timestamp <= t + H; never below k + 1.
    end = layout.first_after(horizon_end)
    if mode == "end":
        future = current[end - 1]
    else:
        start = np.arange(len(layout)) + 1
        future = window_aggregate(current, start, end, "max" if direction == "up" else "min")
    covered = layout.ts[layout.segment_end - 1] >= horizon_end
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        change = (future - current) / current * 100.0
    change[~covered | (current == 0) | ~np.isfinite(change)] = np.nan
    return pd.Series(layout.restore(change), index=df.index, name=f"{target_var}_change_pct")


def time_based_labels(
    df: pd.DataFrame,
    target_var: str,
    future_minutes: float,
    min_percent_change: float,
    direction: str = "up",
    mode: str = "end",
) -> pd.Series:
    """1.0 when ``target_var`` of the same coin moves by at least ``min_percent_change`` %
    over the next ``future_minutes``, else 0.0; NaN where the move is undefined.

    "up": change >= ``min_percent_change``; "down": change <= -``min_percent_change``.
    The change is :func:`time_based_change` (same ``mode`` and ``direction``), so
    rows whose horizon the coin's data does not cover are NaN, never 0.
    """
    change = time_based_change(df, target_var, future_minutes, mode=mode, direction=direction)
    return labels_from_change(change, min_percent_change, direction)


def labels_from_change(change: pd.Series, min_percent_change: float, direction: str = "up") -> pd.Series:
    """The labels of :func:`time_based_labels` from an already computed :func:`time_based_change`.

    Lets a caller that needs both the change and the labels compute the change once.
    """
    if isinstance(min_percent_change, bool) or not isinstance(min_percent_change, Real) or not math.isfinite(
        min_percent_change
    ):
        raise ValueError(f"min_percent_change must be a finite number, got {min_percent_change!r}")
    _check_choice("direction", direction, DIRECTIONS)
    values = change.to_numpy(dtype="float64")
    hit = values >= min_percent_change if direction == "up" else values <= -min_percent_change
    return pd.Series(np.where(np.isnan(values), np.nan, hit.astype(np.float64)), index=change.index, name="label")


def threshold_labels(df: pd.DataFrame, target_var: str, operator: str, value: float) -> pd.Series:
    """1.0 where ``target_var <operator> value`` holds, else 0.0; NaN where the target is NaN.

    ``operator`` is one of :data:`OPERATORS` ("=" is exact equality). The result
    is aligned to ``df.index``.
    """
    _check_choice("operator", operator, OPERATORS)
    target = numeric_column(df, target_var)
    hit = _COMPARE[operator](target, float(value)).astype(np.float64)
    return pd.Series(np.where(np.isnan(target), np.nan, hit), index=df.index, name="label")


def known_event_labels(df: pd.DataFrame, events: pd.DataFrame, lead_minutes: float) -> pd.Series:
    """1.0 where a row's timestamp lies inside [start − ``lead_minutes``, end] of a known event of its coin, else 0.0.

    ``events`` has ``mint``, ``start`` and ``end`` (timezone-aware), e.g. Telegram pump signals
    (``ml_known_events``); an event matches only rows of the same mint. The label reads the table,
    never the coin's later rows, so it is defined on every row (no NaN) and the model's inputs stay
    past-only. Overlapping events of a coin are merged first, so each row has one candidate window:
    the last one starting at or before it. Aligned to ``df.index``.
    """
    if isinstance(lead_minutes, bool) or not isinstance(lead_minutes, Real) or not (
            math.isfinite(lead_minutes) and lead_minutes >= 0):
        raise ValueError(f"lead_minutes must be a number >= 0, got {lead_minutes!r}")
    require_columns(events, ["mint", "start", "end"])
    layout = coin_time_layout(df)
    labels = np.zeros(len(layout))
    mints = pd.Index(pd.unique(df["mint"]))
    ev = events[events["mint"].isin(mints)]
    if len(ev):
        lead = pd.Timedelta(minutes=float(lead_minutes)).value
        # The layout's coin codes follow pd.factorize order, i.e. first appearance in df.
        codes = mints.get_indexer(ev["mint"]).astype(np.int64)
        lo = pd.DatetimeIndex(ev["start"]).as_unit("ns").asi8 - lead
        hi = pd.DatetimeIndex(ev["end"]).as_unit("ns").asi8
        order = np.lexsort((lo, codes))
        codes, lo, hi = codes[order], lo[order], hi[order]
        # Merge a coin's overlapping windows: a new run starts where the window begins after every earlier end.
        reach = pd.Series(hi).groupby(codes).cummax().to_numpy()
        new = np.r_[True, (codes[1:] != codes[:-1]) | (lo[1:] > reach[:-1])]
        codes, lo, hi = codes[new], lo[new], np.maximum.reduceat(reach, np.flatnonzero(new))
        # (coin, time rank) packs into one int64 key, as in CoinTimeLayout.first_after.
        times = np.unique(np.concatenate([layout.ts, lo]))
        width = len(times) + 1
        window_keys = codes * width + np.searchsorted(times, lo)
        row_keys = layout.codes * width + np.searchsorted(times, layout.ts)
        k = np.searchsorted(window_keys, row_keys, side="right") - 1
        valid = k >= 0
        kk = np.where(valid, k, 0)
        inside = valid & (codes[kk] == layout.codes) & (layout.ts <= hi[kk])
        labels[inside] = 1.0
    return pd.Series(layout.restore(labels), index=df.index, name="label")
