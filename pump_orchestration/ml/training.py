"""Fitting one classifier on a labelled dataset: checks, purged time-series CV, SMOTE, metrics.

All validation respects time: rows are sorted by timestamp first, every training
part lies strictly before its test part, and with a ``horizon`` (time-based
targets) training rows whose label looks into the test part are purged.
Resampling only ever touches a training part.
"""
from __future__ import annotations

import numbers
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from pump_orchestration.ml.metrics import DEFAULT_FEE_PCT, classification_metrics, feature_importance
from pump_orchestration.ml.models import build_estimator, validate_params

#: Every CV fold (and the hold-out test part) must hold at least this many rows.
MIN_ROWS_PER_FOLD = 10
#: Positive shares of a training part inside this range are left alone by SMOTE.
BALANCED_SHARE = (0.3, 0.7)
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


def rebalance(X: pd.DataFrame, y: pd.Series, random_state: int = 42) -> tuple[pd.DataFrame, pd.Series, dict]:
    """SMOTE + random under-sampling of a TRAINING part whose positive share is outside 30-70 %.

    SMOTE grows the minority to half the majority (``k_neighbors = min(5, minority - 1)``),
    then ``RandomUnderSampler`` shrinks the majority to 1:1. Returns the (possibly
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
        from imblearn.over_sampling import SMOTE
        from imblearn.under_sampling import RandomUnderSampler

        X_res, y_res = SMOTE(sampling_strategy=0.5, k_neighbors=min(5, minority - 1),
                             random_state=random_state).fit_resample(X, y)
        X_res, y_res = RandomUnderSampler(sampling_strategy=1.0, random_state=random_state).fit_resample(X_res, y_res)
        return X_res, y_res, {
            "applied": True,
            "reason": f"positive share {share:.1%} is outside 30-70 %: SMOTE to 1:2, then under-sampling to 1:1",
            "before": before, "after": _balance(y_res),
        }
    return X, y, {"applied": False, "reason": reason, "before": before, "after": before}


def _rebalance_rows(X, y, random_state):
    """``FunctionSampler`` hook: ``rebalance`` without the report, run on each CV fold's training part."""
    X_res, y_res, _ = rebalance(X, y, random_state)
    return X_res, y_res


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
                     params: dict[str, Any] | None = None, use_smote: bool = True,
                     use_timeseries_split: bool = True, cv_splits: int = 5, horizon: pd.Timedelta | None = None,
                     future_change_pct: pd.Series | None = None, direction: str = "up",
                     fee_pct: float = DEFAULT_FEE_PCT, random_state: int = 42, n_jobs: int | None = None,
                     progress: ProgressCallback | None = None) -> TrainingResult:
    """Train ``model_type`` on ``X``/``y`` with order-respecting validation.

    ``X`` holds the final features in training order; ``y`` (0/1), ``timestamps``
    and ``future_change_pct`` (time-based targets; enables the simulated profit)
    share its index. Rows are sorted by timestamp (ties by index label, so the input
    row order never matters). ``horizon`` (``future_minutes`` for time-based targets)
    purges training rows with ``timestamp + horizon >= first test timestamp``.

    With ``use_timeseries_split``: ``TimeSeriesSplit(cv_splits)`` folds, purged, scored
    by ``cross_validate`` on an imblearn Pipeline (resampling inside each fold's
    training part); the final split is the last fold. Otherwise a chronological
    80/20 hold-out (not recommended: one test period, no CV). ``use_smote`` applies
    ``rebalance`` to training parts only. The reported metrics and importances come from
    the model fitted on the split's training part; the returned estimator is then fitted
    on all rows (``split["final_fit"]`` says which). ``progress(fraction, message)`` is
    called at stage boundaries.

    Raises ``TrainingDataError`` for unusable data and ``ValueError`` for bad arguments.
    """
    started = time.perf_counter()

    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, message)

    merged_params = validate_params(model_type, params)
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
    if not pd.api.types.is_datetime64_any_dtype(timestamps):
        raise TrainingDataError(f"timestamps must be datetimes, got dtype {timestamps.dtype}")
    if timestamps.isna().any():
        raise TrainingDataError(f"timestamps has {int(timestamps.isna().sum())} missing values")
    _check_features(X)
    y = _check_labels(y)

    # Sort by time, ties by index label: the same rows in any order give the same model.
    order = timestamps.sort_index(kind="stable").sort_values(kind="stable").index
    X = X.loc[order].reset_index(drop=True)
    y = y.loc[order].reset_index(drop=True)
    ts_sorted = timestamps.loc[order]
    ts = ts_sorted.to_numpy(dtype="datetime64[ns]")  # UTC instants, also for tz-aware input
    change = None if future_change_pct is None else future_change_pct.loc[order].to_numpy(dtype=float)
    y_values = y.to_numpy()
    n = len(X)
    horizon_td = None if horizon is None else pd.Timedelta(horizon).to_timedelta64()

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

    def estimator():
        return build_estimator(model_type, merged_params, random_state=random_state, n_jobs=n_jobs,
                               n_samples=len(train_idx))

    cv_scores, gap, cv_seconds = None, None, 0.0
    if use_timeseries_split:
        report(0.05, f"cross-validating {cv_splits} time-series folds on {n} rows")
        t0 = time.perf_counter()
        cv_scores = _cross_validate(estimator(), X, y, folds, purged, use_smote, random_state)
        gap = cv_scores["mean_train_accuracy"] - cv_scores["mean_test_accuracy"]
        cv_seconds = time.perf_counter() - t0

    X_train, y_train = X.iloc[train_idx], y.iloc[train_idx]
    X_test, y_test = X.iloc[test_idx], y.iloc[test_idx]
    t0 = time.perf_counter()
    if use_smote:
        X_fit, y_fit, resampling = rebalance(X_train, y_train, random_state)
    else:
        X_fit, y_fit = X_train, y_train
        balance = _balance(y_train)
        resampling = {"applied": False, "reason": "use_smote is off", "before": balance, "after": balance}
    resample_seconds = time.perf_counter() - t0

    report(0.6, f"fitting {model_type} on {len(y_fit)} rows")
    t0 = time.perf_counter()
    model = estimator().fit(X_fit, y_fit)
    fit_seconds = time.perf_counter() - t0

    report(0.75, f"evaluating on {len(test_idx)} test rows")
    t0 = time.perf_counter()
    test_pred = model.predict(X_test)
    test_proba = predict_proba_positive(model, X_test)
    predict_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    test_change = None if change is None else change[test_idx]
    train_change = None if change is None else change[train_idx]
    metrics = classification_metrics(y_test, test_pred, test_proba, test_change, direction, fee_pct)
    train_metrics = classification_metrics(y_train, model.predict(X_train), predict_proba_positive(model, X_train),
                                           train_change, direction, fee_pct)
    importance = feature_importance(model, list(X.columns), X_test, y_test)
    evaluate_seconds = time.perf_counter() - t0

    # The figures above come from the model fitted before the test part; the stored model is then fitted on
    # every labelled row, so the newest part of the window (the most relevant data) trains it too.
    report(0.85, f"final fit of {model_type} on all {n} labelled rows")
    t0 = time.perf_counter()
    X_all, y_all = (rebalance(X, y, random_state)[:2] if use_smote else (X, y))
    final = build_estimator(model_type, merged_params, random_state=random_state, n_jobs=n_jobs,
                            n_samples=n).fit(X_all, y_all)
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
            "total_seconds": time.perf_counter() - started,
        },
    )


def _cross_validate(estimator, X, y, folds, purged, use_smote, random_state) -> dict[str, Any]:
    """``cross_validate`` over the purged folds; resampling runs inside each fold's training part."""
    from sklearn.metrics import f1_score, make_scorer, precision_score, recall_score
    from sklearn.model_selection import cross_validate

    if use_smote:
        from imblearn import FunctionSampler
        from imblearn.pipeline import Pipeline

        # The sampler is a pipeline step, so it runs on fit only: scoring sees raw fold rows.
        estimator = Pipeline([
            ("resample", FunctionSampler(func=_rebalance_rows, validate=False,
                                         kw_args={"random_state": random_state})),
            ("model", estimator),
        ])
    scoring = {
        "accuracy": "accuracy",
        "f1": make_scorer(f1_score, zero_division=0),
        "precision": make_scorer(precision_score, zero_division=0),
        "recall": make_scorer(recall_score, zero_division=0),
    }
    raw = cross_validate(estimator, X, y, cv=folds, scoring=scoring, return_train_score=True,
                         error_score="raise")
    scores: dict[str, Any] = {
        "n_splits": len(folds),
        "purged_rows_per_fold": [int(p) for p in purged],
        "train_rows_per_fold": [int(tr.size) for tr, _ in folds],
        "test_rows_per_fold": [int(te.size) for _, te in folds],
    }
    for metric in CV_METRICS:
        for part in ("train", "test"):
            values = [float(v) for v in raw[f"{part}_{metric}"]]
            scores[f"{part}_{metric}"] = values
            scores[f"mean_{part}_{metric}"] = float(np.mean(values))
    return scores
