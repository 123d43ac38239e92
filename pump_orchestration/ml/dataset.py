"""Turning coin_metrics rows into labelled model inputs — the one code path for training, testing and scoring.

Labels and features are computed on each coin's full loaded history (every
phase, plus the look-back rows before a window); ``phases`` and the window only
select which rows are *used*. Scoring builds its matrix with the same
``build_feature_matrix`` and the feature order stored with the model.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from pump_orchestration.ml.features import engineer_features, engineered_feature_names
from pump_orchestration.ml.labels import known_event_labels, labels_from_change, threshold_labels, time_based_change
from pump_orchestration.ml.request import FeatureSpec, LabelSpec

LABEL = "label"
FUTURE_CHANGE = "future_change_pct"


class DatasetError(ValueError):
    """The data cannot produce a usable dataset (empty window, one class, missing or all-NaN column...)."""


def make_labels(df: pd.DataFrame, spec: LabelSpec,
                known_events: pd.DataFrame | None = None) -> tuple[pd.Series, pd.Series | None]:
    """Labels (float 0/1, NaN = unlabelled) and, for time-based targets, the trade's exit change.

    A known-event spec labels from ``known_events`` (``mint``, ``start``, ``end``; see
    :func:`~pump_orchestration.ml.labels.known_event_labels`) and has no exit change.

    The exit change is the % change to the coin's last row at or before t + future_minutes, in every
    label mode: a trade opened on an alert is closed at the horizon, not at a peak nobody can time
    (``label_mode: within`` labels by the peak but still exits at the horizon). Simulated profit uses it.
    """
    if spec.known_events:
        if known_events is None:
            raise DatasetError("label_source: known_events needs the ml_known_events table; none was loaded")
        return known_event_labels(df, known_events, spec.lead_minutes), None
    if spec.target_var not in df.columns:
        raise DatasetError(f"target_var: column {spec.target_var!r} is not in the loaded data")
    if not spec.time_based:
        return threshold_labels(df, spec.target_var, spec.operator, spec.value), None
    change = time_based_change(df, spec.target_var, spec.future_minutes, mode=spec.mode, direction=spec.direction)
    labels = labels_from_change(change, spec.min_percent_change, spec.direction)
    if spec.mode != "end":
        change = time_based_change(df, spec.target_var, spec.future_minutes, mode="end", direction=spec.direction)
    return labels, change


def require_known_events(events: pd.DataFrame, mints, start: pd.Timestamp, end: pd.Timestamp) -> None:
    """Refuse a training window in which no known event of its coins (``mints``) lies: every label would be 0."""
    inside = events["mint"].isin(set(mints)) & (events["end"] >= start) & (events["start"] < end)
    if not inside.any():
        raise DatasetError(f"label_source known_events: no event of ml_known_events meets the window "
                           f"[{start.isoformat()}, {end.isoformat()}) for its coins; import the pumps of that "
                           "period with 'pump-orchestration import-events FILE.csv' or choose another window")


def build_feature_matrix(df: pd.DataFrame, spec: FeatureSpec) -> tuple[pd.DataFrame, dict[str, str]]:
    """Model inputs for every row of ``df``: base columns (as floats) then engineered features.

    Returns the matrix (aligned to ``df.index``) and the engineered features that
    were skipped with the reason: a column the data lacks, or one that is NULL on
    every row (a tracker that never fills it), which is treated the same way.
    """
    values, names, skipped = _feature_block(df, spec, None)
    return pd.DataFrame(values.T, index=df.index, columns=names, copy=False), skipped


def _feature_block(df: pd.DataFrame, spec: FeatureSpec,
                   rows: np.ndarray | None) -> tuple[np.ndarray, list[str], dict[str, str]]:
    """The (feature, row) float64 block of ``df``'s rows (or only the positions ``rows``), its column names and
    the skipped features: :func:`build_feature_matrix` and :func:`window_dataset` both build it here."""
    _require_base_features(df, spec)
    base = list(spec.base_features)
    skipped: dict[str, str] = {}
    source, engineered = df, []
    if spec.use_engineered:
        empty = [c for c in df.columns if c not in ("mint", "timestamp") and df[c].isna().all()]
        if empty:  # the other columns as views: DataFrame.drop would copy every one of them
            source = pd.DataFrame({c: df[c] for c in df.columns if c not in empty}, copy=False)
        engineered = engineered_feature_names(spec.windows, available_columns=source.columns)
    # One (column, row) block: base rows, then the engineered features computed straight into the
    # rest, so the matrix exists once (concatenating frames held it several times: 4x at 1 M rows).
    values = np.empty((len(base) + len(engineered), len(df) if rows is None else len(rows)), dtype="float64")
    for i, c in enumerate(base):
        column = df[c].to_numpy(dtype="float64")
        values[i] = column if rows is None else column[rows]
    values[: len(base)][np.isinf(values[: len(base)])] = np.nan
    if spec.use_engineered:
        result = engineer_features(source, windows=spec.windows, out=values[len(base):], rows=rows)
        for name, reason in result.attrs.get("skipped_features", {}).items():
            nulls = [c for c in empty if repr(c) in reason]
            skipped[name] = f"needs {', '.join(map(repr, nulls))}, NULL on every loaded row" if nulls else reason
    names = base + engineered
    duplicated = pd.Index(names).duplicated()
    if duplicated.any():  # an engineered name that is also a base column: the base one wins
        values = values[~duplicated]
        names = [name for name, dup in zip(names, duplicated) if not dup]
    return values, names, skipped


def _require_base_features(df: pd.DataFrame, spec: FeatureSpec) -> None:
    missing = [c for c in spec.base_features if c not in df.columns]
    if missing:
        raise DatasetError(f"features: column(s) {missing} not in the loaded data; available: {sorted(df.columns)}")


def feature_columns(frame: pd.DataFrame, names: list[str]) -> pd.DataFrame:
    """The model matrix ``frame[names]`` as views of ``frame``'s columns, e.g. of ``engineered_features``.

    ``frame[names]`` copies every column (a list selection takes): a second matrix beside the frame during
    fitting, 3.6 GiB at 10 M rows x 67 features. XGBoost reads the columns one by one without a copy;
    scikit-learn models turn them into one array of the rows they fit (as their float32 trees do anyway).
    """
    return pd.DataFrame({name: frame[name] for name in names}, copy=False)


@dataclass
class LabelledInputs:
    """Rows ready for an estimator, with what was dropped on the way."""

    X: pd.DataFrame
    y: pd.Series
    timestamps: pd.Series
    mints: pd.Series
    future_change_pct: pd.Series | None
    stats: dict


def select_rows(
    X: pd.DataFrame,
    labels: pd.Series,
    frame: pd.DataFrame,
    *,
    start: pd.Timestamp,
    end: pd.Timestamp,
    phases: tuple[int, ...] = (),
    future_change: pd.Series | None = None,
) -> LabelledInputs:
    """Keep rows inside [start, end), in ``phases``, labelled and with finite inputs (``X`` is aligned to
    ``frame``; the kept rows are copied).

    Fails with a message naming the problem when the window is empty, a feature
    is NaN on every row, or nothing is left.
    """
    if not X.index.equals(frame.index):
        raise ValueError("X: its rows must be frame's rows, in frame's order (same index)")
    positions, stats = window_rows(labels, frame, start=start, end=end, phases=phases)
    finite = _finite_rows(len(positions), X.columns, (X.iloc[:, i].to_numpy(dtype="float64")[positions]
                                                      for i in range(X.shape[1])), stats)
    return _inputs(X.iloc[positions[finite]], labels, frame, positions[finite], future_change, stats)


def window_dataset(
    frame: pd.DataFrame,
    labels: pd.Series,
    spec: FeatureSpec,
    *,
    start: pd.Timestamp,
    end: pd.Timestamp,
    phases: tuple[int, ...] = (),
    future_change: pd.Series | None = None,
) -> tuple[LabelledInputs, dict[str, str]]:
    """:func:`build_feature_matrix` then :func:`select_rows` of [start, end), computing only the rows it keeps.

    Same inputs, values and errors, but the matrix exists once, for the window's labelled rows: features are
    computed for those rows only (every loaded row still serves as history) and rows with a non-finite
    input are dropped by moving the rest up inside the same block. Building the matrix of every loaded row,
    then copying the kept ones, held 2.4x the kept matrix at 10 M rows. Returns the inputs and the skipped
    features with their reasons.
    """
    _require_base_features(frame, spec)
    positions, stats = window_rows(labels, frame, start=start, end=end, phases=phases)
    values, names, skipped = _feature_block(frame, spec, positions)
    finite = _finite_rows(len(positions), names, values, stats)
    kept = int(finite.sum())
    if kept < len(finite):
        for column in values:
            column[:kept] = column[finite]
        values = values[:, :kept]
    positions = positions[finite]
    X = pd.DataFrame(values.T, index=frame.index[positions], columns=names, copy=False)
    return _inputs(X, labels, frame, positions, future_change, stats), skipped


def window_rows(labels: pd.Series, frame: pd.DataFrame, *, start: pd.Timestamp, end: pd.Timestamp,
                phases: tuple[int, ...] = ()) -> tuple[np.ndarray, dict]:
    """Positions of ``frame``'s rows inside [start, end), in ``phases`` and labelled (``labels`` aligned to
    ``frame``), with their counts; fails naming the problem when none is left."""
    labels = labels if labels.index.equals(frame.index) else labels.reindex(frame.index)
    ts = frame["timestamp"]
    in_window = (ts >= start) & (ts < end)
    n_window = int(in_window.sum())
    if n_window == 0:
        raise DatasetError(f"empty window: no coin_metrics rows in [{start.isoformat()}, {end.isoformat()})")
    keep = in_window
    if phases:
        if "phase_id_at_time" not in frame.columns:
            raise DatasetError("phases: the data has no phase_id_at_time column")
        keep = keep & frame["phase_id_at_time"].isin(list(phases))
        if not keep.any():
            raise DatasetError(f"phases: no rows of phases {list(phases)} in the window")
    n_phase = int(keep.sum())
    labelled = keep.to_numpy(dtype=bool) & labels.notna().to_numpy()
    if not labelled.any():
        raise DatasetError(
            f"no labelled rows: all {n_phase} rows in the window lack a complete label horizon "
            "(the coins' data ends before t + future_minutes) or a target value"
        )
    stats = {"rows_in_window": n_window, "rows_after_phase_filter": n_phase,
             "rows_unlabelled": n_phase - int(labelled.sum())}
    return np.flatnonzero(labelled), stats


def _finite_rows(n_rows: int, names, columns, stats: dict) -> np.ndarray:
    """Mask of the rows whose every input column is finite; adds the drop counts to ``stats``.

    Checked one column at a time: a (rows x features) mask beside the matrix took 1.3 GiB at 10 M rows.
    """
    finite, all_nan, dropped_report = np.ones(n_rows, dtype=bool), [], {}
    for name, column in zip(names, columns):
        finite_cells = np.isfinite(column)
        if not finite_cells.any():
            all_nan.append(name)
        bad = len(finite_cells) - int(finite_cells.sum())
        if bad:
            dropped_report[name] = bad
        finite &= finite_cells
    if all_nan:
        raise DatasetError(f"feature(s) {all_nan} are NaN on every labelled row of the window; "
                           "drop them from features or check the column in coin_metrics")
    n_dropped = len(finite) - int(finite.sum())
    if n_dropped == len(finite):
        raise DatasetError(f"every labelled row has a NaN/inf input; counts per column: {dropped_report}")
    stats.update(rows_dropped_non_finite=n_dropped, non_finite_by_column=dropped_report,
                 rows_used=len(finite) - n_dropped)
    return finite


def _inputs(X: pd.DataFrame, labels: pd.Series, frame: pd.DataFrame, positions: np.ndarray,
            future_change: pd.Series | None, stats: dict) -> LabelledInputs:
    return LabelledInputs(
        X=X,
        y=labels.iloc[positions].astype("int64"),
        timestamps=frame["timestamp"].iloc[positions],
        mints=frame["mint"].iloc[positions],
        future_change_pct=None if future_change is None else future_change.iloc[positions],
        stats=stats,
    )
