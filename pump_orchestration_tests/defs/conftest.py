"""The code location on each test's own warehouse (SQLite and PostgreSQL) and data directory."""
import pytest

from pump_orchestration.testing.locations import TestLocation


@pytest.fixture
def location(warehouse_engine, tmp_path, monkeypatch) -> TestLocation:
    """Definitions built on a fresh warehouse of each backend; artifacts and caches under ``tmp_path/data``."""
    # Walk-forward writes its chart under PUMP_DATA_DIR/reports.
    monkeypatch.setenv("PUMP_DATA_DIR", str(tmp_path / "data"))
    return TestLocation.on(warehouse_engine, tmp_path / "data")
