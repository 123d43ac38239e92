"""The simple rule every model must beat: a volume burst together with a short-window price rise.

Alert on a row when its volume is at least ``k`` × the coin's mean volume over the previous
``baseline`` (its own past rows only) and its close is at least ``p`` % above the coin's close
``lag`` earlier (its last row at or before t − lag). Two parameters, chosen on training data by
``fit_rule``; both quantities use only the coin's rows at or before t, like every feature.

:class:`RuleBaselineClassifier` is the same rule on the engineered features (``volume_ratio_{w}``,
``price_change_{w}``) as an sklearn classifier: the model type ``rule_baseline``, and the baseline
of the ``beats_rule_baseline`` gate (``ml/training.py``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin

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


def _alerts(signals: pd.DataFrame, k: float, p: float, strict: bool) -> np.ndarray:
    volume, rise = signals["volume_ratio"], signals["price_rise_pct"]
    return ((volume > k) & (rise > p) if strict else (volume >= k) & (rise >= p)).to_numpy()


def _grid_search(signals: list[pd.DataFrame], score: Callable[[list[np.ndarray]], tuple],
                 k_grid: Iterable[float], p_grid: Iterable[float], strict: bool = False) -> tuple[float, float, tuple]:
    """(k, p, score) of the grid point whose alerts on ``signals`` maximise ``score``; ties keep the first."""
    best = None
    for k in k_grid:
        for p in p_grid:
            value = score([_alerts(s, k, p, strict) for s in signals])
            if best is None or value > best[2]:
                best = (k, p, value)
    return best


def fit_rule(frames: Iterable[pd.DataFrame], score: Callable[[list[np.ndarray]], tuple],
             k_grid: Iterable[float] = DEFAULT_K_GRID, p_grid: Iterable[float] = DEFAULT_P_GRID,
             **rule_args) -> tuple[VolumePriceRule, tuple]:
    """The (k, p) of the grid whose alerts on ``frames`` maximise ``score(alerts per frame)`` (a sortable tuple).

    Signals are computed once per frame; ties keep the first (smallest k, then p) grid point.
    """
    probe = VolumePriceRule(k=0.0, p=0.0, **rule_args)
    k, p, value = _grid_search([probe.signals(f) for f in frames], score, tuple(k_grid), tuple(p_grid))
    return VolumePriceRule(k=k, p=p, **rule_args), value


class RuleBaselineClassifier(ClassifierMixin, BaseEstimator):
    """The volume/price rule as an sklearn classifier on the engineered feature columns (model type ``rule_baseline``).

    It reads two columns of the feature matrix built by ``ml/features.py`` (so training, testing and live
    scoring give it exactly the inputs of every other model): ``volume_feature`` (a ``volume_ratio_{w}``,
    volume over its mean in the last w minutes) and ``price_feature`` (a ``price_change_{w}``, % rise over
    the last w minutes). ``None`` picks the largest-window volume ratio (the longest baseline) and the
    smallest-window price change (the sharpest rise) present. ``fit`` grid-searches ``k`` and ``p`` on the
    rows it is given (the training part): for the best event F1 (``ml.events.event_f1``) when it is also
    given each row's coin, time and what a pump is (``ml.events.PumpDefinition``), else for the best row F1. Events matter here:
    a time-based label marks the quiet rows *before* a pump, which a rule reading the jump itself never
    flags, so row F1 would pick thresholds that miss every pump.

    An alert is ``volume > k`` and ``price > p`` (strictly, as every model alerts on probability
    *above* its threshold). ``predict_proba`` gives the strength ``s = max(0, min(volume / k, price / p))``
    as ``s / (1 + s)``: 0.5 exactly at the rule's boundary, so ``predict`` is the cut above 0.5, and a
    higher threshold scales both bars together (so ROC-AUC and the operating point mean the same as
    for any model).
    """

    _parameter_constraints: dict = {
        "volume_feature": [str, None],
        "price_feature": [str, None],
        "k_grid": ["array-like"],
        "p_grid": ["array-like"],
    }

    def __init__(self, volume_feature: str | None = None, price_feature: str | None = None,
                 k_grid=DEFAULT_K_GRID, p_grid=DEFAULT_P_GRID):
        self.volume_feature = volume_feature
        self.price_feature = price_feature
        self.k_grid = k_grid
        self.p_grid = p_grid

    def _columns(self, X: pd.DataFrame) -> tuple[str, str]:
        if not isinstance(X, pd.DataFrame):
            raise ValueError("rule_baseline needs the feature matrix as a DataFrame (it reads columns by name)")
        return (self.volume_feature or _widest(X.columns, "volume_ratio_", max),
                self.price_feature or _widest(X.columns, "price_change_", min))

    def _signals(self, X: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.columns_ if c not in X.columns]
        if missing:
            raise ValueError(f"rule_baseline: feature(s) {missing} are not in the inputs")
        volume, price = self.columns_
        return pd.DataFrame({"volume_ratio": X[volume].to_numpy(float), "price_rise_pct": X[price].to_numpy(float)})

    def fit(self, X: pd.DataFrame, y, sample_weight=None, mints=None, timestamps=None, pumps=None):
        """Choose ``k_`` and ``p_`` on ``(X, y)``: best event F1 with ``mints``/``timestamps`` (aligned to
        the rows) and ``pumps`` (an ``ml.events.PumpDefinition``; ``sample_weight`` is then ignored), else
        best (weighted) row F1."""
        self._validate_params()
        for name in ("k_grid", "p_grid"):
            grid = np.asarray(getattr(self, name), dtype=float).ravel()
            if grid.size == 0 or not (np.isfinite(grid) & (grid > 0)).all():
                raise ValueError(f"params: {name} of rule_baseline must list positive numbers, got {getattr(self, name)!r}")
        self.columns_ = self._columns(X)
        y = np.asarray(y).astype(int)
        self.classes_ = np.unique(y)
        if self.classes_.tolist() != [0, 1]:
            raise ValueError(f"rule_baseline needs rows of both classes 0 and 1, got {self.classes_.tolist()}")
        self.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
        self.n_features_in_ = X.shape[1]
        if mints is not None and timestamps is not None and pumps is not None:
            judge = pumps.judge(mints, timestamps, y)
            score = lambda alerts: (judge.f1(alerts[0]),)  # noqa: E731
        else:
            score = lambda alerts: (_f1(y == 1, alerts[0], sample_weight),)  # noqa: E731
        self.k_, self.p_, _ = _grid_search(
            [self._signals(X)], score,
            tuple(float(k) for k in self.k_grid), tuple(float(p) for p in self.p_grid), strict=True)
        return self

    @property
    def feature_importances_(self) -> np.ndarray:
        """Half each to the two columns the rule reads, 0 to every other feature."""
        return np.isin(self.feature_names_in_, self.columns_) / 2.0

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        s = self._signals(X)
        with np.errstate(divide="ignore", invalid="ignore"):
            strength = np.minimum(s["volume_ratio"].to_numpy() / self.k_, s["price_rise_pct"].to_numpy() / self.p_)
        strength = np.clip(np.nan_to_num(strength, nan=0.0), 0.0, np.finfo(float).max)
        positive = strength / (1.0 + strength)
        return np.column_stack([1.0 - positive, positive])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return _alerts(self._signals(X), self.k_, self.p_, strict=True).astype(int)


def _f1(positive: np.ndarray, alerts: np.ndarray, weight: np.ndarray | None) -> float:
    """Row F1 (0 without true or predicted positives), weighted; plain sums, since sklearn's f1_score
    costs ~0.1 s per call on a million rows and the grid calls it 49 times per fit."""
    w = np.ones(len(positive)) if weight is None else np.asarray(weight, dtype=float)
    tp = float(w[positive & alerts].sum())
    denominator = tp + float(w[alerts].sum()) + float(w[positive].sum())  # 2tp + fp + fn
    return 2 * tp / denominator if denominator > 0 else 0.0


def _widest(columns, prefix: str, pick) -> str:
    """The ``prefix{w}`` column with the largest (``pick=max``) or smallest (``min``) window w."""
    windows = {}
    for column in map(str, columns):
        if column.startswith(prefix):
            try:
                windows[float(column[len(prefix):])] = column
            except ValueError:
                continue
    if not windows:
        raise ValueError(f"rule_baseline needs a {prefix}{{w}} feature; turn on use_engineered_features")
    return windows[pick(windows)]
