"""Environment configuration, read in one place (no Dagster imports).

| variable | default | meaning |
|---|---|---|
| ``DB_DSN`` | unset | SQLAlchemy/libpq URL of the PostgreSQL warehouse; unset = embedded SQLite file |
| ``PUMP_DATA_DIR`` | ``~/.pump_orchestration`` | embedded warehouse, parquet cache and models live here |
| ``MODEL_STORAGE_PATH`` | ``$PUMP_DATA_DIR/models`` | where model artifacts are written |
| ``PUMP_PARTITIONS_START`` | ``2025-09-01`` | first day of the daily training-window partitions |
| ``FEATURE_LOOKBACK_MINUTES`` | ``60`` | history loaded before a window so rolling features are complete |
| ``LOAD_CHUNK_ROWS`` | ``200000`` | rows fetched per round trip when loading coin_metrics |
"""
from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """Directory for the embedded warehouse, caches and (by default) model artifacts."""
    path = Path(os.environ.get("PUMP_DATA_DIR") or Path.home() / ".pump_orchestration").expanduser()
    return path.resolve()


def db_dsn() -> str:
    """The warehouse URL: ``DB_DSN`` when set, else the embedded SQLite file under ``data_dir()``."""
    dsn = os.environ.get("DB_DSN", "").strip()
    if dsn:
        # libpq-style "postgresql://" is accepted; pin the driver we ship.
        if dsn.startswith("postgres://"):
            dsn = "postgresql://" + dsn[len("postgres://"):]
        if dsn.startswith("postgresql://"):
            dsn = "postgresql+psycopg2://" + dsn[len("postgresql://"):]
        return dsn
    return f"sqlite:///{data_dir() / 'warehouse.sqlite'}"


def model_storage_path() -> Path:
    """Directory where model artifacts are stored."""
    return Path(os.environ.get("MODEL_STORAGE_PATH") or data_dir() / "models").expanduser().resolve()


def partitions_start() -> str:
    """First day (YYYY-MM-DD) of the daily training-window partitions."""
    return os.environ.get("PUMP_PARTITIONS_START", "2025-09-01")


def feature_lookback_minutes() -> int:
    """Minutes of history loaded before a window so each row's rolling features see their full past."""
    return int(os.environ.get("FEATURE_LOOKBACK_MINUTES", "60"))


def load_chunk_rows() -> int:
    """Rows fetched per round trip when streaming coin_metrics out of the warehouse."""
    return int(os.environ.get("LOAD_CHUNK_ROWS", "200000"))
