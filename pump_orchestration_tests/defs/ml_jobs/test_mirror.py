"""How a run's tags and config become its ml_jobs columns (no database: pure mapping)."""
from __future__ import annotations

import datetime as dt

import dagster as dg

from pump_orchestration.defs.ml_jobs.mirror import STATUS_BY_DAGSTER, request_fields
from pump_orchestration.defs.shared.tags import ML_QUEUE_TAGS, ml_job_tags, ml_job_type
from pump_orchestration.vocabulary import JOB_STATUSES, JOB_TYPES

UTC = dt.timezone.utc


def test_dagster_statuses_map_onto_every_ml_jobs_status():
    # MANAGED and SUSPENDED runs (not launched by this project's jobs) stay unmirrored, with a warning.
    assert set(dg.DagsterRunStatus) - set(STATUS_BY_DAGSTER) == {dg.DagsterRunStatus.MANAGED,
                                                               dg.DagsterRunStatus.SUSPENDED}
    assert set(STATUS_BY_DAGSTER.values()) == set(JOB_STATUSES)
    assert STATUS_BY_DAGSTER[dg.DagsterRunStatus.CANCELING] == "RUNNING"
    assert STATUS_BY_DAGSTER[dg.DagsterRunStatus.CANCELED] == "CANCELLED"


def test_an_ml_run_is_recognised_by_its_tags_alone():
    for job_type in JOB_TYPES:
        assert ml_job_type(ml_job_tags(job_type)) == job_type
    assert ml_job_type(ML_QUEUE_TAGS) is None  # queued as ML but no job type: not mirrored
    assert ml_job_type({"pump/job_type": "TRAIN"}) is None  # not in the ML queue
    assert ml_job_type({**ML_QUEUE_TAGS, "pump/job_type": "SCORE"}) is None


def test_request_fields_of_a_training_run():
    config = {"resources": {"training_request": {"config": {
        "name": "PumpDetector_v1", "model_type": "xgboost", "target_var": "price_close", "future_minutes": 10,
        "min_percent_change": 30.0, "direction": "up", "features": ["price_close"], "phases": [1, 2],
        "params": {"n_estimators": 30}, "train_start": "2025-09-01T06:00:00Z", "cv_splits": 3,
        "target_operator": ">", "target_value": 5.0}}}}
    fields = request_fields("TRAIN", config, {"dagster/partition": "2025-09-01"})
    assert fields == {
        "train_model_name": "PumpDetector_v1", "train_model_type": "xgboost", "train_target_var": "price_close",
        "train_future_minutes": 10, "train_price_change_percent": 30.0, "train_target_direction": "up",
        "train_features": ["price_close"], "train_phases": [1, 2], "train_params": {"n_estimators": 30},
        "train_start": dt.datetime(2025, 9, 1, 6, tzinfo=UTC),  # the request narrows the day
        "train_end": dt.datetime(2025, 9, 2, tzinfo=UTC),  # else the partition's end
    }
    classic = request_fields("WALK_FORWARD", {"resources": {"training_request": {"config": {
        "use_time_based_prediction": False, "target_operator": ">", "target_value": "50000", "phases": [],
        "future_minutes": 10, "direction": "up"}}}},
        {"dagster/asset_partition_range_start": "2025-09-01", "dagster/asset_partition_range_end": "2025-09-03"})
    assert classic == {"train_operator": ">", "train_value": 50000.0,
                       "train_start": dt.datetime(2025, 9, 1, tzinfo=UTC), "train_end": dt.datetime(2025, 9, 4, tzinfo=UTC)}
    # Known-event labels read ml_known_events: no horizon, change or direction, as in ml_models.
    signals = request_fields("TRAIN", {"resources": {"training_request": {"config": {
        "name": "signals", "label_source": "known_events", "lead_minutes": 1.0, "future_minutes": 10,
        "min_percent_change": 30.0, "direction": "up", "target_operator": ">", "target_value": 5.0}}}},
        {"dagster/partition": "2025-09-01"})
    assert signals == {"train_model_name": "signals", "train_start": dt.datetime(2025, 9, 1, tzinfo=UTC),
                       "train_end": dt.datetime(2025, 9, 2, tzinfo=UTC)}


def test_request_fields_of_test_and_compare_runs_tolerate_missing_and_bad_keys():
    test = request_fields("TEST", {"ops": {"test_report": {"config": {
        "model": 7, "test_start": "2025-09-02T00:00:00", "test_end": "not a time"}}}})
    assert test == {"test_model_id": 7, "test_start": dt.datetime(2025, 9, 2, tzinfo=UTC)}
    compare = request_fields("COMPARE", {"ops": {"model_comparison": {"config": {
        "model_a": "M1", "model_b": 3, "test_start": "2025-09-02", "test_end": "2025-09-03"}}}})
    assert compare == {"compare_model_a_id": "M1", "compare_model_b_id": 3,
                       "compare_start": dt.datetime(2025, 9, 2, tzinfo=UTC),
                       "compare_end": dt.datetime(2025, 9, 3, tzinfo=UTC)}
    assert request_fields("TEST", {}) == {}
    assert request_fields("TRAIN", {"resources": {}}) == {}
    assert request_fields("SCORE", {"ops": {}}) == {}
    long = request_fields("TRAIN", {"resources": {"training_request": {"config": {
        "model_type": "x" * 300, "future_minutes": "ten", "target_value": float("inf")}}}})
    assert long == {"train_model_type": "x" * 50}  # cut to the column; unusable numbers dropped
