"""Prediction runs in process on SQLite and PostgreSQL: every new row scored once per active model, webhooks
delivered once per coin and timestamp, repeats write nothing, broken models reported while others score."""
import json
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from werkzeug import Response

from pump_orchestration.defs.shared.resources import ModelStoreResource, SharedResources, WarehouseResource, WebhookResource
from pump_orchestration.definitions import build_definitions
from pump_orchestration.testing.locations import failure_text
from pump_orchestration.warehouse import outbox
from pump_orchestration.warehouse.coin_metrics import write_coin_metrics
from pump_orchestration.warehouse.schema import prediction_webhooks, predictions


def _location_with_webhooks(location, url: str):
    shared = SharedResources(
        warehouse=WarehouseResource(dsn=location.engine.url.render_as_string(hide_password=False)),
        model_store=ModelStoreResource(root=str(location.data_dir / "models")),
        webhooks=WebhookResource(url=url, timeout_seconds=2, max_attempts=3, backoff_seconds=0.01),
        cache_dir=str(location.data_dir / "cache"))
    return build_definitions(shared)


def _score_open_batches(defs, engine, batch_rows: int = 400) -> list:
    with engine.begin() as conn:
        outbox.claim_batches(conn, batch_rows, 100)
        keys = outbox.open_batches(conn)
    results = []
    for key in keys:
        result = defs.resolve_job_def("score_coins_job").execute_in_process(
            run_config={"ops": {"predictions": {"config": {"batch_key": key}}}}, raise_on_error=False)
        assert result.success, failure_text(result)
        results.append(result)
    return results


def _count(engine, table) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_new_rows_are_scored_by_every_active_model_and_pushed_once(location, live_market, httpserver):
    received = []

    def accept(request):
        received.append((request.headers["Idempotency-Key"], json.loads(request.data)))
        return Response("ok", 200)

    httpserver.expect_request("/webhook/pump-alerts", method="POST").respond_with_handler(accept)
    defs = _location_with_webhooks(location, httpserver.url_for("/webhook/pump-alerts"))
    arriving = live_market.head(600)
    for chunk in (arriving.iloc[:200], arriving.iloc[200:450], arriving.iloc[450:]):  # the tracker's inserts
        write_coin_metrics(location.engine, chunk)
    runs = _score_open_batches(defs, location.engine)
    assert len(runs) == 2  # 600 rows in bounded batches of 400

    meta = [r.asset_materializations_for_node("predictions")[0].metadata for r in runs]
    scored = sum(m["predictions"].value for m in meta)
    skipped = sum(m["rows_skipped"].value for m in meta)
    assert scored + skipped == 2 * len(arriving) and scored == _count(location.engine, predictions)
    assert all(set(m["predictions_per_model"].value) == {"live_xgb", "live_rf"} for m in meta)
    with location.engine.connect() as conn:
        per_key = conn.execute(sa.text("select model_id, coin_id, data_timestamp, count(*) from predictions "
                                       "group by 1, 2, 3 having count(*) > 1")).all()
        assert per_key == []
        assert outbox.pending_rows(conn) == 0
        statuses = dict(conn.execute(sa.text("select status, count(*) from prediction_webhooks group by 1")).all())
    # One webhook per coin and timestamp, each with both models' predictions, each delivered once.
    keys = [key for key, _ in received]
    assert len(keys) == len(set(keys)) == statuses["DELIVERED"] == _count(location.engine, prediction_webhooks)
    with location.engine.connect() as conn:
        chosen = conn.execute(sa.text("select alert_threshold from ml_models where name = 'live_xgb'")).scalar_one()
    for key, body in received:
        assert body["idempotency_key"] == key and len(body["predictions"]) == 2
        assert set(body) == {"coin_id", "timestamp", "predictions", "metadata", "idempotency_key"}
        assert set(body["predictions"][0]) == {"prediction", "probability", "is_alert", "alert_threshold", "model"}
        assert body["metadata"]["service"] == "ml-prediction-service" and body["metadata"]["total_predictions"] == 2
        thresholds = {p["model"]["name"]: p["alert_threshold"] for p in body["predictions"]}
        assert thresholds == {"live_rf": 0.0, "live_xgb": chosen}  # live_xgb: activated at its chosen threshold
        assert all(p["is_alert"] == (p["probability"] > p["alert_threshold"]) for p in body["predictions"])
        assert body["metadata"]["alerts_count"] == sum(p["is_alert"] for p in body["predictions"])

    # The same batches requested again (a restarted daemon, a re-run from the UI): nothing is written twice.
    with location.engine.connect() as conn:
        keys_done = [row[0] for row in conn.execute(sa.text("select distinct batch_key from coin_metrics_outbox"))]
    for key in keys_done:
        again = defs.resolve_job_def("score_coins_job").execute_in_process(
            run_config={"ops": {"predictions": {"config": {"batch_key": key}}}})
        meta = again.asset_materializations_for_node("predictions")[0].metadata
        assert meta["predictions_written"].value == 0 and meta["webhooks_queued"].value == 0
    assert _count(location.engine, predictions) == scored and len(received) == len(keys)


def test_a_deleted_or_corrupt_artifact_is_reported_and_the_other_model_still_scores(location, live_market):
    defs = location.defs
    with location.engine.connect() as conn:
        paths = dict(conn.execute(sa.text("select model_name, local_model_path from prediction_active_models")).all())
    Path(paths["live_rf"]).write_bytes(b"not a model")
    write_coin_metrics(location.engine, live_market.head(50))
    [run] = _score_open_batches(defs, location.engine)
    meta = run.asset_materializations_for_node("predictions")[0].metadata
    [problem] = meta["models_unavailable"].value
    assert problem["model"] == "live_rf" and "ArtifactIntegrityError" in problem["reason"]
    assert set(meta["predictions_per_model"].value) == {"live_xgb"} and meta["predictions"].value > 0

    Path(paths["live_xgb"]).unlink()
    write_coin_metrics(location.engine, live_market.iloc[50:60])
    [run] = _score_open_batches(defs, location.engine)
    meta = run.asset_materializations_for_node("predictions")[0].metadata
    assert {p["model"] for p in meta["models_unavailable"].value} == {"live_rf", "live_xgb"}
    assert meta["predictions"].value == 0 and meta["outbox_rows_closed"].value == 10


def test_receiver_errors_leave_webhooks_pending_until_a_redelivery_run_delivers_each_once(location, live_market,
                                                                                          httpserver):
    accepted, refused = [], []

    def flaky(request):
        if len(refused) < 6:
            refused.append(request.headers["Idempotency-Key"])
            return Response("overloaded", 503)
        accepted.append(request.headers["Idempotency-Key"])
        return Response("ok", 200)

    httpserver.expect_request("/hook", method="POST").respond_with_handler(flaky)
    defs = _location_with_webhooks(location, httpserver.url_for("/hook"))
    write_coin_metrics(location.engine, live_market.head(40))
    _score_open_batches(defs, location.engine)
    with location.engine.connect() as conn:
        pending = conn.execute(sa.text("select count(*) from prediction_webhooks where status = 'PENDING'")).scalar()
    assert pending >= 1  # the first payloads ran out of attempts against 503s
    redelivery = defs.resolve_job_def("deliver_webhooks_job").execute_in_process()
    assert redelivery.success
    total = _count(location.engine, prediction_webhooks)
    assert sorted(accepted) == sorted(set(accepted)) and len(accepted) == total
    with location.engine.connect() as conn:
        log = conn.execute(sa.text("select response_status, count(*) from prediction_webhook_log group by 1")).all()
        assert conn.execute(sa.text("select count(*) from prediction_webhooks where status = 'DELIVERED'")).scalar() == total
    assert dict(log) == {503: 6, 200: total}


def test_one_coin_scored_by_hand_from_the_job_and_the_cli(location, live_market, tmp_path):
    import os
    import subprocess
    import sys

    write_coin_metrics(location.engine, live_market.head(30))
    coin = live_market["mint"].iloc[0]
    result = location.defs.resolve_job_def("score_coin_job").execute_in_process(
        run_config={"ops": {"score_coin": {"config": {"coin": coin, "models": ["live_xgb"]}}}})
    [event] = [e for e in result.all_events if e.event_type_value == "STEP_OUTPUT"]
    metadata = event.event_specific_data.metadata
    [prediction] = metadata["predictions"].value
    assert prediction["model"]["name"] == "live_xgb" and 0 <= prediction["probability"] <= 1
    assert _count(location.engine, predictions) == 0  # manual scoring stores nothing

    unknown = location.defs.resolve_job_def("score_coin_job").execute_in_process(
        run_config={"ops": {"score_coin": {"config": {"coin": "nope"}}}}, raise_on_error=False)
    assert "coin: no coin_metrics row for 'nope'" in failure_text(unknown)

    cli = str(Path(sys.executable).parent / "pump-orchestration")
    env = {**{k: v for k, v in os.environ.items() if k not in ("DB_DSN", "PUMP_DEPLOYMENT")},
           "PUMP_DEPLOYMENT": "production", "DB_DSN": location.engine.url.render_as_string(hide_password=False),
           "PUMP_DATA_DIR": str(location.data_dir)}
    out = subprocess.run([cli, "score", coin, "--at", str(live_market["timestamp"].iloc[0])], env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout)
    assert printed["coin_id"] == coin and {p["model"]["name"] for p in printed["predictions"]} == {"live_xgb", "live_rf"}
    bad = subprocess.run([cli, "score", coin, "--model", "ghost"], env=env, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "pump-orchestration: models: 'ghost' is not an active model (see `pump-orchestration models list`)")
