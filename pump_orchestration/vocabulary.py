"""The product's vocabulary, written once: model types and their defaults, target operators and directions,
statuses, job types, the ``coin_metrics`` column catalogue, and the one UTC normaliser.

The ML core, the warehouse schema (its CHECK constraints and the ``ref_*`` seed rows), request
validation and the Dagster layer all import these names; nothing else spells them out.
No Dagster import (this module sits below the core).
"""
from __future__ import annotations

from typing import Any

import pandas as pd

# ---------------------------------------------------------------- models

#: Default hyper-parameters per model type, seeded into ``ref_model_types``; request params override them.
#: Names are the estimator's own (``get_params()``) plus ``hidden_layers`` for the MLP, as in the
#: original service.
DEFAULT_MODEL_PARAMS: dict[str, dict[str, Any]] = {
    "random_forest": {"n_estimators": 100, "max_depth": 10, "min_samples_split": 2},
    "xgboost": {"n_estimators": 100, "max_depth": 6, "learning_rate": 0.1},
    "gradient_boosting": {"n_estimators": 100, "max_depth": 3, "learning_rate": 0.1},
    "logistic_regression": {"C": 1.0, "max_iter": 100},
    "neural_network": {"hidden_layers": [100, 50], "activation": "relu", "max_iter": 200},
    # None: the widest volume_ratio_{w} and the narrowest price_change_{w} of the request's features.
    "rule_baseline": {"volume_feature": None, "price_feature": None},
    # XGBoost's random-forest mode: one round of n_estimators histogram trees, each on a row and column sample.
    "random_forest_hist": {"n_estimators": 100, "max_depth": 8, "subsample": 0.8, "colsample_bynode": 0.5},
}
#: One line per model type (``ref_model_types.description``).
MODEL_TYPE_DESCRIPTIONS: dict[str, str] = {
    "random_forest": "Random forest: robust, a good first choice",
    "xgboost": "XGBoost gradient boosting: strong, benefits from tuning",
    "gradient_boosting": "scikit-learn gradient boosting: similar to XGBoost",
    "logistic_regression": "Logistic regression: simple, fast, interpretable",
    "neural_network": "Multi-layer perceptron: flexible, needs much data",
    "rule_baseline": "Volume burst and price rise over two thresholds chosen on the training part: the bar to beat",
    "random_forest_hist": "Histogram random forest (XGBoost): a random forest many times faster on large windows",
}
MODEL_TYPES: tuple[str, ...] = tuple(DEFAULT_MODEL_PARAMS)

#: ``ml_models.status``: TRAINING while a run writes it, READY to test and score, FAILED (kept with the reason).
MODEL_STATUSES = ("TRAINING", "READY", "FAILED")

# ---------------------------------------------------------------- targets

#: Operators of a classic (threshold) target: ``target_var <op> target_value`` ("=" is exact equality).
OPERATORS = (">", "<", ">=", "<=", "=")
#: Directions of a time-based target.
DIRECTIONS = ("up", "down")
#: How the future value of a time-based target is taken: the value at the end of the horizon,
#: or the peak (trough for "down") within it.
LABEL_MODES = ("end", "within")
#: ``label_source`` of a request: the target's own rule (``target_var`` rises, or passes a threshold), or
#: rows inside a known pump event of ``ml_known_events`` (e.g. Telegram pump signals).
LABEL_SOURCES = ("target", "known_events")

#: ``winner_by`` of a comparison: which test figure decides (event F1 = pumps caught before the peak vs.
#: alert-episode precision; row F1; ROC-AUC). Default: event_f1 when both targets are time-based, else f1.
WINNER_BY = ("event_f1", "f1", "roc_auc")

# ---------------------------------------------------------------- ml_jobs

#: ``ml_jobs.job_type``: what a mirrored run does. WALK_FORWARD runs train and test a series of models.
JOB_TYPES = ("TRAIN", "TEST", "COMPARE", "WALK_FORWARD")
#: ``ml_jobs.status``, in the order a job moves through them (the three last are final).
JOB_STATUSES = ("PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")
TERMINAL_JOB_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})

# ---------------------------------------------------------------- live scoring

#: Alert threshold of a newly activated model that has no chosen operating point (probability above it = alert).
DEFAULT_ALERT_THRESHOLD = 0.7
#: How training picks a model's alert threshold on its out-of-fold predictions (``ml.metrics.choose_threshold``):
#: most pumps caught before the peak with at most N false-alert episodes per coin-day, best row F1, or 0.5 as is.
THRESHOLD_OBJECTIVES = ("max_events_within_false_alarms", "f1", "none")
#: How a training part's rare class is handled (request ``imbalance``); the first is the default.
IMBALANCE_METHODS = ("smote", "class_weight", "none")
#: How out-of-fold probabilities are calibrated (request ``calibration``); the first is the default.
CALIBRATION_METHODS = ("none", "sigmoid", "isotonic")
#: ``prediction_webhooks.status``: waiting (or retrying), accepted by the receiver, given up after too long.
WEBHOOK_STATUSES = ("PENDING", "DELIVERED", "GIVEN_UP")
#: The ``service``/``version`` every webhook payload names (the original service's payload structure).
WEBHOOK_SERVICE = "ml-prediction-service"
WEBHOOK_VERSION = "1.0.0"

# ---------------------------------------------------------------- coin_metrics

# The tracker owns ``coin_metrics``; these are the columns this product knows how to use.
# ``REQUIRED_COLUMNS`` must exist for anything to work; every other column is optional and the
# features that need it are skipped (with the reason recorded) when a user's table lacks it.
KEY_COLUMNS = ("mint", "timestamp")

#: Numeric base columns of ``coin_metrics`` with a short description (shown in docs and the UI).
BASE_COLUMNS: dict[str, str] = {
    "phase_id_at_time": "coin phase when the row was written (see ref_coin_phases)",
    "price_open": "first trade price in the interval, SOL per token",
    "price_high": "highest trade price in the interval, SOL per token",
    "price_low": "lowest trade price in the interval, SOL per token",
    "price_close": "last trade price in the interval, SOL per token",
    "volume_sol": "traded volume in the interval, SOL",
    "market_cap_close": "market cap at price_close, SOL",
    "buy_volume_sol": "buy volume in the interval, SOL",
    "sell_volume_sol": "sell volume in the interval, SOL",
    "num_buys": "number of buy trades in the interval",
    "num_sells": "number of sell trades in the interval",
    "bonding_curve_pct": "bonding-curve progress, 0-100 %",
    "virtual_sol_reserves": "virtual SOL reserves of the bonding curve, SOL",
    "unique_wallets": "distinct wallets that traded in the interval",
    "is_koth": "coin is king of the hill at this time (0/1)",
    # Optional extras this product defines; a tracker may not write them.
    "whale_buy_volume_sol": "buy volume from single trades >= WHALE_TRADE_SOL, SOL (optional)",
    "whale_sell_volume_sol": "sell volume from single trades >= WHALE_TRADE_SOL, SOL (optional)",
}

#: Columns without which no dataset can be built.
REQUIRED_COLUMNS = ("mint", "timestamp")

#: A single trade of at least this many SOL counts as whale activity.
WHALE_TRADE_SOL = 1.0

#: Default ``ref_coin_phases`` rows: (phase_id, name, nominal sampling interval in seconds).
DEFAULT_PHASES: tuple[tuple[int, str, int], ...] = (
    (1, "launch", 5),
    (2, "active", 30),
    (3, "established", 60),
)

# ---------------------------------------------------------------- time


def to_utc(value: Any, name: str = "timestamp") -> pd.Timestamp:
    """``value`` (ISO text, datetime, pandas Timestamp, numpy datetime) as an aware UTC Timestamp.

    Naive values are taken as UTC (SQLite hands back naive datetimes). ``ValueError`` naming
    ``name`` when the value is missing or not a time.
    """
    try:
        ts = pd.Timestamp(value.strip() if isinstance(value, str) else value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name}: {value!r} is not an ISO timestamp ({exc})") from None
    if pd.isna(ts):
        raise ValueError(f"{name} is missing")
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
