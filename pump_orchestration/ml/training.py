"""Fitting one classifier on a labelled dataset: checks, purged time-series CV, SMOTE or class
weights, calibration, metrics.

All validation respects time: rows are sorted by timestamp first, every training
part lies strictly before its test part, and with a ``horizon`` (time-based
targets) training rows whose label looks into the test part are purged.
Resampling and class weights only ever touch a training part; the calibrator is fitted on
out-of-fold predictions of the training window only.
"""
from __future__ import annotations

import numbers
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from sklearn.base import BaseEstimator, ClassifierMixin, clone

from pump_orchestration.ml.metrics import (
    DECISION_THRESHOLD,
    DEFAULT_FEE_PCT,
    choose_threshold,
    classification_metrics,
    feature_importance,
    probability_scores,
    reliability_table,
)
from pump_orchestration.ml.events import PumpDefinition
from pump_orchestration.ml.models import build_estimator, validate_params
from pump_orchestration.ml.request import TrainingRequest
from pump_orchestration.vocabulary import CALIBRATION_METHODS, IMBALANCE_METHODS

#: Every CV fold (and the hold-out test part) must hold at least this many rows.
MIN_ROWS_PER_FOLD = 10
#: Positive shares of a training part inside this range are left alone by SMOTE.
BALANCED_SHARE = (0.3, 0.7)
#: SMOTE looks for a minority row's neighbours among at most this many minority rows nearest in time.
SMOTE_NEIGHBOUR_BLOCK_ROWS = 25_000
#: Without time-series CV: the first 80 % (by time) train, the last 20 % test.
HOLDOUT_TRAIN_SHARE = 0.8
CV_METRICS = ("accuracy", "f1", "precision", "recall")

ProgressCallback = Callable[[float, str], None]


class TrainingDataError(ValueError):
    """The labelled data cannot train a model; the message says why and what to change."""


@dataclass
class TrainingResult:
    """Everything a training run produced; all fields but ``estimator`` are JSON-serialisable."""

    estimator: Any  # fitted on raw rows (no resampling steps): predict/predict_proba work on feature rows
    model_type: str
    feature_names: list[str]
    params: dict[str, Any]  # final merged hyper-parameters
    metrics: dict[str, Any]  # test part
    train_metrics: dict[str, Any]  # training part, before resampling
    cv_scores: dict[str, Any] | None
    cv_overfitting_gap: float | None  # mean CV train accuracy - mean CV test accuracy
    feature_importance: dict[str, float]
    label_balance: dict[str, Any]  # all labelled rows
    resampling: dict[str, Any]  # final training part
    split: dict[str, Any]
    timings: dict[str, float]
    rule_baseline: dict[str, Any]  # the beats_rule_baseline comparison (see ``rule_baseline_comparison``)
    operating_point: dict[str, Any]  # the alert threshold chosen on out-of-fold predictions (``choose_threshold``)
    calibration: dict[str, Any]  # Brier/PR-AUC/reliability of the out-of-fold probabilities (``calibration_report``)

    @property
    def fitting_seconds(self) -> float:
        """Seconds spent fitting estimators: the CV folds, the evaluation fit and the final fit."""
        t = self.timings
        return t.get("cv_seconds", 0.0) + t.get("fit_seconds", 0.0) + t.get("final_fit_seconds", 0.0)


def _balance(y) -> dict[str, Any]:
    y = np.asarray(y)
    n, positive = int(y.size), int(y.sum())
    return {"n_rows": n, "n_positive": positive, "n_negative": n - positive,
            "positive_share": positive / n if n else None}


class BlockNeighbors(BaseEstimator):
    """Nearest neighbours of each row among the rows of its block: runs of at most ``block_rows``
    consecutive rows, so of a time-ordered training part, the minority rows nearest in time.

    SMOTE's own search (scikit-learn's ``NearestNeighbors``) is exact brute force above 15 features and
    grows with the square of the minority: 82 s for 177 k minority rows, so about 3,000 s for the 1.08 M
    of a 10 M-row window, seven times per training. Blocks make it linear (n x ``block_rows``). Up to ``block_rows``
    rows there is one block, and the result is ``NearestNeighbors``' own. Written here because neither
    scikit-learn nor imbalanced-learn bounds the search; SMOTE takes any such object as ``k_neighbors``.
    Like SMOTE's use, it answers queries for the rows it was fitted on (each row's first neighbour is itself).
    """

    def __init__(self, n_neighbors: int = 6, block_rows: int = SMOTE_NEIGHBOUR_BLOCK_ROWS):
        self.n_neighbors = n_neighbors
        self.block_rows = block_rows

    def fit(self, X, y=None) -> "BlockNeighbors":
        self._fit_X = X
        return self

    def kneighbors(self, X=None, n_neighbors: int | None = None, return_distance: bool = True):
        from sklearn.neighbors import NearestNeighbors

        if X is not None and X is not self._fit_X:
            raise ValueError("BlockNeighbors answers queries for the rows it was fitted on only")
        rows, k = self._fit_X, n_neighbors or self.n_neighbors
        # Blocks of (nearly) equal size, none with fewer than k rows.
        n_blocks = max(1, min(-(-len(rows) // self.block_rows), len(rows) // k))
        distances, indices = [], []
        for block in np.array_split(np.arange(len(rows)), n_blocks):
            part = rows[block[0]: block[-1] + 1]
            d, i = NearestNeighbors(n_neighbors=k).fit(part).kneighbors(part)
            distances.append(d)
            indices.append(i + block[0])
        return (np.vstack(distances), np.vstack(indices)) if return_distance else np.vstack(indices)

    def kneighbors_graph(self, X=None, n_neighbors: int | None = None, mode: str = "connectivity"):
        """The neighbours as a sparse (rows x rows) matrix, as ``NearestNeighbors.kneighbors_graph``."""
        from scipy.sparse import csr_matrix

        distances, indices = self.kneighbors(X, n_neighbors)
        n, k = indices.shape
        data = np.ones(n * k) if mode == "connectivity" else distances.ravel()
        return csr_matrix((data, indices.ravel(), np.arange(0, n * k + 1, k)), shape=(n, len(self._fit_X)))


def rebalance(X: pd.DataFrame, y: pd.Series, random_state: int = 42,
              neighbour_block_rows: int = SMOTE_NEIGHBOUR_BLOCK_ROWS) -> tuple[pd.DataFrame, pd.Series, dict]:
    """SMOTE + random under-sampling of a TRAINING part whose positive share is outside 30-70 %.

    SMOTE grows the minority to half the majority (``k_neighbors = min(5, minority - 1)``, searched by
    :class:`BlockNeighbors` in blocks of ``neighbour_block_rows``), then ``RandomUnderSampler`` shrinks the
    majority to 1:1. Returns the (possibly
    unchanged) rows and ``{"applied", "reason", "before", "after"}``; a minority of
    fewer than 2 rows is left alone with the reason recorded.
    """
    before = _balance(y)
    share = before["positive_share"]
    minority = min(before["n_positive"], before["n_negative"])
    if BALANCED_SHARE[0] <= share <= BALANCED_SHARE[1]:
        reason = f"positive share {share:.1%} is within 30-70 %; no resampling needed"
    elif minority < 2:
        reason = f"positive share {share:.1%} but the minority class has {minority} row(s); SMOTE needs at least 2"
    else:
        X_res, y_res = _smote_then_undersample(X, y, min(5, minority - 1), random_state, neighbour_block_rows)
        return X_res, y_res, {
            "applied": True,
            "reason": f"positive share {share:.1%} is outside 30-70 %: SMOTE to 1:2, then under-sampling to 1:1",
            "before": before, "after": _balance(y_res),
        }
    return X, y, {"applied": False, "reason": reason, "before": before, "after": before}


#: Synthetic rows made at a time: bounds the temporaries of the interpolation.
_SYNTHETIC_CHUNK_ROWS = 100_000


def _smote_then_undersample(X: pd.DataFrame, y: pd.Series, k: int, random_state: int,
                            block_rows: int) -> tuple[pd.DataFrame, pd.Series]:
    """imbalanced-learn's ``SMOTE(sampling_strategy=0.5, k_neighbors=k)`` then
    ``RandomUnderSampler(sampling_strategy=1.0)``, both with ``random_state``: the same rows, values, order,
    index and dtypes (a test compares them), with SMOTE's neighbours from :class:`BlockNeighbors`.

    Written out because the two samplers copy the part (``X.copy()``), stack it with the synthetic rows, then
    select from the stack and cast the selection back: 3.27x the part at 250 k rows. Here only the minority
    rows are gathered (the neighbour search needs them as one array) and the kept rows are written once,
    column by column from ``X``'s columns, so a matrix of column views is never copied whole.
    """
    from sklearn.utils import check_random_state

    labels = np.asarray(y)
    classes, counts = np.unique(labels, return_counts=True)
    minority_class, majority_class = classes[np.argmin(counts)], classes[np.argmax(counts)]
    minority_rows = np.flatnonzero(labels == minority_class)
    majority_rows = np.flatnonzero(labels == majority_class)
    n_synthetic = int(len(majority_rows) * 0.5 - len(minority_rows))  # SMOTE's count for a 0.5 strategy
    columns = [X.iloc[:, j].to_numpy(dtype="float64") for j in range(X.shape[1])]
    minority = np.empty((len(minority_rows), len(columns)))
    for j, column in enumerate(columns):
        minority[:, j] = column[minority_rows]
    neighbours = BlockNeighbors(n_neighbors=k + 1, block_rows=block_rows).fit(minority)
    neighbours = neighbours.kneighbors(minority, return_distance=False)[:, 1:]  # each row finds itself first

    # SMOTE's draws: a (row, neighbour) pair and a step in [0, 1) for each synthetic row.
    smote_random = check_random_state(random_state)
    pairs = smote_random.randint(low=0, high=neighbours.size, size=n_synthetic)
    steps = smote_random.uniform(size=n_synthetic)
    # RandomUnderSampler's draw: which majority rows stay, as many as the minority has after SMOTE.
    n_kept = len(minority_rows) + n_synthetic
    kept_majority = majority_rows[check_random_state(random_state).choice(
        range(len(majority_rows)), size=n_kept, replace=False)]

    # Rows in the samplers' order: classes ascending; the minority's own rows, then the synthetic ones.
    minority_first = minority_class < majority_class
    out = np.empty((len(columns), 2 * n_kept))  # (feature, row): every output column is contiguous
    majority_at, minority_at = (n_kept, 0) if minority_first else (0, n_kept)
    for j, column in enumerate(columns):
        out[j, majority_at: majority_at + n_kept] = column[kept_majority]
    out[:, minority_at: minority_at + len(minority_rows)] = minority.T
    synthetic_at = minority_at + len(minority_rows)
    for a in range(0, n_synthetic, _SYNTHETIC_CHUNK_ROWS):
        b = min(a + _SYNTHETIC_CHUNK_ROWS, n_synthetic)
        rows, cols = np.divmod(pairs[a:b], neighbours.shape[1])
        base = minority[rows]
        new = base + steps[a:b, np.newaxis] * (minority[neighbours[rows, cols]] - base)
        out[:, synthetic_at + a: synthetic_at + b] = new.T
    synthetic_index = len(labels) + np.arange(n_synthetic)
    index = (np.concatenate([minority_rows, synthetic_index, kept_majority]) if minority_first
             else np.concatenate([kept_majority, minority_rows, synthetic_index]))
    X_res = pd.DataFrame(out.T, index=index, columns=X.columns, copy=False)
    if (X.dtypes != "float64").any():
        X_res = X_res.astype(X.dtypes.to_dict())
    y_values = np.where(np.arange(2 * n_kept) < n_kept, classes[0], classes[1]).astype(labels.dtype)
    return X_res, pd.Series(y_values, index=index, name=getattr(y, "name", None))


def balanced_weight_params(estimator, y) -> dict[str, np.ndarray]:
    """Fit keyword giving each row sklearn's balanced weight ``n / (2 * rows of its class)`` in ``y``.

    ``build_estimator``'s scaled models are Pipelines, which route a weight to their last step by name.
    """
    from sklearn.pipeline import Pipeline
    from sklearn.utils.class_weight import compute_sample_weight

    key = f"{estimator.steps[-1][0]}__sample_weight" if isinstance(estimator, Pipeline) else "sample_weight"
    return {key: compute_sample_weight("balanced", np.asarray(y))}


class BalancedWeightsClassifier(ClassifierMixin, BaseEstimator):
    """``estimator`` fitted with the balanced weights of the rows it is given (``balanced_weight_params``).

    A wrapper, not one weight vector for the whole window: that would be computed once for the
    whole window, while each CV fold, the evaluation fit and the final fit must balance their own rows.
    """

    def __init__(self, estimator):
        self.estimator = estimator

    def fit(self, X, y, **params):
        self.estimator_ = clone(self.estimator).fit(X, y, **params, **balanced_weight_params(self.estimator, y))
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X):
        return self.estimator_.predict_proba(X)

    def predict(self, X):
        return self.estimator_.predict(X)


class ProbabilityCalibrator:
    """A monotone map from a model's class-1 probability to the observed pump rate.

    ``isotonic``: sklearn ``IsotonicRegression`` (clipped to [0, 1] outside the fitted range);
    ``sigmoid``: Platt scaling, a logistic regression on the probability's log-odds. Hand-wired
    rather than ``CalibratedClassifierCV`` because it is fitted on out-of-fold predictions of
    several fold models (time-respecting) and then applied to a different, final model; sklearn's
    class calibrates one (frozen) estimator on rows it predicts itself.
    """

    #: Probabilities are clipped away from 0 and 1 before taking log-odds.
    EPS = 1e-6

    def __init__(self, method: str):
        if method not in CALIBRATION_METHODS[1:]:
            raise ValueError(f"calibration: {method!r} is not a calibration method; "
                             f"allowed: {', '.join(CALIBRATION_METHODS[1:])}")
        self.method = method

    def _log_odds(self, proba) -> np.ndarray:
        p = np.clip(np.asarray(proba, dtype=float).ravel(), self.EPS, 1 - self.EPS)
        return np.log(p / (1 - p)).reshape(-1, 1)

    def fit(self, proba, labels) -> "ProbabilityCalibrator":
        labels = np.asarray(labels).astype(int).ravel()
        if np.unique(labels).size < 2:
            raise TrainingDataError("calibration: the out-of-fold rows hold one class; use calibration: none")
        if self.method == "isotonic":
            from sklearn.isotonic import IsotonicRegression

            self.map_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
                np.asarray(proba, dtype=float).ravel(), labels)
        else:
            from sklearn.linear_model import LogisticRegression

            self.map_ = LogisticRegression(penalty=None).fit(self._log_odds(proba), labels)
        return self

    def transform(self, proba) -> np.ndarray:
        if self.method == "isotonic":
            return np.asarray(self.map_.predict(np.asarray(proba, dtype=float).ravel()), dtype=float)
        return self.map_.predict_proba(self._log_odds(proba))[:, 1]


class CalibratedModel:
    """A fitted classifier whose class-1 probability passes through a ``ProbabilityCalibrator``.

    This is what the model store pickles for a calibrated request; test reports and live scoring
    call ``predict_proba``/``predict`` as on any classifier. ``estimator`` is the raw model.
    """

    def __init__(self, estimator, calibrator: ProbabilityCalibrator):
        self.estimator = estimator
        self.calibrator = calibrator
        self.classes_ = np.array([0, 1])

    def predict_proba(self, X) -> np.ndarray:
        positive = self.calibrator.transform(predict_proba_positive(self.estimator, X))
        return np.column_stack([1 - positive, positive])

    def predict(self, X) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] > DECISION_THRESHOLD).astype(int)


def calibration_report(labels, raw_proba, calibrated_proba=None) -> dict[str, Any]:
    """Brier score, PR-AUC and the reliability table of out-of-fold probabilities, before and after calibration.

    ``after`` and ``reliability_after`` are None without calibration. The calibrator was fitted on
    these same rows, so ``after`` is an in-sample figure; a later test window gives the honest one.
    """
    out = {"rows": int(np.asarray(labels).size), "before": probability_scores(labels, raw_proba),
           "reliability_before": reliability_table(labels, raw_proba), "after": None, "reliability_after": None}
    if calibrated_proba is not None:
        out.update(after=probability_scores(labels, calibrated_proba),
                   reliability_after=reliability_table(labels, calibrated_proba))
    return out


def predict_proba_positive(estimator, X) -> np.ndarray:
    """Probability of class 1 for each row of ``X`` (1-D float array)."""
    classes = list(estimator.classes_)
    if 1 not in classes:
        raise ValueError(f"estimator was fitted without class 1 (classes: {classes})")
    return np.asarray(estimator.predict_proba(X)[:, classes.index(1)], dtype=float)


def _aligned(series: pd.Series, name: str, index: pd.Index) -> pd.Series:
    if not isinstance(series, pd.Series):
        raise TrainingDataError(f"{name} must be a pandas Series sharing X's index")
    if series.index.equals(index):
        return series
    if len(series) == len(index) and series.index.is_unique and series.index.isin(index).all():
        return series.loc[index]
    raise TrainingDataError(f"{name} does not share X's index ({len(series)} vs {len(index)} rows)")


def _check_features(X: pd.DataFrame) -> None:
    if X.columns.duplicated().any():
        raise TrainingDataError(f"duplicate feature columns: {sorted(set(X.columns[X.columns.duplicated()]))}")
    non_numeric = [str(c) for c in X.columns
                   if not (pd.api.types.is_numeric_dtype(X[c]) or pd.api.types.is_bool_dtype(X[c]))]
    if non_numeric:
        raise TrainingDataError(f"non-numeric feature columns: {', '.join(non_numeric)}")
    all_nan = [str(c) for c in X.columns if X[c].isna().all()]
    if all_nan:
        raise TrainingDataError(
            f"feature(s) NaN in every one of the {len(X)} rows: {', '.join(all_nan)} — the source column is empty "
            "or missing for this window; drop it from features"
        )
    problems = []
    for column in X.columns:
        values = X[column].to_numpy(dtype=float, na_value=np.nan)
        n_nan, n_inf = int(np.isnan(values).sum()), int(np.isinf(values).sum())
        if n_nan or n_inf:
            problems.append(f"{column}: {n_nan} NaN, {n_inf} inf")
    if problems:
        raise TrainingDataError(
            f"features contain NaN/inf in {len(X)} rows (fill or drop those rows first): " + "; ".join(problems)
        )


def _check_labels(y: pd.Series) -> pd.Series:
    if y.isna().any():
        raise TrainingDataError(f"y has {int(y.isna().sum())} missing labels; drop unlabelled rows first")
    values = set(pd.unique(y).tolist())
    if not values <= {0, 1}:
        raise TrainingDataError(f"y must hold only 0/1 labels, found {sorted(map(str, values))[:5]}")
    y = y.astype(int)
    if len(values) == 1:
        raise TrainingDataError(
            f"all {len(y)} labelled rows are class {int(values.pop())} — widen the window or lower "
            "min_percent_change (or change the target threshold)"
        )
    return y


def _rows(data, idx: np.ndarray):
    """Rows ``idx`` (positions) of a frame or series: a view for one ascending run of positions, else a copy.

    TimeSeriesSplit parts are such runs, also after ``_purge`` (rows sorted by time lose a suffix), so a
    fold costs no copy of the matrix; ``iloc`` with the position array would copy it (memory at 10 M rows).
    """
    if idx.size and idx[-1] - idx[0] + 1 == idx.size and (idx.size == 1 or bool((np.diff(idx) == 1).all())):
        return data.iloc[int(idx[0]): int(idx[-1]) + 1]
    return data.iloc[idx]


def _in_time_order(data, order: pd.Index):
    """``data`` (frame or series) in the row order ``order`` (index labels), with a fresh RangeIndex.

    Rows that already come in that order (as ``feature_frame`` gives them) are not copied: a shallow copy gets
    the new index. Otherwise one ``take``; ``.loc[order].reset_index(drop=True)`` copied the matrix twice.
    """
    if order.equals(data.index):
        data = data.copy(deep=False)
    else:
        data = data.take(data.index.get_indexer(order))
    data.index = pd.RangeIndex(len(data))
    return data


def _purge(train_idx: np.ndarray, test_idx: np.ndarray, ts: np.ndarray,
           horizon: np.timedelta64 | None) -> tuple[np.ndarray, int]:
    """Drop training rows whose label horizon (timestamp + horizon) reaches the first test timestamp.

    Strict: a horizon ending exactly at the first test row would label with that row's price, a test price.
    """
    if horizon is None:
        return train_idx, 0
    keep = ts[train_idx] + horizon < ts[test_idx].min()
    return train_idx[keep], int((~keep).sum())


def _check_train_part(y: np.ndarray, train_idx: np.ndarray, what: str) -> None:
    if train_idx.size == 0:
        raise TrainingDataError(f"{what}: the training part is empty after purging rows whose horizon reaches "
                                "the test part — use fewer cv_splits or a wider window")
    classes = np.unique(y[train_idx])
    if classes.size < 2:
        raise TrainingDataError(
            f"{what}: the training part ({train_idx.size} rows) holds only class {classes[0]:d} — use fewer "
            "cv_splits, a wider window or a lower min_percent_change"
        )


def train_classifier(X: pd.DataFrame, y: pd.Series, timestamps: pd.Series, *, model_type: str,
                     params: dict[str, Any] | None = None, imbalance: str = IMBALANCE_METHODS[0],
                     calibration: str = CALIBRATION_METHODS[0],
                     use_timeseries_split: bool = True, cv_splits: int = 5, horizon: pd.Timedelta | None = None,
                     future_change_pct: pd.Series | None = None, direction: str = "up",
                     fee_pct: float = DEFAULT_FEE_PCT, random_state: int = 42, n_jobs: int | None = None,
                     mints: pd.Series | None = None, known_events: pd.DataFrame | None = None,
                     threshold_objective: str = TrainingRequest.threshold_objective,
                     max_false_alarms_per_coin_day: float = TrainingRequest.max_false_alarms_per_coin_day,
                     progress: ProgressCallback | None = None) -> TrainingResult:
    """Train ``model_type`` on ``X``/``y`` with order-respecting validation.

    ``X`` holds the final features in training order; ``y`` (0/1), ``timestamps``
    and ``future_change_pct`` (time-based targets; enables the simulated profit)
    share its index. Rows are sorted by timestamp (ties by index label, so the input
    row order never matters). ``horizon`` (``future_minutes`` for time-based targets)
    purges training rows with ``timestamp + horizon >= first test timestamp``.

    With ``use_timeseries_split``: ``TimeSeriesSplit(cv_splits)`` folds, purged, scored
    by ``_cross_validate`` (resampling inside each fold's training part, a slice view
    of the sorted rows); the final split is the last fold. Otherwise a chronological
    80/20 hold-out (not recommended: one test period, no CV). ``imbalance`` ``smote`` applies
    ``rebalance`` to training parts only, ``class_weight`` fits every model (CV folds, evaluation,
    final) with the balanced weights of its own rows (``BalancedWeightsClassifier``); the rule
    baseline takes neither. The reported metrics and importances come from
    the model fitted on the split's training part; the returned estimator is then fitted
    on all rows (``split["final_fit"]`` says which). ``progress(fraction, message)`` is
    called at stage boundaries.

    The evaluation rows (every CV fold's test part, each predicted by the fold's model fitted
    before it; without CV the hold-out part) then give the operating point: the alert threshold
    of ``threshold_objective`` (``ml.metrics.choose_threshold``; event level when ``horizon`` and
    ``mints``, each row's coin, are given: the pumps are the labels' own, or with ``known_events``
    (``mint``, ``start``, ``end``; ``horizon`` is then the label's lead) that table's), and judge the model at it against the volume/price rule
    fitted on the same training parts (:func:`rule_baseline_comparison`). Without CV the hold-out
    part both chooses the threshold and gives the reported metrics, so those are optimistic.

    ``calibration`` ``sigmoid``/``isotonic`` fits a ``ProbabilityCalibrator`` on those evaluation
    rows' probabilities and labels (never a later row); the threshold, the rule comparison and the
    reported metrics then use calibrated probabilities, and the returned estimator is a
    ``CalibratedModel``. ``TrainingResult.calibration`` gives Brier/PR-AUC/reliability before and after.

    Raises ``TrainingDataError`` for unusable data and ``ValueError`` for bad arguments.
    """
    started = time.perf_counter()

    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, message)

    merged_params = validate_params(model_type, params)
    if imbalance not in IMBALANCE_METHODS:
        raise ValueError(f"imbalance: {imbalance!r} is unknown; allowed: {', '.join(IMBALANCE_METHODS)}")
    if calibration not in CALIBRATION_METHODS:
        raise ValueError(f"calibration: {calibration!r} is unknown; allowed: {', '.join(CALIBRATION_METHODS)}")
    if direction not in ("up", "down"):
        raise ValueError(f"direction: expected 'up' or 'down', got {direction!r}")
    if use_timeseries_split and (not isinstance(cv_splits, numbers.Integral) or cv_splits < 2):
        raise ValueError(f"cv_splits: must be an integer >= 2, got {cv_splits!r}")
    if horizon is not None and pd.Timedelta(horizon) < pd.Timedelta(0):
        raise ValueError(f"horizon: must not be negative, got {horizon!r}")

    if not isinstance(X, pd.DataFrame) or X.empty:
        raise TrainingDataError("no labelled rows to train on (X is empty)")
    report(0.0, f"checking {len(X)} rows x {X.shape[1]} features")
    if not X.index.is_unique:
        raise TrainingDataError("X's index has duplicate labels; reset it before training")
    y = _aligned(y, "y", X.index)
    timestamps = _aligned(timestamps, "timestamps", X.index)
    if future_change_pct is not None:
        future_change_pct = _aligned(future_change_pct, "future_change_pct", X.index)
        if future_change_pct.isna().any():
            raise TrainingDataError(f"future_change_pct is missing for {int(future_change_pct.isna().sum())} "
                                    "labelled rows; every time-based label needs its future value")
    if mints is not None:
        mints = _aligned(mints, "mints", X.index)
    if not pd.api.types.is_datetime64_any_dtype(timestamps):
        raise TrainingDataError(f"timestamps must be datetimes, got dtype {timestamps.dtype}")
    if timestamps.isna().any():
        raise TrainingDataError(f"timestamps has {int(timestamps.isna().sum())} missing values")
    _check_features(X)
    y = _check_labels(y)

    # Sort by time, ties by index label: the same rows in any order give the same model.
    order = timestamps.sort_index(kind="stable").sort_values(kind="stable").index
    X = _in_time_order(X, order)
    y = _in_time_order(y, order)
    ts_sorted = timestamps.loc[order]
    ts = ts_sorted.to_numpy(dtype="datetime64[ns]")  # UTC instants, also for tz-aware input
    change = None if future_change_pct is None else future_change_pct.loc[order].to_numpy(dtype=float)
    mints_sorted = None if mints is None else mints.loc[order].to_numpy()
    stamps = pd.DatetimeIndex(ts_sorted)
    stamps = stamps.tz_localize("UTC") if stamps.tz is None else stamps
    y_values = y.to_numpy()
    n = len(X)
    horizon_td = None if horizon is None else pd.Timedelta(horizon).to_timedelta64()
    # The rule baseline counts pumps to choose k and p, so it fits on raw rows with their coin and time.
    rule_model = model_type == "rule_baseline"
    resample = imbalance == "smote" and not rule_model
    weigh = imbalance == "class_weight" and not rule_model

    # What a pump is, for the operating point, the gate and the rule's own fit (None: judged by rows).
    pumps = None if horizon is None or mints_sorted is None else PumpDefinition(pd.Timedelta(horizon), known_events)

    def fit_params(rows: np.ndarray) -> dict[str, Any]:
        if not rule_model or pumps is None:
            return {}
        return {"mints": mints_sorted[rows], "timestamps": stamps[rows], "pumps": pumps}

    if use_timeseries_split:
        need = (cv_splits + 1) * MIN_ROWS_PER_FOLD
        if n < need:
            raise TrainingDataError(
                f"too few rows for cv_splits={cv_splits}: need at least {need} labelled rows "
                f"((cv_splits + 1) x {MIN_ROWS_PER_FOLD}), got {n} — lower cv_splits or widen the window"
            )
        from sklearn.model_selection import TimeSeriesSplit

        folds, purged = [], []
        for number, (train_idx, test_idx) in enumerate(TimeSeriesSplit(n_splits=cv_splits).split(X), start=1):
            train_idx, dropped = _purge(train_idx, test_idx, ts, horizon_td)
            _check_train_part(y_values, train_idx, f"CV fold {number} of {cv_splits}")
            folds.append((train_idx, test_idx))
            purged.append(dropped)
        train_idx, test_idx = folds[-1]
        split_kind, split_purged = "timeseries_last_fold", purged[-1]
    else:
        need = int(np.ceil(MIN_ROWS_PER_FOLD / (1 - HOLDOUT_TRAIN_SHARE)))
        if n < need:
            raise TrainingDataError(f"too few rows for an 80/20 split: need at least {need} labelled rows, got {n}")
        cut = int(n * HOLDOUT_TRAIN_SHARE)
        test_idx = np.arange(cut, n)
        train_idx, split_purged = _purge(np.arange(cut), test_idx, ts, horizon_td)
        _check_train_part(y_values, train_idx, "80/20 split")
        split_kind = "holdout_80_20"

    def estimator(n_samples: int):
        base = build_estimator(model_type, merged_params, random_state=random_state, n_jobs=n_jobs,
                               n_samples=n_samples)
        return BalancedWeightsClassifier(base) if weigh else base

    def fitted(model):
        """The model itself, not its weighting wrapper (importances, pickling)."""
        return model.estimator_ if weigh else model

    cv_scores, gap, cv_seconds = None, None, 0.0
    if use_timeseries_split:
        report(0.05, f"cross-validating {cv_splits} time-series folds on {n} rows")
        t0 = time.perf_counter()
        cv_scores, oof_proba = _cross_validate(estimator(len(train_idx)), X, y, folds, purged, resample, random_state,
                                               fit_params(np.arange(n)))
        gap = cv_scores["mean_train_accuracy"] - cv_scores["mean_test_accuracy"]
        cv_seconds = time.perf_counter() - t0

    X_train, y_train = _rows(X, train_idx), _rows(y, train_idx)
    X_test, y_test = _rows(X, test_idx), _rows(y, test_idx)
    t0 = time.perf_counter()
    if resample:
        X_fit, y_fit, resampling = rebalance(X_train, y_train, random_state)
    else:
        X_fit, y_fit = X_train, y_train
        balance = _balance(y_train)
        if rule_model and imbalance != "none":
            resampling = {"applied": False, "reason": "rule_baseline chooses its two thresholds on the raw rows, "
                          "unweighted (resampled rows have no coin or time)"}
        elif weigh:
            from sklearn.utils.class_weight import compute_class_weight

            weights = compute_class_weight("balanced", classes=np.array([0, 1]), y=y_train.to_numpy())
            resampling = {"applied": True, "reason": "class_weight: balanced sample weights at fit, rows unchanged",
                          "weights": {"0": float(weights[0]), "1": float(weights[1])}}
        else:
            resampling = {"applied": False, "reason": "imbalance is none"}
        resampling.update(before=balance, after=balance)
    resampling["method"] = "none" if rule_model else imbalance
    resample_seconds = time.perf_counter() - t0

    report(0.6, f"fitting {model_type} on {len(y_fit)} rows")
    t0 = time.perf_counter()
    model = fitted(estimator(len(train_idx)).fit(X_fit, y_fit, **fit_params(train_idx)))
    fit_seconds = time.perf_counter() - t0
    del X_fit, y_fit  # before the final fit resamples again: kept, they were a third matrix (+2.8 GiB at 10 M rows)

    report(0.75, f"evaluating on {len(test_idx)} test rows")
    t0 = time.perf_counter()
    eval_folds = folds if use_timeseries_split else [(train_idx, test_idx)]
    eval_idx = np.concatenate([test for _, test in eval_folds])
    if not use_timeseries_split:
        oof_proba = predict_proba_positive(model, X_test)
    # The calibrator sees only the evaluation rows' out-of-fold probabilities: no row after the window.
    calibrator = None if calibration == "none" else ProbabilityCalibrator(calibration).fit(
        oof_proba, y_values[eval_idx])
    raw_oof_proba = oof_proba
    if calibrator is not None:
        oof_proba = calibrator.transform(raw_oof_proba)
        model = CalibratedModel(model, calibrator)
    calibration_figures = calibration_report(y_values[eval_idx], raw_oof_proba,
                                             None if calibrator is None else oof_proba)
    test_pred = model.predict(X_test)
    test_proba = predict_proba_positive(model, X_test)
    predict_seconds = time.perf_counter() - t0

    report(0.8, "choosing the alert threshold and comparing with the volume/price rule on the evaluation rows")
    t0 = time.perf_counter()

    judge = None if pumps is None else pumps.judge(mints_sorted[eval_idx], stamps[eval_idx], y_values[eval_idx])

    def operating_point(proba: np.ndarray) -> dict[str, Any]:
        return choose_threshold(proba, y_values[eval_idx], objective=threshold_objective,
                                max_false_alarms_per_coin_day=max_false_alarms_per_coin_day, judge=judge)

    chosen = operating_point(oof_proba)
    threshold_seconds = time.perf_counter() - t0
    t0 = time.perf_counter()
    rule_comparison = rule_baseline_comparison(
        X, y_values, eval_folds, (oof_proba > chosen["threshold"]).astype(int), stamps, mints_sorted, pumps,
        model_type=model_type, threshold_for=lambda proba: operating_point(proba)["threshold"])
    rule_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    test_change = None if change is None else change[test_idx]
    train_change = None if change is None else change[train_idx]
    metrics = classification_metrics(y_test, test_pred, test_proba, test_change, direction, fee_pct)
    train_metrics = classification_metrics(y_train, model.predict(X_train), predict_proba_positive(model, X_train),
                                           train_change, direction, fee_pct)
    importance = feature_importance(model if calibrator is None else model.estimator, list(X.columns), X_test, y_test)
    evaluate_seconds = time.perf_counter() - t0

    # The figures above come from the model fitted before the test part; the stored model is then fitted on
    # every labelled row, so the newest part of the window (the most relevant data) trains it too.
    report(0.85, f"final fit of {model_type} on all {n} labelled rows")
    t0 = time.perf_counter()
    X_all, y_all = (rebalance(X, y, random_state)[:2] if resample else (X, y))
    final = fitted(estimator(n).fit(X_all, y_all, **fit_params(np.arange(n))))
    if calibrator is not None:
        final = CalibratedModel(final, calibrator)
    final_fit_seconds = time.perf_counter() - t0
    report(1.0, f"trained {model_type}: test accuracy {metrics['accuracy']:.3f}, f1 {metrics['f1']:.3f}")

    return TrainingResult(
        estimator=final,
        model_type=model_type,
        feature_names=[str(c) for c in X.columns],
        params=merged_params,
        metrics=metrics,
        train_metrics=train_metrics,
        cv_scores=cv_scores,
        cv_overfitting_gap=None if gap is None else float(gap),
        feature_importance=importance,
        label_balance=_balance(y_values),
        resampling=resampling,
        rule_baseline=rule_comparison,
        operating_point=chosen,
        calibration={"method": calibration, **calibration_figures},
        split={
            "kind": split_kind, "n_train": int(train_idx.size), "n_test": int(test_idx.size),
            "purged_rows": int(split_purged),
            "train_start_ts": ts_sorted.iloc[train_idx[0]].isoformat(),
            "train_end_ts": ts_sorted.iloc[train_idx[-1]].isoformat(),
            "test_start_ts": ts_sorted.iloc[test_idx[0]].isoformat(),
            "test_end_ts": ts_sorted.iloc[test_idx[-1]].isoformat(),
            # Which rows trained the stored model: all labelled rows of the window.
            "final_fit": {"rows": int(n), "start_ts": ts_sorted.iloc[0].isoformat(),
                          "end_ts": ts_sorted.iloc[-1].isoformat(), "resampled_rows": int(len(y_all))},
        },
        timings={
            "cv_seconds": cv_seconds, "resample_seconds": resample_seconds, "fit_seconds": fit_seconds,
            "final_fit_seconds": final_fit_seconds,
            "predict_seconds": predict_seconds, "evaluate_seconds": evaluate_seconds,
            "threshold_seconds": threshold_seconds, "rule_baseline_seconds": rule_seconds,
            "total_seconds": time.perf_counter() - started,
        },
    )


def _cross_validate(estimator, X, y, folds, purged, resample, random_state,
                    fit_params: dict[str, Any]) -> tuple[dict[str, Any], np.ndarray]:
    """Scores of ``estimator`` over the purged folds; resampling runs inside each fold's training part.

    ``fit_params`` go to the estimator's ``fit``; those as long as ``X`` are cut to each fold's rows.
    The scores are those of sklearn's ``cross_validate`` (train scores on the fold's raw rows, never
    the resampled ones). A plain loop rather than ``cross_validate``: that one copies each fold's rows
    with fancy indexing, while a fold here is a slice view of ``X`` (``_rows``), one fold in memory at a time.

    Returns the scores and the out-of-fold probabilities of class 1: each fold's model on its test
    part, the test parts concatenated in fold order (that is, in time order).
    """
    from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

    score_of = {"accuracy": accuracy_score,
                "f1": lambda t, p: f1_score(t, p, zero_division=0),
                "precision": lambda t, p: precision_score(t, p, zero_division=0),
                "recall": lambda t, p: recall_score(t, p, zero_division=0)}
    n = len(X)
    raw: dict[str, list[float]] = {f"{part}_{metric}": [] for metric in CV_METRICS for part in ("train", "test")}
    oof_proba = []
    for train_idx, test_idx in folds:
        X_train, y_train = _rows(X, train_idx), _rows(y, train_idx)
        X_fit, y_fit = rebalance(X_train, y_train, random_state)[:2] if resample else (X_train, y_train)
        params = {key: value[train_idx] if np.ndim(value) == 1 and len(value) == n else value
                  for key, value in fit_params.items()}
        model = clone(estimator).fit(X_fit, y_fit, **params)
        del X_fit, y_fit
        X_test, y_test = _rows(X, test_idx), _rows(y, test_idx)
        for part, truth, pred in (("train", y_train, model.predict(X_train)), ("test", y_test, model.predict(X_test))):
            for metric in CV_METRICS:
                raw[f"{part}_{metric}"].append(float(score_of[metric](truth, pred)))
        oof_proba.append(predict_proba_positive(model, X_test))
    scores: dict[str, Any] = {
        "n_splits": len(folds),
        "purged_rows_per_fold": [int(p) for p in purged],
        "train_rows_per_fold": [int(tr.size) for tr, _ in folds],
        "test_rows_per_fold": [int(te.size) for _, te in folds],
    }
    for metric in CV_METRICS:
        for part in ("train", "test"):
            values = raw[f"{part}_{metric}"]
            scores[f"{part}_{metric}"] = values
            scores[f"mean_{part}_{metric}"] = float(np.mean(values))
    return scores, np.concatenate(oof_proba)


def rule_baseline_comparison(X: pd.DataFrame, y: np.ndarray, folds: list[tuple[np.ndarray, np.ndarray]],
                             model_pred: np.ndarray, timestamps: pd.DatetimeIndex, mints: np.ndarray | None,
                             pumps: PumpDefinition | None, *, model_type: str,
                             threshold_for: Callable[[np.ndarray], float]) -> dict[str, Any]:
    """The model against the volume/price rule (``RuleBaselineClassifier``) on the same evaluation rows.

    For every (training part, test part) of ``folds`` the rule's k and p are grid-searched on the
    raw (never resampled) training part (for event F1 at the event level) and it scores the test part;
    its alert threshold is then ``threshold_for(its out-of-fold probabilities)``, the same choice the
    model's alerts ``model_pred`` (on the test parts, concatenated in fold order) were made by, so both
    sides get the same tuning. With ``pumps`` (what a pump is: the labels' own or known events) and
    ``mints`` both are scored at the event level (``ml.events.event_f1``: pumps caught before the peak
    against notification precision); otherwise by row F1.
    ``applicable`` is False (with the ``reason``) when the inputs lack the rule's two features or the
    model is the rule itself. Rows are sorted by time, as in ``train_classifier``.
    """
    from pump_orchestration.ml.rules import RuleBaselineClassifier

    eval_idx = np.concatenate([test_idx for _, test_idx in folds])
    event_level = pumps is not None and mints is not None
    out: dict[str, Any] = {"level": "event" if event_level else "row", "score": "event_f1" if event_level else "f1",
                           "rows": int(eval_idx.size), "model_score": None, "rule_score": None}
    if model_type == "rule_baseline":
        return {**out, "applicable": False, "reason": "the model is the rule baseline itself"}
    rule_proba, thresholds = [], []
    for train_idx, test_idx in folds:
        events = {"mints": mints[train_idx], "timestamps": timestamps[train_idx], "pumps": pumps} if event_level else {}
        try:
            rule = RuleBaselineClassifier().fit(_rows(X, train_idx), y[train_idx], **events)
        except ValueError as exc:  # no volume_ratio_{w} / price_change_{w} among the inputs
            return {**out, "applicable": False, "reason": str(exc)}
        rule_proba.append(predict_proba_positive(rule, _rows(X, test_idx)))
        thresholds.append({"k": rule.k_, "p": rule.p_})
    rule_proba = np.concatenate(rule_proba)
    rule_threshold = threshold_for(rule_proba)
    rule_pred = (rule_proba > rule_threshold).astype(int)
    labels = y[eval_idx]
    if event_level:
        from pump_orchestration.ml.events import event_f1

        judge = pumps.judge(mints[eval_idx], timestamps[eval_idx], labels)
        if judge.events.empty:
            return {**out, "applicable": False, "reason": "no pump event among the evaluation rows"}
        figures = {}
        for who, alerts in (("model", model_pred), ("rule", rule_pred)):
            report = judge.report(alerts)
            figures[who] = {key: report[key] for key in (
                "events", "detected_before_peak", "false_alert_episodes", "false_alerts_per_coin_day",
                "episode_precision")}
            figures[who]["event_f1"] = event_f1(report)
    else:
        from sklearn.metrics import f1_score

        figures = {who: {"f1": float(f1_score(labels, alerts, zero_division=0))}
                   for who, alerts in (("model", model_pred), ("rule", rule_pred))}
    score = out["score"]
    return {**out, "applicable": True, "reason": None, "model_score": figures["model"][score],
            "rule_score": figures["rule"][score], "model": figures["model"], "rule": figures["rule"],
            "rule_thresholds": thresholds, "rule_alert_threshold": rule_threshold,
            "rule_features": list(rule.columns_)}
