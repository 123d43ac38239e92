"""The command line entry point, run as a user would (a subprocess with its own environment)."""
import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from pump_orchestration.testing.dagster_servers import REPO, dagster_home

CLI = str(Path(sys.executable).parent / "pump-orchestration")
TRADES_CSV = REPO.parent / "shared" / "realdata" / "pumpfun_trades" / "trades_data.csv"


def _run(args, env):
    # The local deployment (embedded warehouse), whatever the caller's environment says.
    base = {k: v for k, v in os.environ.items() if k not in ("DB_DSN", "PUMP_DEPLOYMENT")}
    out = subprocess.run([CLI, *args], cwd=REPO, env={**base, **env}, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


def test_generate_then_demo_on_the_embedded_warehouse(tmp_path):
    env = {"PUMP_DATA_DIR": str(tmp_path / "data"), "DAGSTER_HOME": str(dagster_home(tmp_path / "home"))}
    summary = json.loads(_run(["generate", "--coins", "30", "--hours", "2", "--start", "2025-09-03T00:00:00Z",
                               "--pumps-csv", str(tmp_path / "pumps.csv")], env))
    assert summary["coins"] == 30 and summary["rows_written"] == summary["rows"] > 0
    assert (tmp_path / "pumps.csv").read_text().startswith("mint,pump_start")
    again = json.loads(_run(["generate", "--coins", "30", "--hours", "2", "--start", "2025-09-03T00:00:00Z"], env))
    assert again["rows_written"] == 0  # re-running the same generation inserts nothing twice

    printed = _run(["demo", "--coins", "150", "--name", "first"], env)
    assert '"model_name": "first"' in printed and "succeeded" in printed
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'data' / 'warehouse.sqlite'}")
    with engine.connect() as conn:
        assert conn.execute(sa.text("select status from ml_models where name = 'first'")).scalar() == "READY"
    # The demo's run is recorded in DAGSTER_HOME, so the UI shows it.
    assert any((tmp_path / "home").rglob("*.db"))


def test_import_trades_command(tmp_path):
    if not TRADES_CSV.exists():
        import pytest

        pytest.skip(f"real trades absent: {TRADES_CSV}")
    summary = json.loads(_run(["import-trades", str(TRADES_CSV), "--interval", "10"],
                              {"PUMP_DATA_DIR": str(tmp_path / "data")}))
    assert summary["coins"] == 5 and summary["rows_written"] == summary["rows"]


def test_a_deployment_mistake_is_one_line_naming_the_variable(tmp_path):
    base = {k: v for k, v in os.environ.items() if k not in ("DB_DSN", "PUMP_DEPLOYMENT")}
    out = subprocess.run([CLI, "init-db"], cwd=REPO, capture_output=True, text=True, timeout=120,
                         env={**base, "PUMP_DEPLOYMENT": "production", "PUMP_DATA_DIR": str(tmp_path / "data")})
    assert out.returncode == 2
    assert out.stderr.splitlines() == ["pump-orchestration: DB_DSN: PUMP_DEPLOYMENT=production needs the warehouse "
                                       "URL, e.g. DB_DSN=postgresql://user:password@host:5432/crypto"]
    assert not (tmp_path / "data").exists()  # nothing written
