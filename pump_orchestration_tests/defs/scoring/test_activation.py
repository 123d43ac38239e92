"""``manage_active_models_job`` in process on both backends: an activation, refusals as one-line failures."""
from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest

from pump_orchestration.defs.scoring.activation import manage_active_models_job
from pump_orchestration.defs.shared.resources import ModelStoreResource, WarehouseResource
from pump_orchestration.ml.model_store import sha256_file
from pump_orchestration.testing.locations import failure_text
from pump_orchestration.warehouse import active_models
from pump_orchestration_tests.warehouse.test_active_models import insert_model_with_artifact


@pytest.fixture
def run(warehouse_engine, tmp_path, monkeypatch):
    """Runs the job with ``ops.manage_active_models.config``; active copies land under ``tmp_path/data``."""
    monkeypatch.setenv("PUMP_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("ACTIVE_MODELS_DIR", raising=False)
    defs = dg.Definitions(jobs=[manage_active_models_job], resources={
        "warehouse": WarehouseResource(dsn=warehouse_engine.url.render_as_string(hide_password=False)),
        "model_store": ModelStoreResource(root=str(tmp_path / "models")),
    })

    def execute(config: dict) -> dg.ExecuteInProcessResult:
        return defs.resolve_job_def("manage_active_models_job").execute_in_process(
            run_config={"ops": {"manage_active_models": {"config": config}}}, raise_on_error=False)

    return execute


def _output_metadata(result: dg.ExecuteInProcessResult) -> dict:
    (event,) = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    return event.event_specific_data.metadata


def test_activate_through_the_job(run, warehouse_engine, tmp_path):
    model = insert_model_with_artifact(warehouse_engine, tmp_path / "models")
    result = run({"action": "activate", "model": "m1", "threshold": 0.6, "name": "live"})
    assert result.success, failure_text(result)

    (row,) = active_models.list_active_models(warehouse_engine)
    assert (row["model_id"], row["alert_threshold"], row["custom_name"], row["is_active"]) == (
        model["id"], 0.6, "live", True)
    copy = Path(row["local_model_path"])
    assert copy.parent == tmp_path / "data" / "active_models"
    assert sha256_file(copy) == model["model_sha256"]

    metadata = _output_metadata(result)
    assert metadata["active_count"].value == 1
    assert "| id | model_id | model_name | custom_name |" in metadata["active_models"].value
    assert "| live |" in metadata["active_models"].value
    affected = metadata["affected_row"].value
    assert (affected["id"], affected["model_id"], affected["local_model_path"]) == (row["id"], model["id"], str(copy))

    listed = run({"action": "list"})
    assert listed.success and "affected_row" not in _output_metadata(listed)


def test_a_refusal_fails_the_run_with_its_one_line(run, warehouse_engine, tmp_path):
    insert_model_with_artifact(warehouse_engine, tmp_path / "models", status="FAILED")
    result = run({"action": "activate", "model": "m1"})
    assert not result.success
    assert "model 'm1': status FAILED, only READY models can be activated" in failure_text(result)
    assert active_models.list_active_models(warehouse_engine) == []
    assert not (tmp_path / "data" / "active_models").exists()


@pytest.mark.parametrize("config, message", [
    ({"action": "promote", "model": "m1"},
     "action 'promote' is unknown; allowed: list, activate, deactivate, set_threshold, rename, delete"),
    ({"action": "set_threshold", "model": "m1"}, "action set_threshold needs threshold"),
    ({"action": "rename"}, "action rename needs model and name"),
])
def test_a_bad_request_names_what_is_wrong(run, config, message):
    result = run(config)
    assert not result.success and message in failure_text(result)


def test_the_job_stays_out_of_the_ml_queue_and_documents_its_config():
    assert manage_active_models_job.tags == {} and manage_active_models_job.run_tags == {}  # not an ML run
    assert manage_active_models_job.description
    config_type = manage_active_models_job.run_config_schema.config_type
    for part in ("ops", "manage_active_models", "config"):
        config_type = config_type.fields[part].config_type
    assert sorted(config_type.fields) == ["action", "force", "model", "name", "threshold"]
    assert all(field.description for field in config_type.fields.values())
