"""Shared fixtures: a throwaway PostgreSQL server, fresh databases, and warehouse engines.

* ``postgres_server`` (session): a running ``PostgresServer``; stopped at session end.
  Fails (never skips) when the PostgreSQL server binaries are missing.
* ``pg_dsn``: a fresh empty database on that server, as a ``postgresql+psycopg2://`` URL.
* ``sqlite_dsn``: a SQLite file URL under ``tmp_path``.
* ``warehouse_engine``: parametrized over ``sqlite``/``postgres``; an engine on a fresh
  database with ``init_schema(engine, create_coin_metrics=True)`` applied.

Every test that needs the PostgreSQL server (directly, or as the ``postgres`` case of
``warehouse_engine``) is marked ``integration`` here, like the tests that start Dagster servers
(marked by hand), so ``pytest -m "not integration"`` runs without any server binaries.
"""
from __future__ import annotations

import pytest
import sqlalchemy as sa

from pump_orchestration.testing.postgres import PostgresServer, PostgresUnavailable, start_postgres
from pump_orchestration.warehouse.db import init_schema, make_engine

_POSTGRES_FIXTURES = {"postgres_server", "pg_dsn"}


def pytest_collection_modifyitems(items) -> None:
    """Mark every test that starts the PostgreSQL server as ``integration``."""
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if _POSTGRES_FIXTURES & set(item.fixturenames) or params.get("warehouse_engine") == "postgres":
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def postgres_server() -> PostgresServer:
    """A throwaway PostgreSQL cluster for the whole test session."""
    try:
        server = start_postgres()
    except PostgresUnavailable as exc:
        pytest.fail(f"PostgreSQL-backed tests need a local PostgreSQL server: {exc}", pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def pg_dsn(postgres_server: PostgresServer) -> str:
    """URL of a new, empty database (dropped after the test)."""
    name = postgres_server.create_database()
    try:
        yield postgres_server.url(name)
    finally:
        postgres_server.drop_database(name)


@pytest.fixture
def sqlite_dsn(tmp_path) -> str:
    """URL of a SQLite file in the test's temporary directory."""
    return f"sqlite:///{tmp_path / 'warehouse.sqlite'}"


@pytest.fixture(params=["sqlite", "postgres"])
def warehouse_engine(request) -> sa.Engine:
    """An engine on a fresh database of each backend, with the full schema incl. coin_metrics."""
    dsn = request.getfixturevalue("sqlite_dsn" if request.param == "sqlite" else "pg_dsn")
    engine = make_engine(dsn)
    init_schema(engine, create_coin_metrics=True)
    try:
        yield engine
    finally:
        engine.dispose()
