"""coin_metrics_sensor: bounded batches, stable run keys across ticks, a new run only for a batch whose run failed."""
import dagster as dg
import pytest
import sqlalchemy as sa

from pump_orchestration.data.synthetic import generate_coin_metrics
from pump_orchestration.defs.scoring.jobs import score_coins_job
from pump_orchestration.defs.scoring.sensors import BATCH_TAG, coin_metrics_sensor, webhook_delivery_sensor
from pump_orchestration.defs.shared.resources import WarehouseResource, WebhookResource
from pump_orchestration.testing.locations import TestLocation
from pump_orchestration.warehouse import outbox
from pump_orchestration.warehouse.coin_metrics import write_coin_metrics


@pytest.fixture
def warehouse(warehouse_engine) -> WarehouseResource:
    return WarehouseResource(dsn=warehouse_engine.url.render_as_string(hide_password=False))


def _tick(instance, warehouse, **resources):
    context = dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse, **resources})
    return coin_metrics_sensor.evaluate_tick(context)


def test_new_rows_become_bounded_batches_requested_with_stable_keys(warehouse_engine, warehouse, monkeypatch, tmp_path):
    monkeypatch.setenv("SCORING_BATCH_ROWS", "500")
    metrics, _ = generate_coin_metrics(n_coins=12, start="2025-09-01T00:00:00Z", hours=1, seed=2)
    rows = write_coin_metrics(warehouse_engine, metrics.head(1200))
    assert rows == 1200
    with dg.instance_for_test() as instance:
        first = _tick(instance, warehouse)
        keys = [r.run_key for r in first.run_requests]
        assert len(keys) == 3 and all(k.startswith("score-") for k in keys)
        assert [r.run_config["ops"]["predictions"]["config"]["batch_key"] for r in first.run_requests] == \
            [r.tags[BATCH_TAG] for r in first.run_requests]
        with warehouse_engine.connect() as conn:
            sizes = conn.execute(sa.text("select batch_key, count(*) from coin_metrics_outbox group by 1")).all()
        assert sorted(n for _, n in sizes) == [200, 500, 500]

        # A tick after a restart requests the same batches under the same keys: Dagster drops the repeats.
        assert [r.run_key for r in _tick(instance, warehouse).run_requests] == keys

        # A batch whose run failed gets a new run; one whose run succeeded is left alone.
        job = TestLocation.on(warehouse_engine, tmp_path).defs.resolve_job_def(score_coins_job.name)
        failed_key, done_key = (r.tags[BATCH_TAG] for r in first.run_requests[:2])
        for key, status in ((failed_key, dg.DagsterRunStatus.FAILURE), (done_key, dg.DagsterRunStatus.SUCCESS)):
            instance.create_run_for_job(job, tags={BATCH_TAG: key}, status=status,
                                        run_config={"ops": {"predictions": {"config": {"batch_key": key}}}})
        third = {r.tags[BATCH_TAG]: r.run_key for r in _tick(instance, warehouse).run_requests}
        assert third[failed_key] == f"score-{failed_key}-retry1" and done_key not in third


def test_without_the_trigger_the_sensor_says_what_to_apply(warehouse_engine, warehouse):
    with warehouse_engine.begin() as conn:
        postgres = conn.dialect.name == "postgresql"
        conn.exec_driver_sql("DROP TRIGGER trg_coin_metrics_outbox" + (" ON coin_metrics" if postgres else ""))
    with dg.instance_for_test() as instance:
        result = _tick(instance, warehouse)
    if postgres:  # the tracker's table: only the DBA can add the trigger
        assert "apply sql/coin_metrics_outbox.sql" in result.skip_message and not result.run_requests
    else:  # the embedded warehouse owns coin_metrics and puts its trigger back when it opens
        with warehouse_engine.connect() as conn:
            assert outbox.trigger_installed(conn)


def test_webhook_sensor_is_off_without_a_url_and_requests_one_run_while_payloads_wait(warehouse_engine, warehouse,
                                                                                   monkeypatch):
    monkeypatch.delenv("N8N_WEBHOOK_URL", raising=False)
    with dg.instance_for_test() as instance:
        context = dg.build_sensor_context(instance=instance, resources={"warehouse": warehouse,
                                                                        "webhooks": WebhookResource()})
        assert "webhooks are off" in webhook_delivery_sensor.evaluate_tick(context).skip_message
        context = dg.build_sensor_context(instance=instance, resources={
            "warehouse": warehouse, "webhooks": WebhookResource(url="http://127.0.0.1:9/hook")})
        assert webhook_delivery_sensor.evaluate_tick(context).skip_message == "no pending webhook"
        with warehouse_engine.begin() as conn:
            conn.execute(sa.text("insert into prediction_webhooks (idempotency_key, coin_id, data_timestamp, payload) "
                                 "values ('k1', 'c', '2025-09-01 00:00:00', '{}')"))
        [request] = webhook_delivery_sensor.evaluate_tick(context).run_requests
        assert request.run_key.startswith("deliver-")
