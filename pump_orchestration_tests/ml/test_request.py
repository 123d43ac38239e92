import dataclasses

import pandas as pd
import pytest

from pump_orchestration.ml.request import (
    RequestValidationError,
    TrainingRequest,
    resolve_window,
    validate_request,
)

COLUMNS = ["mint", "timestamp", "phase_id_at_time", "price_close", "volume_sol", "buy_volume_sol"]


def _request(**changes) -> TrainingRequest:
    base = TrainingRequest(name="m1", model_type="xgboost", target_var="price_close",
                           features=("price_close", "volume_sol"))
    return dataclasses.replace(base, **changes)


def _problems(request, **kwargs) -> list[str]:
    with pytest.raises(RequestValidationError) as info:
        validate_request(request, **kwargs)
    return info.value.problems


def test_valid_request_passes():
    validate_request(_request(), available_columns=COLUMNS, phase_ids=[1, 2, 3], max_window_minutes=60)


@pytest.mark.parametrize(
    "changes, field, needle",
    [
        ({"model_type": "svm"}, "model_type", "random_forest"),
        ({"name": " "}, "name", "empty"),
        ({"name": "x" * 300}, "name", "255"),
        ({"future_minutes": 0}, "future_minutes", "> 0"),
        ({"min_percent_change": -5.0}, "min_percent_change", "> 0"),
        ({"direction": "sideways"}, "direction", "up, down"),
        ({"label_mode": "avg"}, "label_mode", "end, within"),
        ({"cv_splits": 1}, "cv_splits", ">= 2"),
        ({"n_jobs": 0}, "n_jobs", ">= 1"),
        ({"n_jobs": True}, "n_jobs", ">= 1"),
        ({"use_time_based_prediction": False, "target_operator": "!=", "target_value": 1.0}, "target_operator", ">="),
        ({"use_time_based_prediction": False, "target_operator": ">", "target_value": None}, "target_value", "required"),
        ({"params": {"n_estimatorz": 5}}, "params", "n_estimatorz"),
        ({"feature_engineering_windows": (5, 0)}, "feature_engineering_windows", "positive"),
        ({"feature_engineering_windows": (5, 120)}, "feature_engineering_windows", "FEATURE_LOOKBACK_MINUTES"),
        ({"train_start": "2025-09-02", "train_end": "2025-09-01"}, "train_start", "before train_end"),
        ({"train_start": "yesterday-ish"}, "train_start", "ISO"),
        ({"features": ("price_close", "whale_score")}, "features", "whale_score"),
        ({"target_var": "market_cap_close"}, "target_var", "market_cap_close"),
        ({"phases": (1, 9)}, "phases", "[9]"),
        ({"features": (), "use_engineered_features": False}, "features", "no model inputs"),
        ({"threshold_objective": "precision"}, "threshold_objective", "max_events_within_false_alarms, f1, none"),
        ({"max_false_alarms_per_coin_day": 0}, "max_false_alarms_per_coin_day", "> 0"),
        ({"max_false_alarms_per_coin_day": True}, "max_false_alarms_per_coin_day", "> 0"),
        ({"model_type": "rule_baseline", "use_engineered_features": False}, "model_type", "use_engineered_features"),
        ({"imbalance": "oversample"}, "imbalance", "smote, class_weight, none"),
        ({"imbalance": "smote", "use_smote": False}, "imbalance", "contradicts use_smote: false"),
        ({"imbalance": "none", "use_smote": True}, "imbalance", "contradicts use_smote: true"),
        ({"imbalance": "class_weight", "use_smote": True}, "imbalance", "drop use_smote"),
        ({"calibration": "platt"}, "calibration", "none, sigmoid, isotonic"),
        ({"label_source": "telegram"}, "label_source", "target, known_events"),
        ({"label_source": "known_events", "lead_minutes": -1}, "lead_minutes", ">= 0"),
        ({"label_source": "known_events", "lead_minutes": float("nan")}, "lead_minutes", ">= 0"),
    ],
)
def test_bad_field_is_named_with_allowed_values(changes, field, needle):
    problems = _problems(_request(**changes), available_columns=COLUMNS, phase_ids=[1, 2, 3], max_window_minutes=60)
    assert any(p.startswith(field) and needle in p for p in problems), problems


@pytest.mark.parametrize("imbalance, use_smote, method", [
    (None, None, "smote"), (None, True, "smote"), (None, False, "none"), ("class_weight", None, "class_weight"),
    ("class_weight", False, "class_weight"), ("none", False, "none"), ("smote", True, "smote"),
])
def test_imbalance_with_its_legacy_alias_use_smote(imbalance, use_smote, method):
    request = _request(imbalance=imbalance, use_smote=use_smote)
    validate_request(request)
    assert request.imbalance_method == method


def test_all_problems_reported_together():
    problems = _problems(_request(model_type="svm", cv_splits=0, future_minutes=-1))
    assert {p.split(":")[0] for p in problems} >= {"model_type", "cv_splits", "future_minutes"}


def test_time_based_target_is_never_an_input():
    request = _request(features=("price_close", "volume_sol"))
    assert request.feature_spec.base_features == ("volume_sol",)
    classic = _request(use_time_based_prediction=False, target_operator=">", target_value=1.0)
    assert classic.feature_spec.base_features == ("price_close", "volume_sol")


def test_fingerprint_changes_with_labels_but_not_with_model_type():
    assert _request().fingerprint() == _request(model_type="random_forest").fingerprint()
    assert _request().fingerprint() != _request(future_minutes=11).fingerprint()
    assert _request().fingerprint() != _request(feature_engineering_windows=(5,)).fingerprint()


def test_resolve_window_defaults_to_partitions_and_narrows():
    start, end = pd.Timestamp("2025-09-01", tz="UTC"), pd.Timestamp("2025-09-03", tz="UTC")
    assert resolve_window(_request(), start, end) == (start, end)
    narrowed = resolve_window(_request(train_start="2025-09-01T06:00:00Z", train_end="2025-09-02T06:00"), start, end)
    assert narrowed == (pd.Timestamp("2025-09-01T06:00", tz="UTC"), pd.Timestamp("2025-09-02T06:00", tz="UTC"))
    with pytest.raises(RequestValidationError, match="train_end .* outside the selected partitions"):
        resolve_window(_request(train_end="2025-09-05"), start, end)


def test_known_events_label_spec_ignores_the_target_rule_and_purges_by_the_lead():
    request = _request(label_source="known_events", lead_minutes=3, future_minutes=0, use_time_based_prediction=True)
    validate_request(request, available_columns=COLUMNS, phase_ids=[1, 2, 3], max_window_minutes=60)  # no problem
    spec = request.label_spec
    assert (spec.source, spec.lead_minutes, spec.time_based, spec.known_events) == ("known_events", 3.0, False, True)
    assert spec.horizon == pd.Timedelta(minutes=3)
    assert request.fingerprint() != _request(label_source="known_events", lead_minutes=4).fingerprint()
    assert not _request().label_spec.known_events


def test_the_burst_features_history_is_required_even_for_short_windows():
    # Default windows (<= 15 min) still read the coin's previous hour: 30 min of loaded history is too little.
    problems = _problems(_request(), available_columns=COLUMNS, phase_ids=[1, 2, 3], max_window_minutes=30)
    assert any(p.startswith("feature_engineering_windows: the features need 60 min of history") for p in problems), problems
    validate_request(_request(), available_columns=COLUMNS, phase_ids=[1, 2, 3], max_window_minutes=60)
