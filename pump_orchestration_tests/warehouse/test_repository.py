"""repository: ml_models round trips (JSON, UTC timestamps), lookups and listings on both backends."""
from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa

from pump_orchestration.warehouse.repository import (
    failed_model_name,
    get_model,
    get_model_type_defaults,
    insert_model,
    list_models,
    model_name_exists,
)
from pump_orchestration.warehouse.schema import ml_models

CET = dt.timezone(dt.timedelta(hours=2))
T0 = dt.datetime(2025, 9, 1, 14, 0, tzinfo=CET)  # 12:00 UTC


def _values(name: str, **overrides) -> dict:
    values = {
        "name": name,
        "model_type": "xgboost",
        "status": "READY",
        "target_variable": "price_close",
        "future_minutes": 10,
        "price_change_percent": 30.0,
        "target_direction": "up",
        "train_start": T0,
        "train_end": T0 + dt.timedelta(days=1),
        "features": ["price_close", "volume_sol", "price_roc_5"],
        "phases": [1, 2],
        "params": {"n_estimators": 50, "_time_based": {"enabled": True}, "windows": [5, 10, 15]},
        "confusion_matrix": [[10, 2], [3, 5]],
        "training_accuracy": 0.8125,
        "feature_importance": {"price_close": 0.6, "volume_sol": 0.4},
    }
    return {**values, **overrides}


def test_json_and_timestamps_round_trip(warehouse_engine):
    values = _values("PumpDetector_v1")
    with warehouse_engine.begin() as conn:
        model_id = insert_model(conn, values)
    with warehouse_engine.connect() as conn:
        row = get_model(conn, model_id=model_id)
        assert get_model(conn, name="PumpDetector_v1") == row
    for key in ("features", "phases", "params", "confusion_matrix", "feature_importance"):
        assert row[key] == values[key], key
    assert row["training_accuracy"] == 0.8125 and isinstance(row["training_accuracy"], float)
    assert row["train_start"] == T0 and row["train_start"].utcoffset() == dt.timedelta(0)
    assert row["created_at"].tzinfo is not None and row["is_deleted"] is False
    assert row["cv_scores"] is None  # Python None is SQL NULL, not JSON 'null'
    with warehouse_engine.connect() as conn:
        null_count = conn.execute(sa.select(sa.func.count()).where(ml_models.c.cv_scores.is_(None))).scalar()
    assert null_count == 1


def test_lookups(warehouse_engine):
    with warehouse_engine.begin() as conn:
        insert_model(conn, _values("a"))
        assert model_name_exists(conn, "a") and not model_name_exists(conn, "b")
        assert get_model(conn, name="b") is None and get_model(conn, model_id=999) is None
        with pytest.raises(ValueError):
            get_model(conn)
        with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
            insert_model(conn, _values("a"))
        with pytest.raises(ValueError, match="colour"):
            insert_model(conn, _values("c", colour="red"))


def test_model_type_defaults(warehouse_engine):
    with warehouse_engine.connect() as conn:
        assert get_model_type_defaults(conn, "random_forest") == {
            "n_estimators": 100, "max_depth": 10, "min_samples_split": 2}
        assert get_model_type_defaults(conn, "neural_network")["hidden_layers"] == [100, 50]
        with pytest.raises(ValueError, match="xgboost"):
            get_model_type_defaults(conn, "svm")


def test_list_models(warehouse_engine):
    with warehouse_engine.begin() as conn:
        ready = insert_model(conn, _values("ready"))
        failed = insert_model(conn, _values("failed", status="FAILED", error_msg="boom"))
        gone = insert_model(conn, _values("gone", is_deleted=True, deleted_at=T0))
    with warehouse_engine.connect() as conn:
        assert [m["id"] for m in list_models(conn)] == [failed, ready]
        assert [m["id"] for m in list_models(conn, status="READY")] == [ready]
        assert {m["id"] for m in list_models(conn, include_deleted=True)} == {ready, failed, gone}
        assert list_models(conn, status="FAILED")[0]["error_msg"] == "boom"


def test_a_failed_models_name_is_free_and_its_row_kept_under_a_new_name(warehouse_engine):
    with warehouse_engine.begin() as conn:
        failed = insert_model(conn, _values("PumpDetector_v1", status="FAILED", error_msg="gate failed"))
        assert not model_name_exists(conn, "PumpDetector_v1")
        retry = insert_model(conn, _values("PumpDetector_v1"))
        # A model that did not fail keeps its name, soft-deleted or not.
        assert model_name_exists(conn, "PumpDetector_v1")
        with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
            insert_model(conn, _values("PumpDetector_v1", status="FAILED"))
    with warehouse_engine.connect() as conn:
        assert get_model(conn, name="PumpDetector_v1")["id"] == retry
        old = get_model(conn, model_id=failed)
    assert old["name"] == f"PumpDetector_v1__failed_{failed}" and old["status"] == "FAILED"
    assert old["error_msg"] == "gate failed" and old["features"] == _values("x")["features"]


def test_the_failed_name_fits_the_column():
    renamed = failed_model_name("n" * 255, 123456)
    assert len(renamed) == 255 and renamed.endswith("__failed_123456")
