"""Environment configuration, read in one place (no Dagster imports).

| variable | default | meaning |
|---|---|---|
| ``PUMP_DEPLOYMENT`` | ``local`` | ``local``: embedded SQLite warehouse; ``production``: the PostgreSQL at ``DB_DSN`` |
| ``DB_DSN`` | unset | SQLAlchemy/libpq URL of the PostgreSQL warehouse; required by (and only read in) ``production`` |
| ``PUMP_DATA_DIR`` | ``~/.pump_orchestration`` | embedded warehouse, parquet cache and models live here |
| ``MODEL_STORAGE_PATH`` | ``$PUMP_DATA_DIR/models`` | where model artifacts are written |
| ``PUMP_PARTITIONS_START`` | ``2025-09-01`` | first day of the daily training-window partitions |
| ``FEATURE_LOOKBACK_MINUTES`` | ``60`` | history loaded before a window so rolling features are complete; at least the features' ``required_history`` (largest window, or the 60-min burst reach), else requests are refused |
| ``LOAD_CHUNK_ROWS`` | ``200000`` | rows fetched per round trip when loading coin_metrics |
| ``ACTIVE_MODELS_DIR`` | ``$PUMP_DATA_DIR/active_models`` | local copies of the artifacts of activated models |
| ``N8N_WEBHOOK_URL`` | unset | where predictions are POSTed (one request per coin and timestamp); unset = no webhooks |
| ``WEBHOOK_TIMEOUT_SECONDS`` | ``5`` | timeout of one webhook attempt |
| ``WEBHOOK_MAX_ATTEMPTS`` | ``3`` | attempts per delivery round (later rounds retry what is still undelivered) |
| ``WEBHOOK_GIVE_UP_HOURS`` | ``24`` | an undelivered payload older than this is given up, with the reason logged |
| ``SCORING_BATCH_ROWS`` | ``5000`` | most new coin_metrics rows one prediction run scores (a backlog is split) |
"""
from __future__ import annotations

import os
from pathlib import Path


def data_dir() -> Path:
    """Directory for the embedded warehouse, caches and (by default) model artifacts."""
    path = Path(os.environ.get("PUMP_DATA_DIR") or Path.home() / ".pump_orchestration").expanduser()
    return path.resolve()


DEPLOYMENTS = ("local", "production")


class DeploymentError(RuntimeError):
    """The environment does not describe a usable deployment (raised when the code location starts)."""


def deployment() -> str:
    """``PUMP_DEPLOYMENT``: ``local`` (default) or ``production``."""
    name = os.environ.get("PUMP_DEPLOYMENT", "").strip() or "local"
    if name not in DEPLOYMENTS:
        raise DeploymentError(f"PUMP_DEPLOYMENT: {name!r} is unknown; allowed: {', '.join(DEPLOYMENTS)}")
    return name


def embedded_dsn() -> str:
    """The embedded SQLite warehouse under ``data_dir()``."""
    return f"sqlite:///{data_dir() / 'warehouse.sqlite'}"


def normalise_dsn(dsn: str) -> str:
    """A libpq-style ``postgres(ql)://`` URL with the driver we ship; other URLs unchanged."""
    dsn = dsn.strip()
    for prefix in ("postgres://", "postgresql://"):
        if dsn.startswith(prefix):
            return "postgresql+psycopg2://" + dsn[len(prefix):]
    return dsn


def db_dsn() -> str:
    """The deployment's warehouse URL: the embedded SQLite file (local) or ``DB_DSN`` (production).

    Never falls back silently: production without ``DB_DSN``, or ``DB_DSN`` set in a local
    deployment (where it would be ignored), raise ``DeploymentError`` saying what to set.
    """
    dsn = os.environ.get("DB_DSN", "").strip()
    if deployment() == "production":
        if not dsn:
            raise DeploymentError("DB_DSN: PUMP_DEPLOYMENT=production needs the warehouse URL, "
                                  "e.g. DB_DSN=postgresql://user:password@host:5432/crypto")
        return normalise_dsn(dsn)
    if dsn:
        raise DeploymentError("DB_DSN is set but PUMP_DEPLOYMENT is local (the embedded SQLite warehouse): "
                              "set PUMP_DEPLOYMENT=production to use DB_DSN, or unset DB_DSN")
    return embedded_dsn()


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


def active_models_dir() -> Path:
    """Where activated models' artifacts are copied (scoring never depends on the training store)."""
    return Path(os.environ.get("ACTIVE_MODELS_DIR") or data_dir() / "active_models").expanduser().resolve()


def webhook_url() -> str | None:
    """``N8N_WEBHOOK_URL``, or None when webhooks are off."""
    return os.environ.get("N8N_WEBHOOK_URL", "").strip() or None


def webhook_timeout_seconds() -> float:
    """Timeout of one webhook attempt, in seconds."""
    return float(os.environ.get("WEBHOOK_TIMEOUT_SECONDS", "5"))


def webhook_max_attempts() -> int:
    """Attempts per delivery round."""
    return int(os.environ.get("WEBHOOK_MAX_ATTEMPTS", "3"))


def webhook_give_up_hours() -> float:
    """Age after which an undelivered payload is given up."""
    return float(os.environ.get("WEBHOOK_GIVE_UP_HOURS", "24"))


def scoring_batch_rows() -> int:
    """Most new coin_metrics rows one prediction run scores."""
    return int(os.environ.get("SCORING_BATCH_ROWS", "5000"))
