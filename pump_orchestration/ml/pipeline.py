"""The training pipeline for one request on one window, and walk-forward evaluation built from it.

The Dagster assets call these steps one per asset; walk-forward calls them in a
loop over windows, computing the (past-only) features once for the whole range.
"""
from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Callable

import pandas as pd

from pump_orchestration.ml.dataset import (
    FUTURE_CHANGE,
    LABEL,
    DatasetError,
    LabelledInputs,
    build_feature_matrix,
    make_labels,
    require_known_events,
    select_rows,
    window_dataset,
)
from pump_orchestration.ml.records import TrainedModel
from pump_orchestration.ml.request import RequestValidationError, TrainingRequest

Progress = Callable[[float, str], None]


def label_frame(frame: pd.DataFrame, request: TrainingRequest, end: pd.Timestamp,
                known_events: pd.DataFrame | None = None) -> pd.DataFrame:
    """Rows before ``end`` with the request's label and future change; no label looks at or past ``end``.

    ``known_events`` (``ml_known_events``) is needed by, and only read for, ``label_source: known_events``.
    """
    df = frame[frame["timestamp"] < end].copy()
    labels, change = make_labels(df, request.label_spec, known_events)
    df[LABEL] = labels
    df[FUTURE_CHANGE] = change if change is not None else float("nan")
    return df


def window_inputs(
    labelled: pd.DataFrame, X: pd.DataFrame, request: TrainingRequest, start: pd.Timestamp, end: pd.Timestamp
) -> LabelledInputs:
    """The labelled, finite model inputs of [start, end) in the request's phases."""
    # .loc would copy the whole matrix even when X is already aligned (as in feature_frame).
    aligned = X if X.index.equals(labelled.index) else X.loc[labelled.index]
    return select_rows(
        aligned, labelled[LABEL], labelled, start=start, end=end, phases=request.phases,
        future_change=labelled[FUTURE_CHANGE] if request.label_spec.time_based else None,
    )


def feature_frame(
    labelled: pd.DataFrame, request: TrainingRequest, start: pd.Timestamp, end: pd.Timestamp
) -> tuple[pd.DataFrame, list[str], dict[str, str], dict]:
    """The model inputs of the labelled rows of [start, end) as one frame, ready for ``fit_request``.

    Columns: the feature names, then ``LABEL``, ``FUTURE_CHANGE``, ``timestamp`` and ``mint``.
    Returns (frame, feature names, skipped features with their reasons, selection stats).
    """
    inputs, skipped = window_dataset(
        labelled, labelled[LABEL], request.feature_spec, start=start, end=end, phases=request.phases,
        future_change=labelled[FUTURE_CHANGE] if request.label_spec.time_based else None,
    )
    feature_names = list(inputs.X.columns)
    out = inputs.X  # the window's own block: no second copy of the matrix
    out[LABEL] = inputs.y
    out[FUTURE_CHANGE] = inputs.future_change_pct if inputs.future_change_pct is not None else float("nan")
    out["timestamp"] = inputs.timestamps
    out["mint"] = inputs.mints
    out.index = pd.RangeIndex(len(out))  # reset_index would copy every column
    return out, feature_names, skipped, inputs.stats


def fit_request(
    X: pd.DataFrame,
    y: pd.Series,
    timestamps: pd.Series,
    future_change: pd.Series | None,
    request: TrainingRequest,
    *,
    params: dict,
    train_start: pd.Timestamp,
    train_end: pd.Timestamp,
    dataset_stats: dict | None = None,
    skipped_features: dict | None = None,
    stage_seconds: dict | None = None,
    progress: Progress | None = None,
    n_jobs: int | None = None,
    mints: pd.Series | None = None,
    known_events: pd.DataFrame | None = None,
) -> TrainedModel:
    """Train the request's classifier on prepared inputs; ``params`` are the merged hyper-parameters.

    ``n_jobs`` overrides ``request.n_jobs``; both None = every available core (``ml.models.available_cores``).
    ``mints`` (each row's coin) lets the operating point and the rule-baseline gate count pump events: for
    ``label_source: known_events`` those of ``known_events`` (needed then), else the labels' own.
    """
    if request.label_spec.known_events and known_events is None:
        raise ValueError("known_events: a label_source known_events request needs the known-event table")
    from pump_orchestration.ml.training import train_classifier

    t0 = time.perf_counter()
    result = train_classifier(
        X, y, timestamps,
        model_type=request.model_type,
        params=params,
        imbalance=request.imbalance_method,
        calibration=request.calibration,
        use_timeseries_split=request.use_timeseries_split,
        cv_splits=request.cv_splits,
        horizon=request.label_spec.horizon,
        future_change_pct=future_change if request.label_spec.time_based else None,
        direction=request.direction,
        fee_pct=request.fee_pct,
        random_state=request.random_state,
        progress=progress,
        n_jobs=request.n_jobs if n_jobs is None else n_jobs,
        mints=mints,
        known_events=known_events if request.label_spec.known_events else None,
        threshold_objective=request.threshold_objective,
        max_false_alarms_per_coin_day=request.max_false_alarms_per_coin_day,
    )
    return TrainedModel(
        request=request,
        train_start=train_start,
        train_end=train_end,
        result=result,
        dataset_stats=dataset_stats or {},
        skipped_features=skipped_features or {},
        stage_seconds={**(stage_seconds or {}), "train": round(time.perf_counter() - t0, 3)},
    )


@dataclass(frozen=True)
class Window:
    """One walk-forward step: train on [train_start, train_end), test on [test_start, test_end)."""

    train_start: pd.Timestamp
    train_end: pd.Timestamp
    test_start: pd.Timestamp
    test_end: pd.Timestamp


def plan_windows(
    range_start: pd.Timestamp, range_end: pd.Timestamp, *, train_hours: float, test_hours: float, step_hours: float
) -> list[Window]:
    """Consecutive train/test windows inside [range_start, range_end), moving forward by ``step_hours``.

    Each test window starts where its training window ends; training labels only use
    data before that boundary, so the last label horizon of training rows is purged.
    """
    problems = [f"{name}: must be > 0, got {value}" for name, value in
                (("train_hours", train_hours), ("test_hours", test_hours), ("step_hours", step_hours)) if value <= 0]
    if problems:
        raise RequestValidationError(problems)
    train, test, step = (pd.Timedelta(hours=h) for h in (train_hours, test_hours, step_hours))
    windows = []
    test_start = range_start + train
    while test_start + test <= range_end:
        windows.append(Window(test_start - train, test_start, test_start, test_start + test))
        test_start += step
    if not windows:
        raise RequestValidationError([
            f"train_hours + test_hours ({train_hours} + {test_hours} h) do not fit in the selected days "
            f"[{range_start.isoformat()}, {range_end.isoformat()}); select more days or shorten the windows"])
    return windows


def window_model_name(prefix: str, window: Window) -> str:
    """Name of the model trained for ``window`` (unique per prefix and test start)."""
    return f"{prefix}_wf_{window.test_start:%Y%m%dT%H%M}"


@dataclass
class WindowOutcome:
    """What one walk-forward step produced (not yet written anywhere)."""

    window: Window
    trained: TrainedModel
    test: dict
    comparison: object | None  # evaluation.ComparisonResult against the previous window's model


def walk_forward(
    frame: pd.DataFrame,
    request: TrainingRequest,
    windows: list[Window],
    *,
    params: dict,
    progress: Progress | None = None,
    n_bootstrap: int = 1000,
    known_events: pd.DataFrame | None = None,
) -> tuple[list[WindowOutcome], list[dict], dict]:
    """Train, test and compare model by model over ``windows``; features are built once for all of them.

    A window whose data cannot make a model or a report (no rows, one class...) is skipped
    with its reason (so is one without a known event, for ``label_source: known_events``), and the
    next one is compared with the last model that was made.
    Returns the outcomes, the skipped windows and timing figures ({"features", "labels",
    "fit", "evaluate"} seconds); fails when every window is skipped.
    """
    from pump_orchestration.ml.evaluation import ModelUnderTest, compare_models, evaluate_model
    from pump_orchestration.ml.training import TrainingDataError

    t0 = time.perf_counter()
    X, skipped = build_feature_matrix(frame, request.feature_spec)
    timings = {"features": time.perf_counter() - t0, "labels": 0.0, "fit": 0.0, "evaluate": 0.0}
    features_cache = {request.feature_spec: (X, skipped)}
    outcomes: list[WindowOutcome] = []
    skipped_windows: list[dict] = []
    previous: ModelUnderTest | None = None
    for i, window in enumerate(windows):
        if progress:
            progress(i / len(windows), f"window {i + 1}/{len(windows)}: train {window.train_start:%Y-%m-%d %H:%M} "
                                      f"→ test {window.test_start:%Y-%m-%d %H:%M}")
        try:
            t0 = time.perf_counter()
            if request.label_spec.known_events:
                require_known_events(known_events, frame["mint"].unique(), window.train_start, window.train_end)
            labelled = label_frame(frame, request, window.train_end, known_events)
            inputs = window_inputs(labelled, X, request, window.train_start, window.train_end)
            timings["labels"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            trained = fit_request(
                inputs.X, inputs.y, inputs.timestamps, inputs.future_change_pct,
                dataclasses.replace(request, name=window_model_name(request.name, window)),
                params=params, train_start=window.train_start, train_end=window.train_end,
                dataset_stats=inputs.stats, skipped_features=skipped, mints=inputs.mints, known_events=known_events,
            )
            timings["fit"] += time.perf_counter() - t0
            t0 = time.perf_counter()
            model = ModelUnderTest.from_trained(trained)
            test = evaluate_model(model, frame, window.test_start, window.test_end, features_cache=features_cache,
                                  known_events=known_events)
        except (DatasetError, TrainingDataError) as exc:
            skipped_windows.append({"test_start": window.test_start.isoformat(), "reason": str(exc)})
            continue
        comparison = None
        if previous is not None:
            comparison = compare_models(model, previous, frame, window.test_start, window.test_end,
                                        n_bootstrap=n_bootstrap, features_cache=features_cache,
                                        known_events=known_events)
        timings["evaluate"] += time.perf_counter() - t0
        outcomes.append(WindowOutcome(window, trained, test, comparison))
        previous = model
    if not outcomes:
        raise DatasetError(f"walk-forward: every one of the {len(windows)} windows was skipped; first reason: "
                           f"{skipped_windows[0]['reason']}")
    if progress:
        progress(1.0, f"walk-forward: {len(outcomes)} windows done, {len(skipped_windows)} skipped")
    return outcomes, skipped_windows, {k: round(v, 3) for k, v in timings.items()}
