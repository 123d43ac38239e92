"""The simple rule every model must beat: a volume burst together with a short-window price rise.

Alert on a row when its volume is at least ``k`` × the coin's mean volume over the previous
``baseline`` (its own past rows only) and its close is at least ``p`` % above the coin's close
``lag`` earlier (its last row at or before t − lag). Two parameters, chosen on training data by
``fit_rule``; both quantities use only the coin's rows at or before t, like every feature.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import pandas as pd

DEFAULT_K_GRID = (2.0, 3.0, 5.0, 10.0, 20.0, 50.0, 100.0)
DEFAULT_P_GRID = (0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0)


@dataclass(frozen=True)
class VolumePriceRule:
    """``volume >= k × mean(previous baseline)`` and ``close >= (1 + p/100) × close(t − lag)``."""

    k: float
    p: float
    baseline: pd.Timedelta = pd.Timedelta(hours=1)
    lag: pd.Timedelta = pd.Timedelta(seconds=75)
    volume_column: str = "volume_sol"
    price_column: str = "price_close"

    def signals(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Per row: the volume ratio and the price rise (%) the rule compares, NaN without enough past."""
        return rule_signals(frame, self.baseline, self.lag, self.volume_column, self.price_column)

    def alerts(self, frame: pd.DataFrame, signals: pd.DataFrame | None = None) -> np.ndarray:
        """Boolean alert per row of ``frame`` (aligned to its order)."""
        s = self.signals(frame) if signals is None else signals
        return ((s["volume_ratio"] >= self.k) & (s["price_rise_pct"] >= self.p)).to_numpy()


def rule_signals(frame: pd.DataFrame, baseline: pd.Timedelta, lag: pd.Timedelta,
                 volume_column: str = "volume_sol", price_column: str = "price_close") -> pd.DataFrame:
    """Volume ratio to the coin's trailing mean over (t − baseline, t) and % rise over ``lag``, per row."""
    out = pd.DataFrame(index=frame.index, data={"volume_ratio": np.nan, "price_rise_pct": np.nan})
    for _, coin in frame.groupby("mint", sort=False):
        coin = coin.sort_values("timestamp", kind="stable")
        ts = coin["timestamp"].to_numpy(dtype="datetime64[ns]")
        volume = coin[volume_column].to_numpy(dtype=float)
        price = coin[price_column].to_numpy(dtype=float)
        csum = np.concatenate([[0.0], np.cumsum(np.nan_to_num(volume))])
        first = np.searchsorted(ts, ts - baseline.to_timedelta64(), side="right")  # rows in (t - baseline, t)
        index = np.arange(len(ts))
        count = index - first
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(count > 0, (csum[index] - csum[first]) / np.maximum(count, 1), np.nan)
            ratio = np.where(mean > 0, volume / mean, np.nan)
            before = np.searchsorted(ts, ts - lag.to_timedelta64(), side="right") - 1
            lagged = np.where(before >= 0, price[np.maximum(before, 0)], np.nan)
            rise = np.where(lagged > 0, (price / lagged - 1) * 100, np.nan)
        out.loc[coin.index, "volume_ratio"] = ratio
        out.loc[coin.index, "price_rise_pct"] = rise
    return out


def fit_rule(frames: Iterable[pd.DataFrame], score: Callable[[list[np.ndarray]], tuple],
             k_grid: Iterable[float] = DEFAULT_K_GRID, p_grid: Iterable[float] = DEFAULT_P_GRID,
             **rule_args) -> tuple[VolumePriceRule, tuple]:
    """The (k, p) of the grid whose alerts on ``frames`` maximise ``score(alerts per frame)`` (a sortable tuple).

    Signals are computed once per frame; ties keep the first (smallest k, then p) grid point.
    """
    frames = list(frames)
    probe = VolumePriceRule(k=0.0, p=0.0, **rule_args)
    signals = [probe.signals(f) for f in frames]
    best = None
    for k in k_grid:
        for p in p_grid:
            rule = VolumePriceRule(k=k, p=p, **rule_args)
            value = score([rule.alerts(f, s) for f, s in zip(frames, signals)])
            if best is None or value > best[1]:
                best = (rule, value)
    return best
