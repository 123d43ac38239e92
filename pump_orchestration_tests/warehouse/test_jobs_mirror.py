"""The ml_jobs mirror's storage on both backends: upserts, monotone status and progress, result ids."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from pump_orchestration.warehouse import repository
from pump_orchestration.warehouse.jobs_mirror import get_job, record_progress, record_result, upsert_job
from pump_orchestration.warehouse.schema import ml_jobs

UTC = dt.timezone.utc
T0 = dt.datetime(2025, 9, 1, 12, 0, tzinfo=UTC)


def _upsert(engine, run_id, **values):
    with engine.begin() as conn:
        return upsert_job(conn, run_id, values)


def _row(engine, run_id):
    with engine.connect() as conn:
        return get_job(conn, run_id)


def _model(engine, name="M1") -> int:
    with engine.begin() as conn:
        return repository.insert_model(conn, {
            "name": name, "model_type": "xgboost", "status": "READY", "target_variable": "price_close",
            "train_start": T0, "train_end": T0 + dt.timedelta(days=1), "features": ["price_close"],
        })


def test_upsert_inserts_then_updates_the_same_row(warehouse_engine):
    first = _upsert(warehouse_engine, "run-1", job_type="TRAIN", status="PENDING", created_at=T0,
                    train_model_name="A", train_features=["price_close", "volume_sol"])
    again = _upsert(warehouse_engine, "run-1", job_type="TRAIN", status="RUNNING",
                    started_at=T0 + dt.timedelta(seconds=5))
    other = _upsert(warehouse_engine, "run-2", job_type="TEST", status="PENDING")
    assert first == again != other
    row = _row(warehouse_engine, "run-1")
    assert row["status"] == "RUNNING" and row["progress"] == 0.0
    assert row["created_at"] == T0 and row["started_at"] == T0 + dt.timedelta(seconds=5)
    assert row["train_model_name"] == "A" and row["train_features"] == ["price_close", "volume_sol"]
    with warehouse_engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(ml_jobs)).scalar() == 2


def test_status_never_goes_backwards_and_none_never_erases(warehouse_engine):
    _upsert(warehouse_engine, "r", job_type="TRAIN", status="RUNNING", train_model_name="A")
    _upsert(warehouse_engine, "r", job_type="TRAIN", status="COMPLETED", completed_at=T0)
    _upsert(warehouse_engine, "r", job_type="TRAIN", status="RUNNING", train_model_name=None)  # a late tick
    _upsert(warehouse_engine, "r", job_type="TRAIN", status="PENDING")
    _upsert(warehouse_engine, "r", job_type="TRAIN", status="FAILED")  # terminal states are final
    row = _row(warehouse_engine, "r")
    assert row["status"] == "COMPLETED" and row["train_model_name"] == "A" and row["completed_at"] == T0


def test_progress_is_monotone_and_its_message_follows_it(warehouse_engine):
    record_progress(warehouse_engine, "r", "TRAIN", 0.5, "half")
    record_progress(warehouse_engine, "r", "TRAIN", 0.2, "stale")
    assert (_row(warehouse_engine, "r")["progress"], _row(warehouse_engine, "r")["progress_msg"]) == (0.5, "half")
    record_progress(warehouse_engine, "r", "TRAIN", 7.0, "done")  # clamped to the CHECK range
    row = _row(warehouse_engine, "r")
    assert (row["progress"], row["progress_msg"], row["status"], row["job_type"]) == (1.0, "done", "RUNNING", "TRAIN")
    with pytest.raises(ValueError, match="NaN"):
        record_progress(warehouse_engine, "r", "TRAIN", float("nan"), "?")


def test_record_progress_sets_started_at_once_and_the_sensor_may_make_it_earlier(warehouse_engine):
    record_progress(warehouse_engine, "r", "TEST", 0.1, "loading")
    started = _row(warehouse_engine, "r")["started_at"]
    assert started is not None and _row(warehouse_engine, "r")["job_type"] == "TEST"
    record_progress(warehouse_engine, "r", "TEST", 0.2, "scoring")
    assert _row(warehouse_engine, "r")["started_at"] == started
    _upsert(warehouse_engine, "r", job_type="TEST", status="RUNNING", started_at=started - dt.timedelta(seconds=3))
    assert _row(warehouse_engine, "r")["started_at"] == started - dt.timedelta(seconds=3)


def test_unchanged_upsert_does_not_touch_the_row(warehouse_engine):
    values = dict(job_type="TRAIN", status="COMPLETED", progress=1.0, created_at=T0, train_phases=[1, 2])
    _upsert(warehouse_engine, "r", **values)
    before = _row(warehouse_engine, "r")
    _upsert(warehouse_engine, "r", **values)
    assert _row(warehouse_engine, "r") == before  # updated_at included


def test_model_references_resolve_by_id_or_name_and_unknown_ones_stay_null(warehouse_engine):
    model_id = _model(warehouse_engine)
    _upsert(warehouse_engine, "t1", job_type="TEST", status="PENDING", test_model_id="M1")
    _upsert(warehouse_engine, "t2", job_type="TEST", status="PENDING", test_model_id=str(model_id))
    _upsert(warehouse_engine, "c", job_type="COMPARE", status="PENDING",
            compare_model_a_id=model_id, compare_model_b_id="no such model")
    assert _row(warehouse_engine, "t1")["test_model_id"] == model_id
    assert _row(warehouse_engine, "t2")["test_model_id"] == model_id
    row = _row(warehouse_engine, "c")
    assert row["compare_model_a_id"] == model_id and row["compare_model_b_id"] is None


def test_record_result_stores_result_ids(warehouse_engine):
    model_id = _model(warehouse_engine)
    _upsert(warehouse_engine, "r", job_type="TRAIN", status="COMPLETED")
    record_result(warehouse_engine, "r", "TRAIN", result_model_id=model_id)
    row = _row(warehouse_engine, "r")
    assert row["result_model_id"] == model_id and row["status"] == "COMPLETED"
    with pytest.raises(ValueError, match="result_score"):
        record_result(warehouse_engine, "r", "TRAIN", result_score=1)


def test_bad_input_is_rejected(warehouse_engine):
    with pytest.raises(ValueError, match="job_type: unknown ml_jobs job type 'SCORE'"):
        record_progress(warehouse_engine, "r", "SCORE", 0.1, "x")
    with pytest.raises(ValueError, match="bogus"):
        _upsert(warehouse_engine, "r", job_type="TRAIN", status="PENDING", bogus=1)
    with pytest.raises(ValueError, match="no ml_jobs row"):
        _upsert(warehouse_engine, "missing", progress=0.5)


def test_walk_forward_is_a_job_type_of_its_own(warehouse_engine):
    _upsert(warehouse_engine, "wf", job_type="WALK_FORWARD", status="RUNNING", train_model_name="wf")
    assert _row(warehouse_engine, "wf")["job_type"] == "WALK_FORWARD"
    with pytest.raises(sa.exc.IntegrityError):  # the CHECK constraint still guards the column
        with warehouse_engine.begin() as conn:
            conn.execute(ml_jobs.insert().values(job_type="SCORE", status="PENDING", dagster_run_id="x"))
