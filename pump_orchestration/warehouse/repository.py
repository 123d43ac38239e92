"""Small data-access functions over the ``ml_*`` and ``ref_*`` tables.

Every function takes a ``Connection`` so the caller (an IO manager, a sensor, a test) decides
the transaction. Rows come back as plain dicts: JSON columns already decoded, timestamps
tz-aware UTC on both backends (see ``schema.UtcDateTime``).
"""
from __future__ import annotations

import pandas as pd
import sqlalchemy as sa

from pump_orchestration.warehouse.schema import (
    ml_comparisons,
    ml_known_events,
    ml_models,
    ml_test_results,
    ref_model_types,
)


def _insert(conn: sa.Connection, table: sa.Table, values: dict) -> int:
    unknown = sorted(set(values) - set(table.c.keys()))
    if unknown:
        raise ValueError(f"not {table.name} column(s): {', '.join(unknown)}")
    # A dict, not **values: ml_test_results has a column named "fn".
    result = conn.execute(table.insert().values(values))
    return int(result.inserted_primary_key[0])


def insert_model(conn: sa.Connection, values: dict) -> int:
    """Insert one ``ml_models`` row and return its id.

    A FAILED model holding the same name gives it up first (``release_failed_name``), in the
    same transaction. Raises ``ValueError`` for keys that are not ``ml_models`` columns, and the
    driver's ``IntegrityError`` for a name held by a model that did not fail or a violated CHECK constraint.
    """
    if "name" in values:
        release_failed_name(conn, values["name"])
    return _insert(conn, ml_models, values)


def failed_model_name(name: str, model_id: int) -> str:
    """The name a FAILED model is renamed to when its name is reused: ``<name>__failed_<id>``."""
    suffix = f"__failed_{model_id}"
    return name[: ml_models.c.name.type.length - len(suffix)] + suffix


def release_failed_name(conn: sa.Connection, name: str) -> int | None:
    """Rename the FAILED model named ``name`` (if any) to ``failed_model_name``; return its id.

    Names of failed models are not used up: retrying a request under the same name is the normal
    next step after a failed quality gate. The failed row, its artifact, metrics and error stay,
    under the new name, and everything refers to it by id.
    """
    row = conn.execute(sa.select(ml_models.c.id).where(ml_models.c.name == name,
                                                       ml_models.c.status == "FAILED")).first()
    if row is None:
        return None
    conn.execute(ml_models.update().where(ml_models.c.id == row.id)
                 .values(name=failed_model_name(name, row.id)))
    return int(row.id)


def insert_test_result(conn: sa.Connection, values: dict) -> int:
    """Insert one ``ml_test_results`` row (keys = its columns) and return its id."""
    return _insert(conn, ml_test_results, values)


def insert_comparison(conn: sa.Connection, values: dict) -> int:
    """Insert one ``ml_comparisons`` row (keys = its columns) and return its id."""
    return _insert(conn, ml_comparisons, values)


def list_test_results(conn: sa.Connection, model_id: int | None = None) -> list[dict]:
    """``ml_test_results`` rows, oldest first, optionally of one model."""
    query = sa.select(ml_test_results).order_by(ml_test_results.c.id)
    if model_id is not None:
        query = query.where(ml_test_results.c.model_id == model_id)
    return [dict(row) for row in conn.execute(query).mappings()]


def list_comparisons(conn: sa.Connection) -> list[dict]:
    """``ml_comparisons`` rows, oldest first."""
    return [dict(row) for row in conn.execute(sa.select(ml_comparisons).order_by(ml_comparisons.c.id)).mappings()]


def get_model(conn: sa.Connection, model_id: int | None = None, name: str | None = None) -> dict | None:
    """One ``ml_models`` row by id or by name (exactly one of them), or None; soft-deleted rows included."""
    if (model_id is None) == (name is None):
        raise ValueError("pass exactly one of model_id or name")
    condition = ml_models.c.id == model_id if model_id is not None else ml_models.c.name == name
    row = conn.execute(sa.select(ml_models).where(condition)).mappings().first()
    return dict(row) if row is not None else None


def model_name_exists(conn: sa.Connection, name: str) -> bool:
    """True when a model that did not fail holds ``name`` (soft-deleted ones included: their names stay used).

    A FAILED model's name is free: ``insert_model`` renames the failed row when the name is reused.
    """
    query = sa.select(sa.literal(1)).where(ml_models.c.name == name, ml_models.c.status != "FAILED").limit(1)
    return conn.execute(query).first() is not None


def get_model_type_defaults(conn: sa.Connection, model_type: str) -> dict:
    """Default hyper-parameters of ``model_type`` from ``ref_model_types``.

    Raises ``ValueError`` listing the known types when ``model_type`` is not one of them.
    """
    rows = dict(conn.execute(sa.select(ref_model_types.c.name, ref_model_types.c.default_params)).all())
    if model_type not in rows:
        raise ValueError(f"unknown model_type {model_type!r}; known: {', '.join(sorted(rows))}")
    return dict(rows[model_type] or {})


def list_models(conn: sa.Connection, status: str | None = None, include_deleted: bool = False) -> list[dict]:
    """``ml_models`` rows, newest first, optionally filtered by status; soft-deleted rows only on request."""
    query = sa.select(ml_models).order_by(ml_models.c.created_at.desc(), ml_models.c.id.desc())
    if status is not None:
        query = query.where(ml_models.c.status == status)
    if not include_deleted:
        query = query.where(ml_models.c.is_deleted.is_(sa.false()))
    return [dict(row) for row in conn.execute(query).mappings()]


def replace_known_events(conn: sa.Connection, events: list[dict]) -> dict[str, int]:
    """Store ``ml_known_events`` rows (keys = its columns without id), one per (mint, start_time).

    An event already stored with the same (mint, start_time) is replaced, so importing a file twice
    leaves the table as after the first import. Returns the counts of new and replaced events.
    """
    keys = {(e["mint"], e["start_time"]) for e in events}
    if len(keys) != len(events):
        raise ValueError("events: one event per (mint, start_time)")
    replaced = 0
    for mint, start in keys:
        replaced += conn.execute(ml_known_events.delete().where(
            ml_known_events.c.mint == mint, ml_known_events.c.start_time == start)).rowcount
    if events:
        conn.execute(ml_known_events.insert(), events)
    return {"new": len(events) - replaced, "replaced": replaced}


def load_known_events(conn: sa.Connection, start, end) -> pd.DataFrame:
    """``ml_known_events`` whose [start_time, end_time] meets [``start``, ``end``), as the frame labels read:
    ``mint``, ``start``, ``end`` (UTC), ``symbol``, ``source``, ``note``, by mint and start."""
    c = ml_known_events.c
    query = (sa.select(c.mint, c.start_time.label("start"), c.end_time.label("end"), c.symbol, c.source, c.note)
             .where(c.end_time >= start, c.start_time < end).order_by(c.mint, c.start_time))
    return _events_frame([dict(r) for r in conn.execute(query).mappings()])


def _events_frame(rows: list[dict]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["mint", "start", "end", "symbol", "source", "note"])
    for column in ("start", "end"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def known_events_for(conn: sa.Connection, frame: pd.DataFrame, lead: pd.Timedelta) -> pd.DataFrame:
    """The known events that can label a row of ``frame`` (coin_metrics rows): those meeting its span
    widened by ``lead`` at the end (a row up to ``lead`` before a start is inside the event)."""
    if frame.empty:
        return _events_frame([])
    return load_known_events(conn, frame["timestamp"].min(), frame["timestamp"].max() + lead + pd.Timedelta(1))
