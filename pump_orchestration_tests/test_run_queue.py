"""The ML run queue and the ml_jobs mirror under a real webserver + daemon on PostgreSQL.

Four training runs are launched at once over GraphQL; the queue must never run more than two,
and ml_jobs must follow every run forward (PENDING → RUNNING → COMPLETED/FAILED) without going back.
"""
from __future__ import annotations

import re
import time

import pytest
import requests

from pump_orchestration.testing.dagster_servers import dagster_processes, launch_run, synthetic_deployment
from pump_orchestration.warehouse.jobs_mirror import get_job

RUNS = 'query($ids: [String!]) { runsOrError(filter: {runIds: $ids}) { ... on Runs { results { runId status } } } }'
ACTIVE = {"STARTING", "STARTED", "CANCELING"}
DONE = {"SUCCESS", "FAILURE", "CANCELED"}
ORDER = {"PENDING": 0, "RUNNING": 1, "COMPLETED": 2, "FAILED": 2, "CANCELLED": 2}
POLL_SECONDS = 0.3
TIMEOUT_SECONDS = 360


def _dagster_statuses(port: int, run_ids: list[str]) -> dict[str, str]:
    response = requests.post(f"http://127.0.0.1:{port}/graphql",
                             json={"query": RUNS, "variables": {"ids": run_ids}}, timeout=30)
    response.raise_for_status()
    return {r["runId"]: r["status"] for r in response.json()["data"]["runsOrError"]["results"]}


def _append_if_new(sequence: list, value) -> None:
    if value is not None and (not sequence or sequence[-1] != value):
        sequence.append(value)


@pytest.mark.integration
def test_at_most_two_ml_runs_at_once_and_ml_jobs_follows_them(tmp_path, pg_dsn):
    engine, home, env = synthetic_deployment(pg_dsn, tmp_path)
    request = {"model_type": "xgboost", "target_var": "price_close", "future_minutes": 10,
               "min_percent_change": 30.0, "direction": "up", "cv_splits": 3, "params": {"n_estimators": 30}}
    # The third run asks for a +5000 % move: no row is labelled positive, so it fails after loading data.
    requests_ = [{**request, "name": f"queued_{i}"} for i in range(4)]
    requests_[2]["min_percent_change"] = 5000.0

    started = time.monotonic()
    dagster_seq: dict[str, list[str]] = {}
    mirror_seq: dict[str, list[str]] = {}
    behind_limit: set[str] = set()  # runs seen QUEUED while two others held the ML slots
    max_active = 0
    with dagster_processes(env, tmp_path) as port:
        run_ids = []
        for req in requests_:
            launched = launch_run(port, req, "2025-09-01")
            assert launched["__typename"] == "LaunchRunSuccess", launched
            run_ids.append(launched["run"]["runId"])
        launched_at = time.monotonic()
        deadline = launched_at + TIMEOUT_SECONDS
        dagster_seq = {run_id: [] for run_id in run_ids}
        mirror_seq = {run_id: [] for run_id in run_ids}
        while time.monotonic() < deadline:
            statuses = _dagster_statuses(port, run_ids)
            active = [run_id for run_id, status in statuses.items() if status in ACTIVE]
            max_active = max(max_active, len(active))
            if len(active) == 2:
                behind_limit |= {run_id for run_id, status in statuses.items() if status == "QUEUED"}
            with engine.connect() as conn:
                rows = {run_id: get_job(conn, run_id) for run_id in run_ids}
            for run_id in run_ids:
                _append_if_new(dagster_seq[run_id], statuses.get(run_id))
                _append_if_new(mirror_seq[run_id], rows[run_id] and rows[run_id]["status"])
            if all(seq and seq[-1] in DONE for seq in dagster_seq.values()) and \
                    all(seq and ORDER[seq[-1]] == 2 for seq in mirror_seq.values()):
                break
            time.sleep(POLL_SECONDS)
        finished_at = time.monotonic()
    report = (f"dagster: {dagster_seq}\nml_jobs: {mirror_seq}\nbehind limit: {behind_limit}\n"
              f"max active: {max_active}; launch → all mirrored {finished_at - launched_at:.1f}s; "
              f"whole test {finished_at - started:.1f}s")
    print(report)

    assert max_active <= 2, report
    assert max_active == 2, report  # the limit is 2, not 1
    finals = [dagster_seq[run_id][-1] for run_id in run_ids]
    assert finals == ["SUCCESS", "SUCCESS", "FAILURE", "SUCCESS"], report
    # The daemon dequeues in launch order, so at least the last two waited behind the limit.
    assert set(run_ids[2:]) <= behind_limit, report

    for run_id in run_ids:
        seq = mirror_seq[run_id]
        assert [ORDER[s] for s in seq] == sorted(ORDER[s] for s in seq), report  # never backwards
        assert len(set(seq)) == len(seq), report
    for run_id in behind_limit:
        # Queued for a whole training run and then running for seconds: the sensor (every 5 s) sees both.
        assert mirror_seq[run_id][:2] == ["PENDING", "RUNNING"], report
    assert [mirror_seq[run_id][-1] for run_id in run_ids] == ["COMPLETED", "COMPLETED", "FAILED", "COMPLETED"]

    with engine.connect() as conn:
        rows = [get_job(conn, run_id) for run_id in run_ids]
    print("run seconds (started → completed):",
          [round((row["completed_at"] - row["started_at"]).total_seconds(), 1) for row in rows])
    print("error_msg of the failed run:", rows[2]["error_msg"])
    for row, req in zip(rows, requests_):
        assert row["job_type"] == "TRAIN" and row["train_model_name"] == req["name"], row
        assert row["train_model_type"] == "xgboost" and row["train_params"] == {"n_estimators": 30}
        assert row["train_start"].isoformat() == "2025-09-01T00:00:00+00:00"
        assert row["created_at"] <= row["started_at"] <= row["completed_at"], row
    assert [row["progress"] for row in rows] == [1.0, 1.0, rows[2]["progress"], 1.0]
    assert rows[2]["train_price_change_percent"] == 5000.0
    # The user's error first, then the failed step, without a stack trace:
    # "all … labelled rows are class 0 …\n(failed step: fitted_model)".
    assert re.search(r"class 0.*\n\(failed step: (labelled_dataset|engineered_features|fitted_model)\)$",
                     rows[2]["error_msg"], re.S), rows[2]["error_msg"]
    assert 'File "' not in rows[2]["error_msg"]
