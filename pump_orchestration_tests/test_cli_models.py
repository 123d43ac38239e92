"""``pump-orchestration models ...`` run as a user would, on the embedded SQLite warehouse."""
import json
import os
import subprocess
from pathlib import Path

from pump_orchestration.ml.model_store import sha256_file
from pump_orchestration.testing.dagster_servers import REPO
from pump_orchestration.warehouse.db import init_schema, make_engine
from pump_orchestration_tests.test_cli import CLI
from pump_orchestration_tests.warehouse.test_active_models import insert_model_with_artifact


def _cli(args, tmp_path) -> subprocess.CompletedProcess:
    # The local deployment with its default active-models directory, whatever the caller's environment says.
    base = {k: v for k, v in os.environ.items() if k not in ("DB_DSN", "PUMP_DEPLOYMENT", "ACTIVE_MODELS_DIR")}
    env = {**base, "PUMP_DATA_DIR": str(tmp_path / "data"), "MODEL_STORAGE_PATH": str(tmp_path / "models")}
    return subprocess.run([CLI, "models", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)


def _ok(args, tmp_path):
    out = _cli(args, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


def test_models_commands_on_the_embedded_warehouse(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'warehouse.sqlite'}")
    init_schema(engine)
    model = insert_model_with_artifact(engine, tmp_path / "models", "m1")
    insert_model_with_artifact(engine, tmp_path / "models", "m2", status="FAILED")
    engine.dispose()
    active_dir = tmp_path / "data" / "active_models"

    assert _ok(["list"], tmp_path) == []
    row = _ok(["activate", str(model["id"]), "--threshold", "0.8"], tmp_path)
    assert row == {"id": row["id"], "model_id": model["id"], "model_name": "m1", "custom_name": None,
                   "model_type": "logistic_regression", "is_active": True, "alert_threshold": 0.8,
                   "total_predictions": 0, "last_prediction_at": None}
    (copy,) = active_dir.glob("*.joblib")
    assert sha256_file(copy) == model["model_sha256"]

    refused = _cli(["activate", "m2"], tmp_path)
    assert refused.returncode == 2 and refused.stdout == ""
    assert refused.stderr.splitlines() == [
        "pump-orchestration: model 'm2': status FAILED, only READY models can be activated"]
    again = _cli(["activate", "m1"], tmp_path)
    assert (again.returncode, again.stderr.strip()) == (
        2, f"pump-orchestration: model 'm1' is already active (active model id {row['id']})")

    assert _ok(["set-threshold", "m1", "0.35"], tmp_path)["alert_threshold"] == 0.35
    assert _ok(["rename", "m1", "Night shift"], tmp_path)["custom_name"] == "Night shift"
    assert _ok(["deactivate", "Night shift"], tmp_path)["is_active"] is False
    assert [r["is_active"] for r in _ok(["list"], tmp_path)] == [False]
    assert _ok(["delete", str(model["id"])], tmp_path)["id"] == row["id"]
    assert _ok(["list"], tmp_path) == [] and list(active_dir.iterdir()) == []
    assert Path(model["model_file_path"]).is_file()  # the training artifact stays

    unknown = _cli(["delete", "m1"], tmp_path)
    assert (unknown.returncode, unknown.stderr.splitlines()) == (
        2, ["pump-orchestration: model 'm1': not in prediction_active_models"])
