"""The code location loads, and a real webserver + daemon train a model launched over GraphQL."""
from __future__ import annotations

import os
import subprocess
import sys

import dagster as dg
import pytest

from pump_orchestration.definitions import defs
from pump_orchestration.ml.model_store import ModelStore
from pump_orchestration.warehouse import repository
from pump_orchestration.testing.dagster_servers import (
    REPO,
    dagster_home,
    dagster_processes,
    launch_run,
    run_errors,
    synthetic_deployment,
    wait_for_run,
)

def test_definitions_are_loadable():
    dg.Definitions.validate_loadable(defs)
    assert {j.name for j in defs.resolve_all_job_defs()} >= {
        "train_model_job", "generate_synthetic_data_job", "import_trades_job"}


def test_workspace_validates_with_the_cli(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home(tmp_path / "home"))}
    out = subprocess.run([os.path.join(os.path.dirname(sys.executable), "dagster"), "definitions", "validate",
                          "-w", "workspace.yaml"], cwd=REPO, env=env, capture_output=True, text=True, timeout=180)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.integration
def test_graphql_launch_trains_a_model_on_postgres(tmp_path, pg_dsn):
    engine, home, env = synthetic_deployment(pg_dsn, tmp_path)
    seed_request = {
        "name": "PumpDetector_v1", "model_type": "random_forest", "target_var": "price_close",
        "features": ["price_open", "price_high", "price_low", "price_close", "volume_sol"],
        "phases": [1, 2], "use_time_based_prediction": True, "future_minutes": 10, "min_percent_change": 30.0,
        "direction": "up", "params": {"n_estimators": 50, "max_depth": 8}, "use_engineered_features": True,
        "feature_engineering_windows": [5, 10, 15], "use_smote": True, "use_timeseries_split": True,
        "cv_splits": 3,
    }
    window = {"test_start": "2025-09-01T05:00:00Z", "test_end": "2025-09-01T08:00:00Z"}
    with dagster_processes(env, tmp_path) as port:
        launched = launch_run(port, seed_request, "2025-09-01")
        assert launched["__typename"] == "LaunchRunSuccess", launched
        run_id = launched["run"]["runId"]
        second = launch_run(port, {**seed_request, "name": "PumpDetector_v2", "model_type": "xgboost", "params": {},
                                "train_end": "2025-09-01T05:00:00Z"}, "2025-09-01")

        bad = launch_run(port, {**seed_request, "name": "bad", "model_type": "svm", "cv_splits": 1}, "2025-09-01")
        assert bad["__typename"] == "LaunchRunSuccess", bad
        unknown_field = launch_run(port, {**seed_request, "n_trees": 5}, "2025-09-01")

        assert wait_for_run(port, run_id) == "SUCCESS", run_errors(home, run_id)
        assert wait_for_run(port, second["run"]["runId"]) == "SUCCESS", run_errors(home, second["run"]["runId"])
        assert wait_for_run(port, bad["run"]["runId"]) == "FAILURE"

        # A test report and a comparison, launched the same way with op config.
        for job, ops in [("test_model_job", {"test_report": {"config": {"model": "PumpDetector_v2", **window}}}),
                         ("compare_models_job", {"model_comparison": {"config": {
                             "model_a": "PumpDetector_v1", "model_b": "PumpDetector_v2", **window}}})]:
            launch = launch_run(port, {}, "2025-09-01", job=job, run_config={"ops": ops})
            assert launch["__typename"] == "LaunchRunSuccess", launch
            assert wait_for_run(port, launch["run"]["runId"]) == "SUCCESS", run_errors(home, launch["run"]["runId"])

    # A misspelt field is rejected by Dagster's config validation before a run exists.
    assert unknown_field["__typename"] == "RunConfigValidationInvalid"
    assert "n_trees" in str(unknown_field["errors"])
    errors = run_errors(home, bad["run"]["runId"])
    assert "model_type: 'svm' is unknown" in errors and "cv_splits: must be >= 2" in errors

    with engine.connect() as conn:
        row = repository.get_model(conn, name="PumpDetector_v1")
        assert repository.get_model(conn, name="bad") is None
    assert row["status"] == "READY" and row["model_type"] == "random_forest"
    assert row["phases"] == [1, 2] and row["future_minutes"] == 10
    assert "price_close" not in row["features"]  # the time-based target never becomes an input
    assert 0.0 <= row["training_f1"] <= 1.0 and row["cv_scores"]["n_splits"] == 3
    loaded = ModelStore(tmp_path / "data" / "models").load(row["model_file_path"], row["model_sha256"])
    assert loaded.feature_names == row["features"]
    assert loaded.estimator.n_estimators == 50

    with engine.connect() as conn:
        v2 = repository.get_model(conn, name="PumpDetector_v2")
        tests = repository.list_test_results(conn)
        [comparison] = repository.list_comparisons(conn)
    assert [t["model_id"] for t in tests] == [v2["id"], row["id"], v2["id"]]
    assert tests[0]["test_start"].isoformat() == "2025-09-01T05:00:00+00:00" and tests[0]["has_overlap"] is False
    assert tests[1]["has_overlap"] is True  # v1 trained on the whole day: the report says so
    assert (comparison["model_a_id"], comparison["model_b_id"]) == (row["id"], v2["id"])
    assert comparison["num_samples"] == tests[1]["num_samples"] == tests[2]["num_samples"]
