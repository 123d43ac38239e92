"""Resources per deployment: local = embedded SQLite, production = DB_DSN required, never a silent fallback."""
import os
import subprocess
import sys

import pytest

from pump_orchestration import settings
from pump_orchestration.defs.shared.resources import WarehouseResource, deployment_resources
from pump_orchestration.testing.dagster_servers import REPO


@pytest.fixture
def env(monkeypatch, tmp_path):
    for name in ("PUMP_DEPLOYMENT", "DB_DSN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("PUMP_DATA_DIR", str(tmp_path / "data"))
    return monkeypatch


def test_local_is_the_default_and_uses_the_embedded_warehouse(env, tmp_path):
    shared = deployment_resources()
    assert shared.warehouse.url() == f"sqlite:///{tmp_path / 'data' / 'warehouse.sqlite'}"
    assert settings.deployment() == "local"


def test_production_needs_db_dsn_and_uses_it(env):
    env.setenv("PUMP_DEPLOYMENT", "production")
    with pytest.raises(settings.DeploymentError, match="^DB_DSN: PUMP_DEPLOYMENT=production needs"):
        deployment_resources()
    env.setenv("DB_DSN", "postgresql://u:p@db.example:5432/crypto")
    shared = deployment_resources()
    # Resolved like a run resolves it: DB_DSN from the environment, with the driver we ship.
    assert WarehouseResource(dsn="postgresql://u:p@db.example:5432/crypto").url() == \
        "postgresql+psycopg2://u:p@db.example:5432/crypto"
    assert settings.db_dsn() == "postgresql+psycopg2://u:p@db.example:5432/crypto"
    assert shared.warehouse.dsn is not None  # an EnvVar, shown as such in the UI


def test_a_db_dsn_that_local_would_ignore_is_an_error(env):
    env.setenv("DB_DSN", "postgresql://u@db/crypto")
    with pytest.raises(settings.DeploymentError, match="DB_DSN is set but PUMP_DEPLOYMENT is local"):
        deployment_resources()


def test_unknown_deployment_is_named(env):
    env.setenv("PUMP_DEPLOYMENT", "staging")
    with pytest.raises(settings.DeploymentError, match="PUMP_DEPLOYMENT: 'staging' is unknown; allowed: local, production"):
        deployment_resources()


def test_the_code_location_refuses_to_start_without_db_dsn_in_production(tmp_path):
    environ = {k: v for k, v in os.environ.items() if k != "DB_DSN"}
    out = subprocess.run([sys.executable, "-c", "import pump_orchestration.definitions"], cwd=REPO,
                         env={**environ, "PUMP_DEPLOYMENT": "production", "PUMP_DATA_DIR": str(tmp_path)},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode != 0
    assert out.stderr.strip().splitlines()[-1] == (
        "pump_orchestration.settings.DeploymentError: DB_DSN: PUMP_DEPLOYMENT=production needs the warehouse URL, "
        "e.g. DB_DSN=postgresql://user:password@host:5432/crypto")
