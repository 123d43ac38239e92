"""A model-training request and its validation, independent of Dagster.

``TrainingRequest`` declares the fields once; the Dagster config of the training request
(``pump_orchestration.defs.training.resources``) is derived from it. Validation lives here so
the UI, GraphQL and the CLI all get the same messages.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Iterable

import pandas as pd

from pump_orchestration.ml.features import BASELINE_MINUTES, required_history
from pump_orchestration.ml.models import validate_params
from pump_orchestration.vocabulary import (
    BASE_COLUMNS,
    CALIBRATION_METHODS,
    DEFAULT_PHASES,
    DIRECTIONS,
    IMBALANCE_METHODS,
    LABEL_MODES,
    LABEL_SOURCES,
    MODEL_TYPES,
    OPERATORS,
    THRESHOLD_OBJECTIVES,
    to_utc,
)

MAX_NAME_LENGTH = 255


class RequestValidationError(ValueError):
    """A request is invalid; ``problems`` lists one message per bad field, ``label`` says which request.

    One problem reads as one line ("Invalid test request: model: ..."), several as a list under the label.
    """

    def __init__(self, problems: list[str], label: str = "Invalid training request"):
        self.problems = problems
        self.label = label
        super().__init__(f"{label}: {problems[0]}" if len(problems) == 1
                         else f"{label}:\n  - " + "\n  - ".join(problems))


@dataclass(frozen=True)
class LabelSpec:
    """How labels are built; stored with a model so tests and scoring rebuild them identically."""

    target_var: str
    time_based: bool
    operator: str | None = None
    value: float | None = None
    future_minutes: int | None = None
    min_percent_change: float | None = None
    direction: str = "up"
    mode: str = "end"
    source: str = "target"
    lead_minutes: float | None = None

    @property
    def known_events(self) -> bool:
        """Labels come from ``ml_known_events`` (rows inside a known pump), not from ``target_var``."""
        return self.source == "known_events"

    @property
    def horizon(self) -> pd.Timedelta | None:
        """How far a label looks ahead (used to purge CV folds): the time-based horizon, or the lead of a
        known-event label (a row up to lead_minutes before a pump's start is positive); else None."""
        if self.known_events:
            return pd.Timedelta(minutes=self.lead_minutes)
        return pd.Timedelta(minutes=self.future_minutes) if self.time_based else None


@dataclass(frozen=True)
class FeatureSpec:
    """Which model inputs are built; stored with a model so scoring builds the same matrix."""

    base_features: tuple[str, ...]
    use_engineered: bool = True
    windows: tuple[int, ...] = (5, 10, 15)


def _field(default: Any, doc: str, **kwargs) -> Any:
    """A request field with its default and the text the launchpad shows (a ``...`` default = required)."""
    if default is ...:
        return field(metadata={"doc": doc}, **kwargs)
    if isinstance(default, dict):
        return field(default_factory=lambda: dict(default), metadata={"doc": doc}, **kwargs)
    return field(default=default, metadata={"doc": doc}, **kwargs)


#: Base inputs of a request that names none: prices, volumes, trade counts, market cap, bonding curve.
DEFAULT_FEATURES = ("price_close", "volume_sol", "buy_volume_sol", "sell_volume_sol", "num_buys", "num_sells",
                    "market_cap_close", "bonding_curve_pct")


@dataclass(frozen=True)
class TrainingRequest:
    """Everything a user asks for when creating a model: the one declaration of the request's fields.

    The Dagster config (``resources.training_request.config``) is derived from these fields, their
    defaults and their ``doc`` texts, so the launchpad, GraphQL, the CLI and the core cannot drift apart.
    """

    name: str = _field(..., "Unique model name, e.g. PumpDetector_v1 (max 255 characters).")
    model_type: str = _field("xgboost", f"Classifier: one of {', '.join(MODEL_TYPES)}.")
    target_var: str = _field(
        "price_close", "coin_metrics column the label is built from, e.g. price_close or market_cap_close.")
    features: tuple[str, ...] = _field(
        DEFAULT_FEATURES,
        "Base coin_metrics columns used as model inputs, e.g. [price_close, volume_sol, buy_volume_sol]. "
        "For a time-based target the target column is never an input (it would leak the label).")
    phases: tuple[int, ...] = _field(
        (), "Only use rows whose phase_id_at_time is in this list (ref_coin_phases ids); empty = all phases.")
    use_time_based_prediction: bool = _field(
        True, "true: label = 'target rises/falls by min_percent_change % within future_minutes' (per coin); "
        "false: label = 'target_var target_operator target_value'.")
    target_operator: str | None = _field(None, f"Classic target only: one of {' '.join(OPERATORS)}.")
    target_value: float | None = _field(None, "Classic target only: threshold compared with target_var.")
    future_minutes: int | None = _field(10, "Time-based target: horizon H in minutes (> 0).")
    min_percent_change: float | None = _field(
        30.0, "Time-based target: minimum % change over the horizon that counts as a pump (> 0).")
    direction: str = _field("up", f"Time-based target: one of {', '.join(DIRECTIONS)} (rise or fall).")
    label_mode: str = _field(
        "within", "Time-based target: 'within' (default) uses the peak (up) or trough (down) reached in (t, t+H], "
        "i.e. 'rises min_percent_change % at some point within future_minutes'; 'end' compares the value at t+H with t.")
    label_source: str = _field(
        "target", f"Where labels come from (one of {', '.join(LABEL_SOURCES)}): 'target' = the rule above "
        "(time-based or classic); 'known_events' = a row is positive when it lies inside a known pump of its coin "
        "in ml_known_events (import them with 'pump-orchestration import-events FILE.csv'), from lead_minutes "
        "before its start up to its end; the time-based and classic fields are then ignored. Test reports and "
        "comparisons count those events as the pumps.")
    lead_minutes: float = _field(
        2.0, "label_source known_events: rows from this many minutes before an event's start are positive (>= 0), "
        "so the model learns the build-up before the announced time.")
    params: dict[str, Any] = _field(
        {}, "Hyper-parameters overriding the model type's defaults from ref_model_types, "
        "e.g. {n_estimators: 200, max_depth: 8}.")
    use_engineered_features: bool = _field(
        True, "Add ~40 engineered features (momentum, volume, buy/sell pressure, whales, volatility, "
        "market-cap velocity, order imbalance) computed per coin from its past only.")
    feature_engineering_windows: tuple[int, ...] = _field(
        (5, 10, 15), "Rolling window sizes in MINUTES for the engineered features (default 5, 10, 15).")
    imbalance: str | None = _field(
        None, f"How training parts handle the rare pump class, one of {', '.join(IMBALANCE_METHODS)}: "
        "smote = SMOTE + random under-sampling to 1:1 when positives are < 30 % or > 70 %; class_weight = "
        "balanced sample weights at fit (rows unchanged); none. Empty = what use_smote says, else smote.")
    use_smote: bool | None = _field(
        None, "Legacy alias of imbalance: true = smote, false = none. Give either, or both agreeing.")
    calibration: str = _field(
        CALIBRATION_METHODS[0], f"Probability calibration, one of {', '.join(CALIBRATION_METHODS)}: sigmoid or "
        "isotonic map the model's probabilities to observed pump rates, fitted on the out-of-fold CV predictions "
        "of the training window (so 0.7 means about 70 %); the alert threshold is then chosen on the calibrated "
        "values. none keeps the raw probabilities (inflated by smote).")
    use_timeseries_split: bool = _field(
        True, "Order-respecting TimeSeriesSplit cross-validation (recommended). false = a single "
        "chronological 80/20 split (not recommended).")
    cv_splits: int = _field(5, "Number of TimeSeriesSplit folds (>= 2); the last fold is the final test part.")
    train_start: str | None = _field(
        None, "Optional ISO timestamp narrowing the window inside the selected partition(s); "
        "default = start of the first selected day.")
    train_end: str | None = _field(
        None, "Optional ISO timestamp (exclusive) narrowing the window; default = end of the last selected day.")
    random_state: int = _field(42, "Seed for the estimator, SMOTE and under-sampling.")
    n_jobs: int | None = _field(
        None, "Threads for fitting XGBoost and random forests (>= 1); empty = the cores this process may use "
        "(CPU affinity and cgroup quota). Lower it when other jobs share the machine.")
    fee_pct: float = _field(
        2.0, "Round-trip fee in % subtracted from each simulated trade (default 2.0 = 1 % per side on pump.fun).")
    threshold_objective: str = _field(
        "max_events_within_false_alarms",
        f"How the alert threshold is chosen on the out-of-fold CV predictions (one of {', '.join(THRESHOLD_OBJECTIVES)}): "
        "most pumps caught before the peak with at most max_false_alarms_per_coin_day false-alert episodes "
        "(time-based targets; classic targets use f1), best row F1, or none = 0.5. Stored with the model, used by "
        "test reports and offered as the alert_threshold at activation.")
    max_false_alarms_per_coin_day: float = _field(
        2.0, "threshold_objective max_events_within_false_alarms: false-alert episodes allowed per coin-day (> 0).")
    description: str | None = _field(None, "Free-text note stored with the model.")

    @property
    def label_spec(self) -> LabelSpec:
        """The label definition of this request."""
        if self.label_source == "known_events":
            return LabelSpec(target_var=self.target_var, time_based=False, source="known_events",
                             lead_minutes=float(self.lead_minutes))
        if self.use_time_based_prediction:
            return LabelSpec(
                target_var=self.target_var,
                time_based=True,
                future_minutes=self.future_minutes,
                min_percent_change=self.min_percent_change,
                direction=self.direction,
                mode=self.label_mode,
            )
        return LabelSpec(
            target_var=self.target_var, time_based=False, operator=self.target_operator, value=self.target_value
        )

    @property
    def imbalance_method(self) -> str:
        """``imbalance``, else the legacy ``use_smote`` (true = smote, false = none), else smote."""
        if self.imbalance is not None:
            return self.imbalance
        if self.use_smote is not None:
            return "smote" if self.use_smote else "none"
        return IMBALANCE_METHODS[0]

    @property
    def feature_spec(self) -> FeatureSpec:
        """The model inputs of this request; a time-based target column is never an input."""
        base = tuple(f for f in self.features if not (self.use_time_based_prediction and f == self.target_var))
        return FeatureSpec(
            base_features=base,
            use_engineered=self.use_engineered_features,
            windows=tuple(self.feature_engineering_windows),
        )

    def fingerprint(self) -> str:
        """Stable hash of the fields that change labels or features (guards cached intermediates)."""
        payload = json.dumps({"label": asdict(self.label_spec), "features": asdict(self.feature_spec),
                              "phases": list(self.phases)}, sort_keys=True, default=str)
        return hashlib.sha256(payload.encode()).hexdigest()[:16]


def request_defaults() -> dict[str, Any]:
    """Every field that has a default, with it (tuples as lists, as they appear in run config)."""
    out = {}
    for f in fields(TrainingRequest):
        if f.default is not MISSING:
            out[f.name] = list(f.default) if isinstance(f.default, tuple) else f.default
        elif f.default_factory is not MISSING:
            out[f.name] = f.default_factory()
    return out


def narrow_window(
    partition_start: pd.Timestamp,
    partition_end: pd.Timestamp,
    start: str | None,
    end: str | None,
    names: tuple[str, str] = ("train_start", "train_end"),
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The selected partitions' span, narrowed by optional ISO ``start``/``end`` that must lie inside it."""
    start_name, end_name = names
    lo = _parse_ts(start, start_name) if start else partition_start
    hi = _parse_ts(end, end_name) if end else partition_end
    span = f"[{partition_start.isoformat()}, {partition_end.isoformat()})"
    problems = []
    if lo < partition_start or lo >= partition_end:
        problems.append(f"{start_name} {lo.isoformat()} lies outside the selected partitions {span}; "
                        "select the days that contain it")
    if hi <= partition_start or hi > partition_end:
        problems.append(f"{end_name} {hi.isoformat()} lies outside the selected partitions {span}; "
                        "select the days that contain it")
    if lo >= hi:
        problems.append(f"{start_name} ({lo.isoformat()}) must be before {end_name} ({hi.isoformat()})")
    if problems:
        raise RequestValidationError(problems)
    return lo, hi


def resolve_window(
    request: TrainingRequest, partition_start: pd.Timestamp, partition_end: pd.Timestamp
) -> tuple[pd.Timestamp, pd.Timestamp]:
    """The training window: the selected partitions, narrowed by ``train_start``/``train_end`` if given."""
    return narrow_window(partition_start, partition_end, request.train_start, request.train_end)


def _parse_ts(value: str, field_name: str) -> pd.Timestamp:
    try:
        return to_utc(value, field_name)
    except ValueError as exc:
        raise RequestValidationError([str(exc)]) from None


def validate_request(
    request: TrainingRequest,
    *,
    available_columns: Iterable[str] | None = None,
    phase_ids: Iterable[int] | None = None,
    max_window_minutes: int | None = None,
) -> None:
    """Check every field before any work; raise ``RequestValidationError`` listing all problems.

    ``available_columns`` (the real coin_metrics columns), ``phase_ids`` (ref_coin_phases)
    and ``max_window_minutes`` (the history loaded before a window) enable the checks
    that need the warehouse; without them only the request itself is checked.
    """
    p: list[str] = []
    if not request.name or not request.name.strip():
        p.append("name: must not be empty")
    elif len(request.name) > MAX_NAME_LENGTH:
        p.append(f"name: {len(request.name)} characters, at most {MAX_NAME_LENGTH} allowed")
    if request.model_type not in MODEL_TYPES:
        p.append(f"model_type: {request.model_type!r} is unknown; allowed: {', '.join(MODEL_TYPES)}")
    else:
        try:
            validate_params(request.model_type, dict(request.params))
        except ValueError as exc:
            p.append(f"params: {exc}")
    if not request.target_var:
        p.append("target_var: must name a coin_metrics column")
    if request.label_source not in LABEL_SOURCES:
        p.append(f"label_source: {request.label_source!r} is unknown; allowed: {', '.join(LABEL_SOURCES)}")
    elif request.label_source == "known_events":
        if isinstance(request.lead_minutes, bool) or not (
                isinstance(request.lead_minutes, (int, float)) and 0 <= request.lead_minutes < float("inf")):
            p.append(f"lead_minutes: must be a number >= 0, got {request.lead_minutes!r}")
    elif request.use_time_based_prediction:
        if request.future_minutes is None or request.future_minutes <= 0:
            p.append(f"future_minutes: must be > 0 for a time-based target, got {request.future_minutes}")
        if request.min_percent_change is None or not request.min_percent_change > 0:
            p.append(f"min_percent_change: must be > 0 for a time-based target, got {request.min_percent_change}")
        if request.direction not in DIRECTIONS:
            p.append(f"direction: {request.direction!r} is unknown; allowed: {', '.join(DIRECTIONS)}")
        if request.label_mode not in LABEL_MODES:
            p.append(f"label_mode: {request.label_mode!r} is unknown; allowed: {', '.join(LABEL_MODES)}")
    else:
        if request.target_operator not in OPERATORS:
            p.append(f"target_operator: {request.target_operator!r} is unknown; allowed: {' '.join(OPERATORS)}")
        if request.target_value is None:
            p.append("target_value: required for a classic (threshold) target")
    if not request.feature_spec.base_features and not request.use_engineered_features:
        p.append("features: no model inputs — list base columns or set use_engineered_features: true")
    windows = list(request.feature_engineering_windows)
    if request.use_engineered_features:
        if not windows or any(int(w) <= 0 for w in windows):
            p.append(f"feature_engineering_windows: need positive minutes, got {windows}")
        elif len(set(windows)) != len(windows):
            p.append(f"feature_engineering_windows: duplicate sizes in {windows}")
        elif (max_window_minutes is not None
              and required_history(windows) > pd.Timedelta(minutes=max_window_minutes)):
            # The burst features read BASELINE_MINUTES back, so even short windows need that much history.
            need = required_history(windows) / pd.Timedelta(minutes=1)
            p.append(f"feature_engineering_windows: the features need {need:g} min of history (largest window "
                     f"or the {BASELINE_MINUTES}-min burst reach), more than the loaded {max_window_minutes} min "
                     "(raise FEATURE_LOOKBACK_MINUTES)")
    if request.imbalance is not None and request.imbalance not in IMBALANCE_METHODS:
        p.append(f"imbalance: {request.imbalance!r} is unknown; allowed: {', '.join(IMBALANCE_METHODS)}")
    elif (request.imbalance is not None and request.use_smote is not None
          and (request.imbalance == "smote") != request.use_smote):
        p.append(f"imbalance: {request.imbalance} contradicts use_smote: {str(request.use_smote).lower()} "
                 "(its legacy alias); drop use_smote")
    if request.calibration not in CALIBRATION_METHODS:
        p.append(f"calibration: {request.calibration!r} is unknown; allowed: {', '.join(CALIBRATION_METHODS)}")
    if request.cv_splits < 2:
        p.append(f"cv_splits: must be >= 2, got {request.cv_splits}")
    if request.n_jobs is not None and (isinstance(request.n_jobs, bool) or not isinstance(request.n_jobs, int)
                                       or request.n_jobs < 1):
        p.append(f"n_jobs: must be an integer >= 1 or empty (= every available core), got {request.n_jobs!r}")
    if not 0 <= request.fee_pct < 100:
        p.append(f"fee_pct: must be in [0, 100), got {request.fee_pct}")
    if request.threshold_objective not in THRESHOLD_OBJECTIVES:
        p.append(f"threshold_objective: {request.threshold_objective!r} is unknown; "
                 f"allowed: {', '.join(THRESHOLD_OBJECTIVES)}")
    if isinstance(request.max_false_alarms_per_coin_day, bool) or not (
            isinstance(request.max_false_alarms_per_coin_day, (int, float))
            and request.max_false_alarms_per_coin_day > 0):
        p.append(f"max_false_alarms_per_coin_day: must be a number > 0, got {request.max_false_alarms_per_coin_day!r}")
    if (request.model_type == "rule_baseline" and not request.use_engineered_features
            and not {"volume_feature", "price_feature"} <= set(request.params)):
        p.append("model_type: rule_baseline reads volume_ratio_{w} and price_change_{w}; set "
                 "use_engineered_features: true (or name volume_feature and price_feature in params)")
    for field_name in ("train_start", "train_end"):
        value = getattr(request, field_name)
        if value:
            try:
                _parse_ts(value, field_name)
            except RequestValidationError as exc:
                p.extend(exc.problems)
    if request.train_start and request.train_end and not p:
        if _parse_ts(request.train_start, "train_start") >= _parse_ts(request.train_end, "train_end"):
            p.append(f"train_start ({request.train_start}) must be before train_end ({request.train_end})")
    if available_columns is not None:
        cols = set(available_columns)
        known = set(BASE_COLUMNS)
        for f in request.features:
            if f not in cols:
                hint = "" if f in known else f"; known columns: {', '.join(sorted(known & cols))}"
                p.append(f"features: column {f!r} is not in coin_metrics{hint}")
        if request.target_var and request.target_var not in cols:
            p.append(f"target_var: column {request.target_var!r} is not in coin_metrics")
        if request.phases and "phase_id_at_time" not in cols:
            p.append("phases: coin_metrics has no phase_id_at_time column to filter on")
    allowed_phases = set(phase_ids) if phase_ids is not None else {ph[0] for ph in DEFAULT_PHASES}
    unknown = sorted(set(request.phases) - allowed_phases)
    if unknown:
        p.append(f"phases: unknown phase ids {unknown}; allowed: {sorted(allowed_phases)}")
    if p:
        raise RequestValidationError(p)
