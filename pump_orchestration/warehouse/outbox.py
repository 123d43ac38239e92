"""Noticing new ``coin_metrics`` rows: an insert trigger fills ``coin_metrics_outbox``; batches are claimed from it.

The tracker's table has no surrogate key to follow and timestamps arrive out of order, so a cursor over
``coin_metrics`` itself would skip rows. Instead an AFTER INSERT trigger copies each new row's
(mint, timestamp) into ``coin_metrics_outbox``. The ``coin_metrics_sensor`` claims unbatched outbox rows
in id order into batches (``batch_key``), and each prediction run marks its batch scored. Claiming picks
rows by "not yet batched", never by "id above a cursor": on PostgreSQL a row whose transaction commits
late (lower id, visible later) is simply claimed by a later tick, so nothing is skipped.

A late row (a timestamp older than rows already scored) is scored like any other, with features built from
that coin's history up to its own timestamp. Where no trigger can be installed on the tracker's table,
nothing reaches the outbox: the sensor says so in its skip reason, and manual scoring still works.
"""
from __future__ import annotations

import datetime as dt

import pandas as pd
import sqlalchemy as sa

from pump_orchestration.warehouse.schema import coin_metrics_outbox

TRIGGER_NAME = "trg_coin_metrics_outbox"

#: What ``sql/coin_metrics_outbox.sql`` holds (a test keeps the two equal): the PostgreSQL trigger.
POSTGRES_TRIGGER_SQL = """\
CREATE OR REPLACE FUNCTION coin_metrics_to_outbox() RETURNS trigger AS $$
BEGIN
    INSERT INTO coin_metrics_outbox (mint, "timestamp") VALUES (NEW.mint, NEW."timestamp");
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS trg_coin_metrics_outbox ON coin_metrics;
CREATE TRIGGER trg_coin_metrics_outbox
    AFTER INSERT ON coin_metrics
    FOR EACH ROW EXECUTE FUNCTION coin_metrics_to_outbox();
"""

# SQLite stores UtcDateTime as text; the trigger copies the tracker's text unchanged, which is the same form.
_SQLITE_TRIGGER_SQL = """\
CREATE TRIGGER IF NOT EXISTS trg_coin_metrics_outbox
AFTER INSERT ON coin_metrics
BEGIN
    INSERT INTO coin_metrics_outbox (mint, "timestamp") VALUES (NEW.mint, NEW."timestamp");
END;
"""


def install_trigger(conn: sa.Connection) -> None:
    """Create the insert trigger on ``coin_metrics`` (idempotent); the outbox table must exist."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(POSTGRES_TRIGGER_SQL)
    else:
        conn.exec_driver_sql(_SQLITE_TRIGGER_SQL)


def trigger_installed(conn: sa.Connection) -> bool:
    """Whether ``coin_metrics`` has the outbox trigger."""
    if conn.dialect.name == "postgresql":
        sql = "SELECT 1 FROM pg_trigger WHERE tgname = :name AND NOT tgisinternal"
    else:
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = :name"
    return conn.execute(sa.text(sql), {"name": TRIGGER_NAME}).first() is not None


def claim_batches(conn: sa.Connection, batch_rows: int, max_batches: int) -> list[tuple[str, int]]:
    """Put up to ``max_batches`` × ``batch_rows`` unbatched outbox rows, oldest id first, into new batches.

    Returns ``[(batch_key, rows)]``. A key names the first and last outbox id of its rows and is never
    reused (each id is claimed once). Runs in the caller's transaction.
    """
    if batch_rows < 1 or max_batches < 1:
        raise ValueError(f"batch_rows and max_batches must be >= 1, got {batch_rows}, {max_batches}")
    ids = list(conn.execute(
        sa.select(coin_metrics_outbox.c.id).where(coin_metrics_outbox.c.batch_key.is_(None))
        .order_by(coin_metrics_outbox.c.id).limit(batch_rows * max_batches)
    ).scalars())
    batches = []
    for i in range(0, len(ids), batch_rows):
        chunk = ids[i:i + batch_rows]
        key = f"{chunk[0]}-{chunk[-1]}"
        claimed = conn.execute(
            coin_metrics_outbox.update()
            .where(coin_metrics_outbox.c.id.in_(chunk), coin_metrics_outbox.c.batch_key.is_(None))
            .values(batch_key=key)
        ).rowcount
        batches.append((key, claimed))
    return batches


def open_batches(conn: sa.Connection, limit: int = 1000) -> list[str]:
    """Batches with rows not scored yet, oldest first (their runs may be queued, running, or never launched)."""
    query = (sa.select(coin_metrics_outbox.c.batch_key, sa.func.min(coin_metrics_outbox.c.id).label("first"))
             .where(coin_metrics_outbox.c.batch_key.is_not(None), coin_metrics_outbox.c.scored_at.is_(None))
             .group_by(coin_metrics_outbox.c.batch_key).order_by(sa.text("first")).limit(limit))
    return [row.batch_key for row in conn.execute(query)]


def batch_rows(conn: sa.Connection, batch_key: str) -> pd.DataFrame:
    """The (mint, timestamp) rows of a batch, in outbox order, one row per pair."""
    rows = conn.execute(
        sa.select(coin_metrics_outbox.c.mint, coin_metrics_outbox.c.timestamp)
        .where(coin_metrics_outbox.c.batch_key == batch_key).order_by(coin_metrics_outbox.c.id)
    ).all()
    frame = pd.DataFrame(rows, columns=["mint", "timestamp"])
    frame["timestamp"] = pd.to_datetime(frame["timestamp"], utc=True)
    return frame.drop_duplicates().reset_index(drop=True)


def mark_scored(conn: sa.Connection, batch_key: str, at: dt.datetime | None = None) -> int:
    """Mark the batch's rows scored; returns how many were still open."""
    return conn.execute(
        coin_metrics_outbox.update()
        .where(coin_metrics_outbox.c.batch_key == batch_key, coin_metrics_outbox.c.scored_at.is_(None))
        .values(scored_at=at or dt.datetime.now(dt.timezone.utc))
    ).rowcount


def pending_rows(conn: sa.Connection) -> int:
    """Outbox rows not scored yet (batched or not): the scoring backlog."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(coin_metrics_outbox)
                            .where(coin_metrics_outbox.c.scored_at.is_(None))).scalar_one())


def high_water(conn: sa.Connection) -> int:
    """The newest outbox id (0 when empty); with ``forget``, lets a writer take its own rows out again."""
    if not sa.inspect(conn).has_table(coin_metrics_outbox.name):
        return 0
    return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(coin_metrics_outbox.c.id), 0))).scalar_one())


def forget(conn: sa.Connection, mints, start, end, after_id: int) -> int:
    """Drop unbatched outbox rows queued after ``after_id`` for ``mints`` in [start, end]: a historical
    import is history, not news. Rows of other coins (a tracker writing meanwhile) are never touched."""
    if not sa.inspect(conn).has_table(coin_metrics_outbox.name):
        return 0
    mints, removed = list(mints), 0
    for i in range(0, len(mints), 500):
        removed += conn.execute(coin_metrics_outbox.delete().where(
            coin_metrics_outbox.c.batch_key.is_(None), coin_metrics_outbox.c.id > after_id,
            coin_metrics_outbox.c.mint.in_(mints[i:i + 500]),
            coin_metrics_outbox.c.timestamp.between(pd.Timestamp(start).to_pydatetime(),
                                                    pd.Timestamp(end).to_pydatetime()))).rowcount
    return removed
