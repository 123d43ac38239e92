"""ml_jobs_sensor and report_progress against real runs on a test instance and a SQLite warehouse."""

import dagster as dg
import pytest
from pydantic import Field

from pump_orchestration.defs.ml_jobs.sensors import ml_jobs_sensor
from pump_orchestration.defs.shared.progress import report_progress
from pump_orchestration.defs.shared.resources import WarehouseResource
from pump_orchestration.defs.shared.tags import ml_job_tags
from pump_orchestration.warehouse.jobs_mirror import get_job


class TinyRequest(dg.ConfigurableResource):
    """Stands in for the training request: the sensor reads ``resources.training_request.config``."""

    name: str
    model_type: str = "xgboost"
    min_percent_change: float = Field(default=30.0)


@dg.asset
def tiny_model(context: dg.AssetExecutionContext, training_request: TinyRequest, warehouse: WarehouseResource) -> int:
    report_progress(context, warehouse, 0.3, "data loaded")
    if training_request.min_percent_change > 1000:
        raise ValueError("only one class in the labels: no row rises 5000 %")
    report_progress(context, warehouse, 0.9, "fitted")
    return 1


# The tags alone make a run an ML run of a type: the job's name plays no part.
tiny_train_job = dg.define_asset_job("tiny_train_job", selection=[tiny_model], tags=ml_job_tags("TRAIN"),
                                     executor_def=dg.in_process_executor)
# Named like a real ML job, but untagged: not mirrored.
untagged_job = dg.define_asset_job("test_model_job", selection=[tiny_model], executor_def=dg.in_process_executor)


def _run(instance, job, warehouse: WarehouseResource, partition: str | None = None, **request) -> str:
    defs = dg.Definitions(assets=[tiny_model], jobs=[job],
                          resources={"warehouse": warehouse, "training_request": TinyRequest.configure_at_launch()})
    result = defs.resolve_job_def(job.name).execute_in_process(
        instance=instance, raise_on_error=False, tags={"dagster/partition": partition} if partition else None,
        run_config={"resources": {"training_request": {"config": request}}},
    )
    return result.run_id


def _tick(instance, warehouse, cursor=None):
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources={"warehouse": warehouse})
    return ml_jobs_sensor.evaluate_tick(context)


def _row(warehouse: WarehouseResource, run_id: str) -> dict | None:
    with warehouse.engine().connect() as conn:
        return get_job(conn, run_id)


@pytest.fixture
def warehouse(sqlite_dsn) -> WarehouseResource:
    return WarehouseResource(dsn=sqlite_dsn)


def test_sensor_mirrors_success_and_failure_and_a_repeated_tick_writes_nothing(warehouse):
    with dg.instance_for_test() as instance:
        ok = _run(instance, tiny_train_job, warehouse, "2025-09-01", name="good")
        bad = _run(instance, tiny_train_job, warehouse, name="bad", min_percent_change=5000.0)
        other = _run(instance, untagged_job, warehouse, name="untagged")

        first = _tick(instance, warehouse)
        assert first.cursor is not None and not first.run_requests

        done = _row(warehouse, ok)
        assert done["job_type"] == "TRAIN" and done["status"] == "COMPLETED" and done["progress"] == 1.0
        assert done["progress_msg"] == "fitted"  # written by report_progress inside the run
        assert done["train_model_name"] == "good" and done["train_model_type"] == "xgboost"
        assert done["train_price_change_percent"] == 30.0
        assert done["train_start"].isoformat() == "2025-09-01T00:00:00+00:00"  # from the partition
        assert done["created_at"] <= done["started_at"] <= done["completed_at"] and done["error_msg"] is None

        failed = _row(warehouse, bad)
        assert failed["status"] == "FAILED" and failed["completed_at"] is not None
        assert failed["progress"] == 0.3 and failed["train_price_change_percent"] == 5000.0
        # The user's error first, then where it happened; no Dagster boilerplate or wrapper types.
        assert failed["error_msg"] == ("ValueError: only one class in the labels: no row rises 5000 %\n"
                                       "(failed step: tiny_model)")
        assert "Stack Trace" not in failed["error_msg"] and 'File "' not in failed["error_msg"]

        # Runs without the ML tags are not ML jobs: report_progress and the sensor leave them alone.
        assert _row(warehouse, other) is None

        second = _tick(instance, warehouse, first.cursor)
        assert second.cursor == first.cursor
        assert _row(warehouse, ok) == done and _row(warehouse, bad) == failed  # updated_at unchanged too

        later = _run(instance, tiny_train_job, warehouse, name="later")
        third = _tick(instance, warehouse, second.cursor)
        assert third.cursor > second.cursor and _row(warehouse, later)["status"] == "COMPLETED"


def test_sensor_skip_reason_tells_news_only(warehouse):
    with dg.instance_for_test() as instance:
        idle = _tick(instance, warehouse)
        assert idle.skip_message == "no ML run changed" and idle.cursor is None

        _run(instance, tiny_train_job, warehouse, name="one")
        busy = _tick(instance, warehouse)
        assert busy.skip_message == "ml_jobs: 1 run change(s) mirrored"
        # The next ticks re-read the run inside the look-back window: that is no news.
        again = _tick(instance, warehouse, busy.cursor)
        assert again.skip_message == "no ML run changed" and again.cursor == busy.cursor


def test_sensor_sees_runs_not_started_yet_as_pending(warehouse):
    with dg.instance_for_test() as instance:
        defs = dg.Definitions(assets=[tiny_model], jobs=[tiny_train_job],
                              resources={"warehouse": warehouse, "training_request": TinyRequest(name="q")})
        run = instance.create_run_for_job(defs.resolve_job_def("tiny_train_job"), tags=ml_job_tags("TRAIN"),
                                          status=dg.DagsterRunStatus.NOT_STARTED)
        _tick(instance, warehouse)
    row = _row(warehouse, run.run_id)
    assert row["status"] == "PENDING" and row["started_at"] is None and row["progress"] == 0.0


def test_report_progress_never_fails_the_run(tmp_path):
    unreachable = WarehouseResource(dsn="postgresql://nobody@127.0.0.1:1/none")
    with dg.instance_for_test() as instance:
        run_id = _run(instance, tiny_train_job, unreachable, name="x")
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.SUCCESS
        warnings = [e.user_message for e in instance.all_logs(run_id) if "ml_jobs progress not recorded" in e.user_message]
    assert len(warnings) == 2


def test_report_progress_in_a_directly_invoked_asset_only_logs(warehouse):
    assert tiny_model(dg.build_asset_context(), TinyRequest(name="n"), warehouse) == 1
