"""Engines and idempotent schema set-up for the warehouse (PostgreSQL or embedded SQLite)."""
from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from pump_orchestration import settings
from pump_orchestration.warehouse import outbox, schema

#: Arbitrary constant key for ``pg_advisory_xact_lock`` serialising concurrent ``init_schema`` calls.
_INIT_LOCK_KEY = 0x70756D70  # "pump"

#: Seconds SQLite waits on a locked database before raising (concurrent writer processes).
_SQLITE_BUSY_TIMEOUT = 30


def is_postgres(engine: sa.Engine | sa.Connection) -> bool:
    """True when the engine (or connection) talks to PostgreSQL."""
    return engine.dialect.name == "postgresql"


def make_engine(dsn: str | None = None) -> sa.Engine:
    """Create an engine for ``dsn`` (default ``settings.db_dsn()``).

    SQLite: the file's parent directory is created, and every connection enables foreign keys
    (off by default in SQLite) and WAL so readers do not block the writer. PostgreSQL: sessions
    run in UTC so timestamps without a zone in a user's table are read as UTC.
    """
    url = sa.make_url(settings.normalise_dsn(dsn) if dsn else settings.db_dsn())
    if url.get_backend_name() == "sqlite":
        if url.database and url.database != ":memory:":
            Path(url.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(url, connect_args={"timeout": _SQLITE_BUSY_TIMEOUT})
        sa.event.listen(engine, "connect", _sqlite_on_connect)
        return engine
    if url.get_backend_name() == "postgresql":
        return sa.create_engine(url, pool_pre_ping=True, connect_args={"options": "-c timezone=UTC"})
    return sa.create_engine(url)


def _sqlite_on_connect(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


def init_schema(engine: sa.Engine, create_coin_metrics: bool | None = None) -> None:
    """Create missing tables and indexes and insert missing seed rows; safe to repeat.

    ``create_coin_metrics`` defaults to True on SQLite (the embedded warehouse has no tracker)
    and False on PostgreSQL, where the tracker owns ``coin_metrics``. On PostgreSQL the work
    runs under a transaction-scoped advisory lock, so two processes starting together do not
    race on ``CREATE TABLE`` or seed inserts.
    """
    if create_coin_metrics is None:
        create_coin_metrics = not is_postgres(engine)
    with engine.begin() as conn:
        if is_postgres(conn):
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _INIT_LOCK_KEY})
        schema.metadata.create_all(conn, checkfirst=True)
        _add_missing_columns(conn)
        if create_coin_metrics:
            schema.coin_metrics_metadata.create_all(conn, checkfirst=True)
            # Where we own coin_metrics (embedded, demo, tests) we also install its outbox trigger; in
            # production the DBA applies sql/coin_metrics_outbox.sql to the tracker's table.
            outbox.install_trigger(conn)
        for table, rows in schema.SEED_ROWS.items():
            _insert_missing(conn, table, rows)


def _add_missing_columns(conn: sa.Connection) -> None:
    """Add the nullable columns our tables gained since the database was created (``create_all`` only
    creates missing tables), so a warehouse made by an older version keeps working. Constraints are not
    upgraded here: on PostgreSQL ``sql/schema.sql`` does that; SQLite cannot alter a CHECK in place."""
    inspector = sa.inspect(conn)
    for table in schema.metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name not in present and column.nullable and column.server_default is None:
                kind = column.type.compile(dialect=conn.dialect)
                conn.execute(sa.text(f"ALTER TABLE {table.name} ADD COLUMN {column.name} {kind}"))


def _insert_missing(conn: sa.Connection, table: sa.Table, rows: list[dict]) -> None:
    """Insert the seed rows whose primary key is absent; existing rows (maybe edited) are kept."""
    (pk,) = table.primary_key.columns
    present = set(conn.execute(sa.select(pk)).scalars())
    missing = [row for row in rows if row[pk.name] not in present]
    if missing:
        conn.execute(table.insert(), missing)
