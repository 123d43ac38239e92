"""Live scoring under a real webserver and daemon, on SQLite and PostgreSQL: rows inserted while the daemon runs
and while it is stopped are each scored once by every active model; a receiver that answers 503 for a while
still gets every payload exactly once."""
import json
import threading
import time

import dagster as dg
import pandas as pd
import pytest
import requests
import sqlalchemy as sa
from werkzeug import Response

from pump_orchestration.data.synthetic import generate_coin_metrics
from pump_orchestration.ml.model_store import ModelStore
from pump_orchestration.testing.dagster_servers import REPO, dagster_daemon, dagster_home, dagster_processes, wait_for_run
from pump_orchestration.testing.locations import TestLocation, failure_text
from pump_orchestration.testing.postgres import start_postgres
from pump_orchestration.warehouse import active_models
from pump_orchestration.warehouse.coin_metrics import write_coin_metrics
from pump_orchestration.warehouse.db import init_schema, make_engine

DAY = "2025-09-01"
LIVE_FROM = pd.Timestamp(f"{DAY}T05:30:00Z")
TIMEOUT = 240


def _readme_recipes() -> list[str]:
    """The JSON bodies of the README's live-scoring GraphQL recipes, in order."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("## Live scoring"):text.index("## Data")]
    return [block.split("```", 1)[0] for block in section.split("```json\n")[1:]]


def _with_config(recipe: str, op: str, **config) -> str:
    """The README recipe with ``config`` set in its op's config (this test's model and coin)."""
    body = json.loads(recipe)
    body["variables"]["p"]["runConfigData"]["ops"][op]["config"].update(config)
    return json.dumps(body)


def _post(port: int, body: str) -> dict:
    response = requests.post(f"http://127.0.0.1:{port}/graphql", data=body, timeout=60,
                             headers={"Content-Type": "application/json"})
    response.raise_for_status()
    return response.json()["data"]


def _wait_for(engine, sql: str, expected: int, timeout: float = TIMEOUT) -> float:
    start = time.monotonic()
    value = None
    while time.monotonic() - start < timeout:
        with engine.connect() as conn:
            value = conn.execute(sa.text(sql)).scalar()
        if value == expected:
            return time.monotonic() - start
        time.sleep(0.5)
    raise AssertionError(f"{sql!r} stayed {value}, expected {expected} within {timeout}s")


def _prepare(url: str, env: dict, tmp_path, monkeypatch):
    """A warehouse at ``url`` with history and an active model (d_xgb; d_rf trained, not active), and the env."""
    data = tmp_path / "data"
    engine = make_engine(url)
    init_schema(engine, create_coin_metrics=True)
    metrics, _ = generate_coin_metrics(n_coins=60, start=f"{DAY}T00:00:00Z", hours=6, seed=5)
    write_coin_metrics(engine, metrics[metrics["timestamp"] < LIVE_FROM], queue_for_scoring=False)
    monkeypatch.setenv("PUMP_DATA_DIR", str(data))
    location = TestLocation.on(engine, data)
    for name, model_type in (("d_xgb", "xgboost"), ("d_rf", "random_forest")):
        trained = location.train({"name": name, "model_type": model_type, "label_mode": "within", "cv_splits": 3,
                                  "params": {"n_estimators": 20}, "train_end": f"{DAY}T05:00:00Z"})
        assert trained.success, failure_text(trained)
    active_models.activate(engine, "d_xgb", store=ModelStore(data / "models"), active_dir=data / "active_models",
                           force=True)  # scoring is under test here, not the rule gate
    env = {**env, "DAGSTER_HOME": str(dagster_home(tmp_path / "home")), "PUMP_DATA_DIR": str(data),
           "PUMP_PARTITIONS_START": "2025-08-25", "SCORING_BATCH_ROWS": "40"}
    return engine, env, metrics[metrics["timestamp"] >= LIVE_FROM].sort_values("timestamp").reset_index(drop=True)


@pytest.fixture(params=["sqlite", "postgres"])
def deployment(request, tmp_path, monkeypatch):
    """The embedded or the PostgreSQL deployment, prepared by ``_prepare``."""
    if request.param == "sqlite":
        url, env = f"sqlite:///{tmp_path / 'data' / 'warehouse.sqlite'}", {"PUMP_DEPLOYMENT": "local"}
    else:
        url = request.getfixturevalue("pg_dsn")
        env = {"PUMP_DEPLOYMENT": "production", "DB_DSN": url}
    engine, env, arriving = _prepare(url, env, tmp_path, monkeypatch)
    yield engine, env, arriving
    engine.dispose()


@pytest.mark.integration
def test_rows_inserted_with_the_daemon_up_and_down_are_scored_once_and_pushed_once(deployment, tmp_path, httpserver):
    engine, env, arriving = deployment
    accepted, refused, lock = [], [], threading.Lock()

    def receiver(request):
        with lock:
            if len(refused) < 5:  # the receiver is overloaded for a while
                refused.append(request.headers["Idempotency-Key"])
                return Response("busy", 503)
            accepted.append((request.headers["Idempotency-Key"], json.loads(request.data)))
        return Response("ok", 200)

    httpserver.expect_request("/webhook/pump-alerts", method="POST").respond_with_handler(receiver)
    env["N8N_WEBHOOK_URL"] = httpserver.url_for("/webhook/pump-alerts")
    first, second = arriving.iloc[:60], arriving.iloc[60:130]
    activate, score_one, recent = _readme_recipes()
    with dagster_processes(env, tmp_path, daemon=False) as port:
        with dagster_daemon(env, tmp_path):
            launched = _post(port, _with_config(activate, "manage_active_models", model="d_rf"))["launchRun"]
            assert launched["__typename"] == "LaunchRunSuccess", launched
            assert wait_for_run(port, launched["run"]["runId"]) == "SUCCESS"
            for chunk in (first.iloc[:20], first.iloc[20:45], first.iloc[45:]):  # the tracker's inserts
                write_coin_metrics(engine, chunk)
                time.sleep(1)
            _wait_for(engine, "select count(*) from coin_metrics_outbox where scored_at is null", 0)
        # The daemon is down: these rows wait in the outbox.
        write_coin_metrics(engine, second.iloc[:35])
        write_coin_metrics(engine, second.iloc[35:])
        with engine.connect() as conn:
            waiting = conn.execute(sa.text("select count(*) from coin_metrics_outbox where scored_at is null")).scalar()
        assert waiting == len(second)
        with dagster_daemon(env, tmp_path):
            _wait_for(engine, "select count(*) from coin_metrics_outbox where scored_at is null", 0)
            _wait_for(engine, "select count(*) from prediction_webhooks where status <> 'DELIVERED'", 0)
            coin = second["mint"].iloc[-1]
            launched = _post(port, _with_config(score_one, "score_coin", coin=coin))["launchRun"]
            assert wait_for_run(port, launched["run"]["runId"]) == "SUCCESS"
        runs = _post(port, recent)["assetOrError"]["assetMaterializations"]
        # One entry per batch run (how rows fall into batches depends on tick timing), newest first.
        assert 1 <= len(runs) <= 5
        assert all({"predictions", "webhooks_delivered"} <= {e["label"] for e in r["metadataEntries"]} for r in runs)

    with engine.connect() as conn:
        rows_queued = conn.execute(sa.text("select count(*) from coin_metrics_outbox")).scalar()
        per_model = dict(conn.execute(sa.text("select model_id, count(*) from predictions group by 1")).all())
        doubled = conn.execute(sa.text("select count(*) from (select model_id, coin_id, data_timestamp from predictions "
                                       "group by 1, 2, 3 having count(*) > 1) d")).scalar()
        webhooks = conn.execute(sa.text("select count(*) from prediction_webhooks")).scalar()
        scored_pairs = conn.execute(sa.text("select count(distinct coin_id || '@' || cast(data_timestamp as text)) "
                                            "from predictions")).scalar()
    assert rows_queued == len(first) + len(second)  # every insert reached the outbox, none twice
    assert doubled == 0 and len(per_model) == 2
    assert all(n == scored_pairs for n in per_model.values())  # both models scored the same rows
    assert scored_pairs >= 0.9 * rows_queued  # the rest are skipped with a reason (e.g. missing inputs)
    keys = [key for key, _ in accepted]
    assert len(keys) == len(set(keys)) == webhooks == scored_pairs  # each payload accepted exactly once
    assert len(refused) == 5 and set(refused) <= set(keys)  # refused ones were delivered later
    assert all(len(body["predictions"]) == 2 for _, body in accepted)


@pytest.mark.integration
def test_a_database_outage_loses_no_row_and_scores_none_twice(tmp_path, monkeypatch, httpserver):
    """The warehouse goes down while rows wait and runs are under way; when it is back, every row is scored once."""
    server = start_postgres()
    try:
        url = server.url(server.create_database())
        engine, env, arriving = _prepare(url, {"PUMP_DEPLOYMENT": "production", "DB_DSN": url}, tmp_path,
                                         monkeypatch)
        keys = []
        httpserver.expect_request("/hook", method="POST").respond_with_handler(
            lambda request: keys.append(request.headers["Idempotency-Key"]) or Response("ok", 200))
        env["N8N_WEBHOOK_URL"] = httpserver.url_for("/hook")
        before, after = arriving.iloc[:80], arriving.iloc[80:120]
        with dagster_processes(env, tmp_path), dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            write_coin_metrics(engine, before)
            deadline = time.monotonic() + 60
            while not instance.get_runs(dg.RunsFilter(job_name="score_coins_job")) and time.monotonic() < deadline:
                time.sleep(0.2)  # the sensor has claimed the rows and requested runs...
            engine.dispose()
            server.pause()  # ...and the database goes away under them, before they can score
            time.sleep(12)
            server.resume()
            write_coin_metrics(engine, after)
            _wait_for(engine, "select count(*) from coin_metrics_outbox where scored_at is null", 0)
            _wait_for(engine, "select count(*) from prediction_webhooks where status <> 'DELIVERED'", 0)
        with engine.connect() as conn:
            queued = conn.execute(sa.text("select count(*) from coin_metrics_outbox")).scalar()
            doubled = conn.execute(sa.text("select count(*) from (select model_id, coin_id, data_timestamp "
                                           "from predictions group by 1, 2, 3 having count(*) > 1) d")).scalar()
            scored = conn.execute(sa.text("select count(*) from predictions")).scalar()
            webhooks = conn.execute(sa.text("select count(*) from prediction_webhooks")).scalar()
        assert queued == len(before) + len(after) and doubled == 0
        assert scored >= 0.9 * queued and webhooks == scored  # one model: one prediction per webhook
        assert len(keys) == len(set(keys)) == webhooks
        with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
            runs = instance.get_runs(dg.RunsFilter(job_name="score_coins_job"))
        failed = {r.tags["pump/score_batch"] for r in runs if r.status == dg.DagsterRunStatus.FAILURE}
        succeeded = [r.tags["pump/score_batch"] for r in runs if r.status == dg.DagsterRunStatus.SUCCESS]
        assert failed, "the outage should have failed the runs in flight"
        assert failed <= set(succeeded) and len(succeeded) == len(set(succeeded))  # retried, each batch once
        engine.dispose()
    finally:
        server.stop()
