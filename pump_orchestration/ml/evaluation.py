"""Testing a trained model on a later window and comparing two models on the same rows.

A model is tested exactly as it was trained: its stored ``LabelSpec`` builds
the labels, its stored ``FeatureSpec`` and feature order build the inputs
(through ``ml/dataset.py``, the one code path of training, testing and scoring),
and only rows before ``test_end`` feed the labels, so no test label looks past
the test window, just as no training label looks past ``train_end``.

``frame`` is always raw ``coin_metrics`` rows covering the test window plus the
look-back rows before it (what the ``coin_metrics_slice`` asset produces), in
any order. Rows after ``test_end`` may be present; they never reach a label.

Comparisons score both models on exactly the same rows and pick a winner by a
chosen rule (:func:`choose_winner`, ``winner_by``); the significance of the difference comes
from McNemar's exact test and a paired bootstrap of the F1 difference.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from pump_orchestration.ml.dataset import DatasetError, build_feature_matrix, make_labels, select_rows
from pump_orchestration.ml.metrics import DECISION_THRESHOLD, DEFAULT_FEE_PCT, classification_metrics
from pump_orchestration.ml.model_store import LoadedModel
from pump_orchestration.ml.records import TrainedModel
from pump_orchestration.ml.request import FeatureSpec, LabelSpec
from pump_orchestration.ml.training import predict_proba_positive
from pump_orchestration.vocabulary import WINNER_BY, to_utc

#: A test accuracy more than this below the training accuracy marks the model as overfitted.
OVERFIT_GAP = 0.10
#: Significance level of both the McNemar test and the bootstrap CI (95 %).
ALPHA = 0.05
#: ``winner_by`` -> the test figures compared in turn (later ones only break a tie of the earlier).
WINNER_KEYS = {"event_f1": ("event_f1", "f1", "roc_auc"), "f1": ("f1", "roc_auc"), "roc_auc": ("roc_auc",)}
_WINNER_NAMES = {"event_f1": "event F1", "f1": "F1", "roc_auc": "ROC-AUC"}

# Accuracy/F1 are ratios of row counts: differences below this are float rounding, not a real gap.
_ROUNDING = 1e-9
# ml_test_results column -> classification_metrics key.
_TEST_METRIC_COLUMNS = {
    "accuracy": "accuracy", "f1_score": "f1", "precision_score": "precision", "recall": "recall",
    "roc_auc": "roc_auc", "mcc": "mcc", "fpr": "fpr", "fnr": "fnr", "simulated_profit_pct": "simulated_profit_pct",
}
# ml_comparisons a_/b_ suffix -> ml_test_results column.
_COMPARISON_METRIC_COLUMNS = {
    "accuracy": "accuracy", "f1": "f1_score", "precision": "precision_score", "recall": "recall",
    "roc_auc": "roc_auc", "mcc": "mcc", "fpr": "fpr", "fnr": "fnr", "simulated_profit_pct": "simulated_profit_pct",
}
_TRAIN_METRICS = ("accuracy", "f1", "precision", "recall")


def _check_window(start: pd.Timestamp, end: pd.Timestamp) -> None:
    if not start < end:
        raise ValueError(f"test_start ({start.isoformat()}) must be before test_end ({end.isoformat()})")


@dataclass
class ModelUnderTest:
    """A fitted estimator with everything needed to rebuild its inputs and labels on new data.

    ``train_metrics`` are the metrics stored with the model (``ml_models.training_*``,
    i.e. the training run's hold-out part); degradation is measured against them.
    ``alert_threshold`` is its operating point (``ml_models.alert_threshold``, chosen on
    out-of-fold predictions at training); models stored before it have 0.5, ``predict``'s cut.
    """

    model_id: int | None
    name: str
    estimator: Any
    feature_names: list[str]
    label_spec: LabelSpec
    feature_spec: FeatureSpec
    phases: tuple[int, ...]
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    train_metrics: dict[str, float | None]
    fee_pct: float = DEFAULT_FEE_PCT
    alert_threshold: float = DECISION_THRESHOLD

    @classmethod
    def from_row(cls, row: dict, loaded: LoadedModel) -> ModelUnderTest:
        """Build from an ``ml_models`` row and its verified artifact.

        The artifact's metadata (label/feature spec and phases written at training
        time) is preferred; the row's columns and ``params["_request"]`` are the
        fallback for artifacts written without them. The artifact's feature order
        is authoritative (the estimator was fitted on it); a row listing other
        features means row and artifact do not belong together.
        """
        meta = loaded.metadata or {}
        request = (row.get("params") or {}).get("_request") or {}
        if meta.get("label_spec"):
            label_spec = LabelSpec(**meta["label_spec"])
        elif row.get("future_minutes") is not None:
            label_spec = LabelSpec(
                target_var=row["target_variable"], time_based=True, future_minutes=row["future_minutes"],
                min_percent_change=row["price_change_percent"], direction=row.get("target_direction") or "up",
                mode=row.get("label_mode") or request.get("label_mode") or "end",
            )
        else:
            label_spec = LabelSpec(target_var=row["target_variable"], time_based=False,
                                   operator=row["target_operator"], value=row["target_value"])
        if meta.get("feature_spec"):
            spec = meta["feature_spec"]
            feature_spec = FeatureSpec(base_features=tuple(spec["base_features"]),
                                       use_engineered=bool(spec["use_engineered"]), windows=tuple(spec["windows"]))
        else:
            feature_spec = FeatureSpec(base_features=tuple(request["base_features"]),
                                       use_engineered=bool(request["use_engineered_features"]),
                                       windows=tuple(request["feature_engineering_windows"]))
        feature_names = [str(f) for f in (loaded.feature_names or row.get("features") or [])]
        if row.get("features") and list(row["features"]) != feature_names:
            raise ValueError(f"model {row.get('name')!r}: ml_models.features differs from the artifact's feature "
                             "order; the row and the artifact do not belong together")
        phases = meta["phases"] if "phases" in meta else (row.get("phases") or [])
        return cls(
            model_id=row.get("id"),
            name=row["name"],
            estimator=loaded.estimator,
            feature_names=feature_names,
            label_spec=label_spec,
            feature_spec=feature_spec,
            phases=tuple(int(p) for p in phases),
            train_start=to_utc(row["train_start"], "train_start"),
            train_end=to_utc(row["train_end"], "train_end"),
            train_metrics={m: row.get(f"training_{m}") for m in _TRAIN_METRICS},
            fee_pct=float(request.get("fee_pct", DEFAULT_FEE_PCT)),
            alert_threshold=DECISION_THRESHOLD if row.get("alert_threshold") is None else float(row["alert_threshold"]),
        )

    @classmethod
    def from_trained(cls, trained: TrainedModel, model_id: int | None = None) -> ModelUnderTest:
        """Build from a just-trained model (walk-forward tests it before it has an ``ml_models`` row)."""
        request, result = trained.request, trained.result
        return cls(
            model_id=model_id,
            name=request.name,
            estimator=result.estimator,
            feature_names=list(result.feature_names),
            label_spec=request.label_spec,
            feature_spec=request.feature_spec,
            phases=tuple(request.phases),
            train_start=to_utc(trained.train_start, "train_start"),
            train_end=to_utc(trained.train_end, "train_end"),
            train_metrics={m: result.metrics[m] for m in _TRAIN_METRICS},
            fee_pct=float(request.fee_pct),
            alert_threshold=float(result.operating_point["threshold"]),
        )


def overlap_check(train_start, train_end, test_start, test_end) -> tuple[bool, str | None]:
    """Whether [test_start, test_end) overlaps [train_start, train_end), with a warning note if so.

    Windows are half-open, so a test window starting exactly at ``train_end`` does
    not overlap. An overlap only warns (metrics may be optimistic); it never blocks.
    """
    train_start, train_end = to_utc(train_start, "train_start"), to_utc(train_end, "train_end")
    test_start, test_end = to_utc(test_start, "test_start"), to_utc(test_end, "test_end")
    _check_window(test_start, test_end)
    overlap = min(train_end, test_end) - max(train_start, test_start)
    if overlap <= pd.Timedelta(0):
        return False, None
    hours = overlap / pd.Timedelta(hours=1)
    share = 100.0 * (overlap / (test_end - test_start))
    return True, (f"test window overlaps the training window by {hours:.1f} h ({share:.1f} % of the test "
                  "window); metrics may be optimistic")


def _gap(train: float | None, test: float | None) -> float | None:
    return None if train is None or test is None else float(train) - float(test)


def degradation(train_metrics: dict, test_metrics: dict) -> dict[str, float | bool | None]:
    """Train − test accuracy and F1, and ``is_overfitted`` = accuracy gap > :data:`OVERFIT_GAP`.

    Both dicts use ``classification_metrics`` keys (``accuracy``, ``f1``); a missing
    value gives ``None`` for the gaps that need it.
    """
    accuracy_gap = _gap(train_metrics.get("accuracy"), test_metrics.get("accuracy"))
    return {
        "accuracy_degradation": accuracy_gap,
        "f1_degradation": _gap(train_metrics.get("f1"), test_metrics.get("f1")),
        # A gap of exactly 0.10 (e.g. 0.8 - 0.7 = 0.10000000000000009 in floats) is not overfitted.
        "is_overfitted": None if accuracy_gap is None else accuracy_gap > OVERFIT_GAP + _ROUNDING,
    }


@dataclass
class ScoredRows:
    """One model's labels and predictions on the rows of a window it can score (aligned arrays)."""

    index: pd.Index  # labels of ``frame``'s rows
    y_true: np.ndarray  # int 0/1, the model's own label spec
    y_pred: np.ndarray  # int 0/1: probability above the alert threshold
    proba: np.ndarray  # probability of class 1
    future_change_pct: np.ndarray | None  # time-based targets only
    timestamps: pd.Series
    mints: pd.Series
    stats: dict
    threshold: float = DECISION_THRESHOLD

    def take(self, rows: pd.Index) -> ScoredRows:
        """The subset ``rows`` (all must be scored rows), in that order."""
        pos = self.index.get_indexer(rows)
        if (pos < 0).any():
            raise ValueError(f"{int((pos < 0).sum())} of the requested rows were not scored")
        return ScoredRows(
            index=self.index[pos], y_true=self.y_true[pos], y_pred=self.y_pred[pos], proba=self.proba[pos],
            future_change_pct=None if self.future_change_pct is None else self.future_change_pct[pos],
            timestamps=self.timestamps.iloc[pos], mints=self.mints.iloc[pos],
            stats={**self.stats, "rows_used": int(len(pos))}, threshold=self.threshold,
        )


def score_rows(model: ModelUnderTest, frame: pd.DataFrame, start, end, *,
               features_cache: dict | None = None, threshold: float | None = None,
               known_events: pd.DataFrame | None = None) -> ScoredRows:
    """Labels and predictions of ``model`` for the rows of ``frame`` in [start, end) it can score.

    A row is predicted positive when its probability is above ``threshold`` (default: the model's
    ``alert_threshold``), as live scoring alerts.

    Labels: ``make_labels`` with the model's label spec on the rows before ``end``
    only. Inputs: ``build_feature_matrix`` with its feature spec, columns in its
    feature order. Rows: ``select_rows`` (window, the model's phases, labelled,
    finite inputs). ``features_cache`` (a dict owned by the caller, valid for this
    one ``frame``) keeps the matrix per ``FeatureSpec`` so models sharing a spec
    build it once; features of a row use only that coin's rows at or before it,
    so one matrix built on the whole frame serves every window of it. Labels are
    kept per (LabelSpec, test end) too, since they depend on where the data stops.

    Raises ``DatasetError`` naming a model feature the data cannot produce, and the
    ``select_rows`` errors (empty window, nothing labelled, all-NaN feature).
    """
    start, end = to_utc(start, "test_start"), to_utc(end, "test_end")
    _check_window(start, end)
    if not frame.index.is_unique:
        raise ValueError("frame's index has duplicate labels; reset it first")
    cache = {} if features_cache is None else features_cache
    label_key = ("labels", model.label_spec, end)
    if label_key not in cache:
        before_end = frame[frame["timestamp"] < end]
        cache[label_key] = (before_end, *make_labels(before_end, model.label_spec, known_events))
    before_end, labels, change = cache[label_key]
    if model.feature_spec not in cache:
        cache[model.feature_spec] = build_feature_matrix(frame, model.feature_spec)
    X, skipped = cache[model.feature_spec]
    missing = [f for f in model.feature_names if f not in X.columns]
    if missing:
        reasons = "; ".join(f"{f}: {skipped[f]}" for f in missing if f in skipped)
        raise DatasetError(f"model {model.name!r} needs feature(s) {missing} that the data cannot produce"
                           + (f" ({reasons})" if reasons else ""))

    inputs = select_rows(
        X[model.feature_names], labels.reindex(frame.index), frame, start=start, end=end, phases=model.phases,
        future_change=None if change is None else change.reindex(frame.index),
    )
    predicted = np.asarray(model.estimator.predict(inputs.X)).astype(int).ravel()
    proba = predict_proba_positive(model.estimator, inputs.X)
    # The threshold applies to proba, so predict and proba at 0.5 must tell the same story.
    disagree = (predicted == 1) != (proba > DECISION_THRESHOLD)
    disagree &= np.abs(proba - DECISION_THRESHOLD) > _ROUNDING
    if disagree.any():
        raise ValueError(f"model {model.name!r}: predict() and predict_proba() at {DECISION_THRESHOLD} disagree on "
                         f"{int(disagree.sum())} rows")
    threshold = model.alert_threshold if threshold is None else _check_threshold(threshold)
    return ScoredRows(
        index=inputs.X.index,
        y_true=inputs.y.to_numpy(dtype=int),
        y_pred=(proba > threshold).astype(int),
        proba=proba,
        future_change_pct=None if inputs.future_change_pct is None else inputs.future_change_pct.to_numpy(float),
        timestamps=inputs.timestamps,
        mints=inputs.mints,
        stats=inputs.stats,
        threshold=float(threshold),
    )


def _check_threshold(threshold: float) -> float:
    # Written this way round so NaN (every comparison false) is refused too.
    if isinstance(threshold, bool) or not 0.0 <= float(threshold) <= 1.0:
        raise ValueError(f"threshold: must be a probability within [0, 1], got {threshold!r}")
    return float(threshold)


def event_figures(model: ModelUnderTest, scored: ScoredRows, frame: pd.DataFrame,
                  known_events: pd.DataFrame | None = None) -> dict | None:
    """Pumps caught and false alarms, as a trader counts them (``ml.events``), for a time-based or
    known-event target; None for threshold targets.

    Time-based: events are the model's own positive labels: a coin's positive rows less than one horizon
    apart are one pump; its peak is the highest ``target_var`` up to one horizon after its last positive
    row. An alert (predicted 1) up to one horizon before a pump's start and up to its peak detects it;
    other alerts are false, merged into episodes when less than one horizon apart.
    Known events: the events of ``known_events`` of the scored coins that meet the scored rows' span
    (``ml.events.known_event_judge``: detected from ``lead_minutes`` before the start).
    """
    from pump_orchestration.ml.events import known_event_report, label_event_report

    spec = model.label_spec
    if not (spec.time_based or spec.known_events):
        return None
    values = (frame.loc[scored.index, spec.target_var].to_numpy(dtype=float)
              if spec.target_var in frame.columns else None)
    mints = scored.mints.to_numpy()
    if spec.known_events:
        report = known_event_report(known_events, mints, scored.timestamps, scored.y_pred, lead=spec.horizon,
                                    values=values)
    else:
        report = label_event_report(mints, scored.timestamps, scored.y_true, scored.y_pred,
                                    pd.Timedelta(minutes=spec.future_minutes), values=values)
    report["per_event"] = report["per_event"][:200]  # the row keeps the figures, not every episode
    return report


def _test_row(model: ModelUnderTest, scored: ScoredRows, start: pd.Timestamp, end: pd.Timestamp,
              frame: pd.DataFrame, known_events: pd.DataFrame | None = None) -> dict:
    """The ``ml_test_results`` values of ``model`` on ``scored`` (rows of ``frame``)."""
    metrics = classification_metrics(scored.y_true, scored.y_pred, scored.proba, scored.future_change_pct,
                                     direction=model.label_spec.direction, fee_pct=model.fee_pct)
    has_overlap, note = overlap_check(model.train_start, model.train_end, start, end)
    cm = metrics["confusion_matrix"]
    return {
        "model_id": model.model_id,
        "test_start": start,
        "test_end": end,
        **{column: metrics[key] for column, key in _TEST_METRIC_COLUMNS.items()},
        "confusion_matrix": dict(cm),
        "tp": cm["tp"], "tn": cm["tn"], "fp": cm["fp"], "fn": cm["fn"],
        "num_samples": metrics["num_samples"],
        "num_positive": metrics["num_positive"],
        "num_negative": metrics["num_negative"],
        "has_overlap": has_overlap,
        "overlap_note": note,
        **{f"train_{m}": model.train_metrics.get(m) for m in _TRAIN_METRICS},
        **degradation(model.train_metrics, metrics),
        "test_duration_days": (end - start) / pd.Timedelta(days=1),
        "event_metrics": event_figures(model, scored, frame, known_events),
        "alert_threshold": scored.threshold,
    }


def evaluate_model(model: ModelUnderTest, frame: pd.DataFrame, test_start, test_end, *,
                   features_cache: dict | None = None, threshold: float | None = None,
                   known_events: pd.DataFrame | None = None) -> dict:
    """Test ``model`` on [test_start, test_end): the column values of one ``ml_test_results`` row.

    Metrics are ``classification_metrics`` on :func:`score_rows` at ``threshold`` (default: the
    model's ``alert_threshold``; ``alert_threshold`` in the row says which); the row also carries
    the overlap check, the training metrics and their degradation. Values are plain
    Python types; ``test_start``/``test_end`` are UTC Timestamps.
    """
    start, end = to_utc(test_start, "test_start"), to_utc(test_end, "test_end")
    scored = score_rows(model, frame, start, end, features_cache=features_cache, threshold=threshold,
                        known_events=known_events)
    return _test_row(model, scored, start, end, frame, known_events)


def _order(x: float | None, y: float | None, tol: float) -> int:
    """1 if x is better, -1 if y is, 0 on a tie; None is worse than any value."""
    if x is None or y is None:
        return (x is not None) - (y is not None)
    if abs(x - y) <= tol:
        return 0
    return 1 if x > y else -1


def winner_rule(winner_by: str) -> str:
    """The rule of ``winner_by`` in words, e.g. "F1, then ROC-AUC" (stored with the comparison)."""
    return ", then ".join(_WINNER_NAMES[k] for k in WINNER_KEYS[winner_by])


def resolve_winner_by(winner_by: str | None, a: ModelUnderTest, b: ModelUnderTest) -> str:
    """``winner_by`` checked against both models; ``None`` = event_f1 when both have events, else f1.

    Event figures exist only for time-based and known-event targets, so asking for event_f1 with a
    threshold target is an error.
    """
    def has_events(model: ModelUnderTest) -> bool:
        return model.label_spec.time_based or model.label_spec.known_events

    if winner_by is None:
        return "event_f1" if has_events(a) and has_events(b) else "f1"
    if winner_by not in WINNER_BY:
        raise ValueError(f"winner_by: {winner_by!r} is unknown; allowed: {', '.join(WINNER_BY)}")
    if winner_by == "event_f1" and not (has_events(a) and has_events(b)):
        threshold_model = b if has_events(a) else a
        raise ValueError(f"winner_by: event_f1 needs time-based or known-event targets, but model "
                         f"{threshold_model.name!r} has a threshold target; use f1 or roc_auc")
    return winner_by


def choose_winner(metrics_a: dict, metrics_b: dict, tol: float = 1e-9,
                  winner_by: str = "f1") -> Literal["a", "b"] | None:
    """The better of two models by the rule of ``winner_by`` (:data:`WINNER_KEYS`); ``None`` on a tie.

    The first figure decides; a later one only when all before it differ by at most
    ``tol``; if every figure ties (within ``tol``, or both ``None``) there is no winner.
    A ``None`` value counts as lower than any number. Keys are ``classification_metrics``
    names plus ``event_f1``. F1 rather than accuracy because pump labels are rare
    (accuracy rewards predicting "no pump"); ROC-AUC breaks ties independently of the
    threshold; event F1 (``ml.events.event_f1``) judges pumps caught before the peak
    against noisy alert episodes, which row figures mis-rank for time-based targets.
    """
    for key in WINNER_KEYS[winner_by]:
        order = _order(metrics_a.get(key), metrics_b.get(key), tol)
        if order:
            return "a" if order > 0 else "b"
    return None


def _winner_figures(test: dict) -> dict[str, float | None]:
    """The figures :func:`choose_winner` reads, from one ``_test_row``."""
    from pump_orchestration.ml.events import event_f1

    events = test.get("event_metrics")
    return {"f1": test["f1_score"], "roc_auc": test["roc_auc"], "event_f1": event_f1(events) if events else None}


@dataclass
class ComparisonResult:
    """Two test rows on the same rows, the ``ml_comparisons`` values (without ids) and the winner."""

    test_a: dict
    test_b: dict
    comparison: dict
    winner: Literal["a", "b"] | None
    rows_dropped: dict[str, int]


def _outcome(scored: ScoredRows) -> np.ndarray:
    """Confusion cell per row: 0 = tn, 1 = fp, 2 = fn, 3 = tp."""
    return 2 * scored.y_true + scored.y_pred


def _f1_diff(cells: np.ndarray) -> np.ndarray:
    """F1(A) − F1(B) from joint counts ``cells[..., A cell, B cell]`` (F1 = 0 on a zero denominator, as sklearn)."""
    def f1(per_cell):
        tp, fp, fn = per_cell[..., 3], per_cell[..., 1], per_cell[..., 2]
        denominator = 2 * tp + fp + fn
        return np.divide(2.0 * tp, denominator, out=np.zeros(np.shape(tp)), where=denominator > 0)

    return f1(cells.sum(axis=-1)) - f1(cells.sum(axis=-2))


def paired_significance(a: ScoredRows, b: ScoredRows, *, n_bootstrap: int = 1000,
                        random_state: int = 0) -> dict[str, Any]:
    """McNemar's exact test and a paired bootstrap of F1(A) − F1(B) on the same rows.

    McNemar: of the discordant rows, b01 = A right and B wrong, b10 = A wrong and
    B right; under "equally good" each is A's with probability 1/2, so p is the
    two-sided exact binomial p of b01 in b01 + b10 (1.0 without discordant rows).

    Bootstrap: ``n_bootstrap`` resamples of the rows with replacement (fixed
    ``random_state``), F1 difference per resample, 95 % percentile CI. F1 only
    depends on each model's confusion counts, so every row is reduced to one of
    16 joint (A cell, B cell) outcomes and a resample of n rows is drawn as
    multinomial counts over those outcomes, which has exactly the distribution of
    resampling row indices, in O(n_bootstrap × 16) memory.

    ``significant`` = the CI excludes 0 and p < 0.05.
    """
    from scipy.stats import binomtest

    if not a.index.equals(b.index):
        raise ValueError("paired tests need both models scored on the same rows in the same order")
    if n_bootstrap < 1:
        raise ValueError(f"n_bootstrap must be >= 1, got {n_bootstrap}")
    if len(a.index) == 0:
        raise ValueError("no rows to compare")
    right_a, right_b = a.y_pred == a.y_true, b.y_pred == b.y_true
    b01, b10 = int(np.sum(right_a & ~right_b)), int(np.sum(~right_a & right_b))
    p_value = 1.0 if b01 + b10 == 0 else float(binomtest(b01, b01 + b10, 0.5, alternative="two-sided").pvalue)

    observed = np.bincount(4 * _outcome(a) + _outcome(b), minlength=16)
    n = int(observed.sum())
    resampled = np.random.default_rng(random_state).multinomial(n, observed / n, size=n_bootstrap)
    diffs = _f1_diff(resampled.reshape(n_bootstrap, 4, 4))
    lo, hi = (float(v) for v in np.percentile(diffs, [100 * ALPHA / 2, 100 * (1 - ALPHA / 2)]))
    f1_diff = float(_f1_diff(observed.reshape(4, 4)))
    return {
        "f1_diff": f1_diff,
        "f1_diff_ci95": [lo, hi],
        "mcnemar_b01": b01,
        "mcnemar_b10": b10,
        "mcnemar_p": p_value,
        "significant": bool((lo > 0 or hi < 0) and p_value < ALPHA),
        "n_bootstrap": int(n_bootstrap),
    }


def compare_models(a: ModelUnderTest, b: ModelUnderTest, frame: pd.DataFrame, test_start, test_end, *,
                   n_bootstrap: int = 1000, random_state: int = 0,
                   features_cache: dict | None = None, winner_by: str | None = None,
                   known_events: pd.DataFrame | None = None) -> ComparisonResult:
    """Test ``a`` and ``b`` on exactly the same rows of [test_start, test_end) and pick a winner.

    The common rows are those both models can score (labelled under each one's
    label spec, finite inputs for each one's features, in each one's phases); rows
    only one model can score are dropped for both and counted in ``rows_dropped``.
    Models with different label specs are each scored against their own labels
    (``significance["same_labels"]`` is then False, with a note). The winner follows
    :func:`choose_winner` with :func:`resolve_winner_by` (checked before any scoring);
    ``significance`` comes from :func:`paired_significance` and names the rule used.
    ``features_cache`` is as in :func:`score_rows` (walk-forward shares one across windows).
    """
    if a is b or (a.model_id is not None and a.model_id == b.model_id):
        raise ValueError("model_a and model_b must differ")
    start, end = to_utc(test_start, "test_start"), to_utc(test_end, "test_end")
    winner_by = resolve_winner_by(winner_by, a, b)
    cache = {} if features_cache is None else features_cache
    scored_a = score_rows(a, frame, start, end, features_cache=cache, known_events=known_events)
    scored_b = score_rows(b, frame, start, end, features_cache=cache, known_events=known_events)
    common = scored_a.index.intersection(scored_b.index, sort=False)
    if common.empty:
        raise DatasetError(f"no row of [{start.isoformat()}, {end.isoformat()}) can be scored by both models "
                           f"({len(scored_a.index)} rows for {a.name!r}, {len(scored_b.index)} for {b.name!r})")
    rows_dropped = {"only_a": len(scored_a.index) - len(common), "only_b": len(scored_b.index) - len(common)}
    scored_a, scored_b = scored_a.take(common), scored_b.take(common)

    test_a = _test_row(a, scored_a, start, end, frame, known_events)
    test_b = _test_row(b, scored_b, start, end, frame, known_events)
    same_labels = a.label_spec == b.label_spec
    significance = {
        "rule": winner_rule(winner_by),
        "winner_by": winner_by,
        **paired_significance(scored_a, scored_b, n_bootstrap=n_bootstrap, random_state=random_state),
        "same_labels": same_labels,
        "note": None if same_labels else (
            "the models have different label specs: each is scored against its own labels, so the "
            "comparison is of how well each predicts its own target"
        ),
    }
    winner = choose_winner(_winner_figures(test_a), _winner_figures(test_b), winner_by=winner_by)
    comparison = {
        "test_start": start,
        "test_end": end,
        "num_samples": int(len(common)),
        **{f"a_{m}": test_a[column] for m, column in _COMPARISON_METRIC_COLUMNS.items()},
        **{f"b_{m}": test_b[column] for m, column in _COMPARISON_METRIC_COLUMNS.items()},
        "significance": significance,
    }
    return ComparisonResult(test_a=test_a, test_b=test_b, comparison=comparison, winner=winner,
                            rows_dropped=rows_dropped)
