"""``ml_jobs``: the original service's job table, kept as a mirror of the Dagster runs of the ML jobs.

Dagster runs are the jobs of this product; ``ml_jobs`` only mirrors them so SQL dashboards and n8n
workflows written against the original job table keep working. Two writers feed it: the
``ml_jobs_sensor`` (status and timestamps from Dagster's run records) and the runs themselves
(``record_progress`` / ``record_result``). Their writes can arrive in any order, so ``upsert_job``
merges instead of overwriting:

* status only moves forward (PENDING → RUNNING → COMPLETED/FAILED/CANCELLED): a late sensor tick
  never turns COMPLETED back into RUNNING;
* progress never decreases, and its message follows the progress it belongs to;
* created/started/completed timestamps keep the earliest value known;
* ``None`` never erases a value;
* a row is only written when something changed, so repeating a write is a no-op.

No Dagster import here: which runs are mirrored, and how a run's config becomes these columns, is
decided in the Dagster layer (``pump_orchestration.defs.ml_jobs``); this module only stores.
"""
from __future__ import annotations

import datetime as dt
import math
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pump_orchestration.vocabulary import JOB_STATUSES, JOB_TYPES, TERMINAL_JOB_STATUSES, to_utc
from pump_orchestration.warehouse.schema import UtcDateTime, ml_jobs, ml_models

# Final statuses share a rank: a job that ended never changes how it ended.
_STATUS_RANK = {status: 2 if status in TERMINAL_JOB_STATUSES else rank for rank, status in enumerate(JOB_STATUSES)}
RESULT_COLUMNS = ("result_model_id", "result_test_id", "result_comparison_id")
_MODEL_REF_COLUMNS = ("test_model_id", "compare_model_a_id", "compare_model_b_id", "result_model_id")
_EARLIEST_WINS = ("created_at", "started_at", "completed_at")
_WRITABLE_COLUMNS = frozenset(ml_jobs.c.keys()) - {"id", "dagster_run_id", "updated_at"}
#: Longest error_msg kept (the message and the failing step's error, not whole stack traces).
MAX_ERROR_CHARS = 4000

def upsert_job(conn: sa.Connection, run_id: str, values: Mapping[str, Any]) -> int:
    """Insert or merge the ``ml_jobs`` row of Dagster run ``run_id``; return its id.

    Runs in the caller's transaction. ``values`` are ``ml_jobs`` columns (``ValueError`` otherwise);
    ``job_type`` and ``status`` are needed when the row does not exist yet. Model references
    (``test_model_id``, ``compare_model_*_id``, ``result_model_id``) may be an id or a model name;
    one naming no existing model is stored as NULL rather than failing the write.
    """
    unknown = sorted(set(values) - _WRITABLE_COLUMNS)
    if unknown:
        raise ValueError(f"not writable ml_jobs column(s): {', '.join(unknown)}")
    values = {key: _parse_time(value) if isinstance(value, dt.datetime) else value
              for key, value in values.items() if value is not None}
    if "status" in values and values["status"] not in _STATUS_RANK:
        raise ValueError(f"status: unknown ml_jobs status {values['status']!r}; allowed: {', '.join(JOB_STATUSES)}")
    if "job_type" in values and values["job_type"] not in JOB_TYPES:
        raise ValueError(f"job_type: unknown ml_jobs job type {values['job_type']!r}; allowed: {', '.join(JOB_TYPES)}")
    if "progress" in values:
        values["progress"] = _clamp_progress(values["progress"])
    values.update(_resolve_model_refs(conn, values))
    values = {key: value for key, value in values.items() if value is not None}

    if "job_type" in values and "status" in values:
        # Insert first: on a race the database decides, and on SQLite it takes the write lock before we read.
        insert = _insert_for(conn).values(dagster_run_id=run_id, **values)
        inserted = conn.execute(insert.on_conflict_do_nothing(index_elements=[ml_jobs.c.dagster_run_id]))
        if inserted.rowcount == 1:
            return int(conn.execute(sa.select(ml_jobs.c.id).where(ml_jobs.c.dagster_run_id == run_id)).scalar_one())

    current = conn.execute(
        sa.select(ml_jobs).where(ml_jobs.c.dagster_run_id == run_id).with_for_update()
    ).mappings().first()
    if current is None:
        raise ValueError(f"no ml_jobs row for run {run_id} and no job_type/status to create one")
    changes = _merge(dict(current), values)
    if changes:
        conn.execute(ml_jobs.update().where(ml_jobs.c.id == current["id"]).values(**changes))
    return int(current["id"])


def get_job(conn: sa.Connection, run_id: str) -> dict | None:
    """The ``ml_jobs`` row of Dagster run ``run_id`` as a dict, or None."""
    row = conn.execute(sa.select(ml_jobs).where(ml_jobs.c.dagster_run_id == run_id)).mappings().first()
    return dict(row) if row is not None else None


def record_progress(engine: sa.Engine, run_id: str, job_type: str, progress: float, message: str) -> int:
    """Mark the run RUNNING with ``progress`` (0–1, clamped) and ``message``; sets started_at if unset."""
    values = {"job_type": job_type, "status": "RUNNING", "progress": progress,
              "progress_msg": message, "started_at": dt.datetime.now(dt.timezone.utc)}
    with engine.begin() as conn:
        return upsert_job(conn, run_id, values)


def record_result(engine: sa.Engine, run_id: str, job_type: str, **result_ids: int) -> int:
    """Store the ids of what the run produced: ``result_model_id``, ``result_test_id``, ``result_comparison_id``."""
    unknown = sorted(set(result_ids) - set(RESULT_COLUMNS))
    if unknown:
        raise ValueError(f"unknown result column(s): {', '.join(unknown)}; known: {', '.join(RESULT_COLUMNS)}")
    with engine.begin() as conn:
        return upsert_job(conn, run_id, {"job_type": job_type, "status": "RUNNING", **result_ids})


# ---------------------------------------------------------------- internals

def _insert_for(conn: sa.Connection):
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(ml_jobs)


def _clamp_progress(value: Any) -> float:
    progress = float(value)
    if math.isnan(progress):
        raise ValueError("progress is NaN")
    return min(1.0, max(0.0, progress))


def _merge(current: dict, values: dict) -> dict:
    """The column changes that apply ``values`` to ``current`` under the mirror's rules."""
    changes = {}
    for column, value in values.items():
        old = current.get(column)
        if column == "status":
            if _STATUS_RANK[value] <= _STATUS_RANK[old]:
                continue
        elif column == "progress":
            if old is not None and value <= old:
                continue
        elif column == "progress_msg":
            if values.get("progress") is not None and current.get("progress") is not None \
                    and values["progress"] < current["progress"]:
                continue
        elif column in _EARLIEST_WINS:
            if old is not None and value >= old:
                continue
        if value != old:
            changes[column] = value
    return changes


def _resolve_model_refs(conn: sa.Connection, values: dict) -> dict:
    """Model references as existing ``ml_models`` ids (by id or by name), else None."""
    resolved = {}
    for column in _MODEL_REF_COLUMNS:
        ref = values.get(column)
        if ref is None:
            continue
        if isinstance(ref, str) and not ref.strip().isdigit():
            condition = ml_models.c.name == ref
        else:
            condition = ml_models.c.id == int(ref)
        resolved[column] = conn.execute(sa.select(ml_models.c.id).where(condition)).scalar()
    return resolved


def coerce_column(column: str, value: Any) -> Any:
    """``value`` in the Python type of ``ml_jobs.<column>``, or None when it cannot be (never raises)."""
    if value is None:
        return None
    if column in _MODEL_REF_COLUMNS:  # id or name; resolved against ml_models on write
        return value if isinstance(value, (int, str)) and not isinstance(value, bool) else None
    col_type = ml_jobs.c[column].type
    try:
        if isinstance(col_type, UtcDateTime):
            return _parse_time(value)
        if isinstance(col_type, sa.Float):
            number = float(value)
            return number if math.isfinite(number) else None
        if isinstance(col_type, sa.Integer):
            return int(value)
        if isinstance(col_type, sa.String):
            text = str(value)
            return text[: col_type.length] if col_type.length else text
    except (TypeError, ValueError, OverflowError):
        return None
    return value  # JSON: the run config is JSON already


def _parse_time(value: Any) -> dt.datetime:
    return to_utc(value).to_pydatetime()
