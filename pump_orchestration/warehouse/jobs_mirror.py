"""``ml_jobs``: the seeds' job table, kept as a mirror of the Dagster runs of the ML jobs.

Dagster runs are the jobs of this product; ``ml_jobs`` only mirrors them so SQL dashboards written
for the seeds keep working. Two writers feed it: the ``ml_jobs_sensor`` (status and timestamps from
Dagster's run records) and the runs themselves (``record_progress`` / ``record_result``). Their
writes can arrive in any order, so ``upsert_job`` merges instead of overwriting:

* status only moves forward (PENDING → RUNNING → COMPLETED/FAILED/CANCELLED): a late sensor tick
  never turns COMPLETED back into RUNNING;
* progress never decreases, and its message follows the progress it belongs to;
* created/started/completed timestamps keep the earliest value known;
* ``None`` never erases a value;
* a row is only written when something changed, so repeating a write is a no-op.

No Dagster import here: the mapping works on Dagster's status *names*.
"""
from __future__ import annotations

import datetime as dt
import math
from typing import Any, Mapping

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pump_orchestration.warehouse.schema import UtcDateTime, ml_jobs, ml_models

#: Dagster job name → ``ml_jobs.job_type``; a job listed here is an "ML job" (queued under the ML limit).
JOB_TYPES_BY_JOB: dict[str, str] = {
    "train_model_job": "TRAIN",
    "walk_forward_job": "TRAIN",
    "test_model_job": "TEST",
    "compare_models_job": "COMPARE",
}

#: Dagster run status name → ``ml_jobs.status``. STARTING counts as RUNNING: the run has left the
#: queue and holds one of the ML slots. CANCELING is still running until Dagster says CANCELED.
STATUS_BY_DAGSTER: dict[str, str] = {
    "QUEUED": "PENDING",
    "NOT_STARTED": "PENDING",
    "STARTING": "RUNNING",
    "STARTED": "RUNNING",
    "CANCELING": "RUNNING",
    "SUCCESS": "COMPLETED",
    "FAILURE": "FAILED",
    "CANCELED": "CANCELLED",
}

TERMINAL_STATUSES = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
_STATUS_RANK = {"PENDING": 0, "RUNNING": 1, "COMPLETED": 2, "FAILED": 2, "CANCELLED": 2}
RESULT_COLUMNS = ("result_model_id", "result_test_id", "result_comparison_id")
_MODEL_REF_COLUMNS = ("test_model_id", "compare_model_a_id", "compare_model_b_id", "result_model_id")
_EARLIEST_WINS = ("created_at", "started_at", "completed_at")
_WRITABLE_COLUMNS = frozenset(ml_jobs.c.keys()) - {"id", "dagster_run_id", "updated_at"}
#: Longest error_msg kept (the message and the failing step's error, not whole stack traces).
MAX_ERROR_CHARS = 4000

# Request config key → ml_jobs column, per job type.
_TRAIN_FIELDS = {
    "name": "train_model_name",
    "model_type": "train_model_type",
    "target_var": "train_target_var",
    "target_operator": "train_operator",
    "target_value": "train_value",
    "train_start": "train_start",
    "train_end": "train_end",
    "features": "train_features",
    "phases": "train_phases",
    "params": "train_params",
    "future_minutes": "train_future_minutes",
    "min_percent_change": "train_price_change_percent",
    "direction": "train_target_direction",
}
_TEST_FIELDS = {"model": "test_model_id", "test_start": "test_start", "test_end": "test_end"}
_COMPARE_FIELDS = {"model_a": "compare_model_a_id", "model_b": "compare_model_b_id",
                   "test_start": "compare_start", "test_end": "compare_end"}
# Where each job type's window comes from when the config does not narrow the selected days.
_WINDOW_COLUMNS = {"TRAIN": ("train_start", "train_end"), "TEST": ("test_start", "test_end"),
                   "COMPARE": ("compare_start", "compare_end")}
_PARTITION_TAG = "dagster/partition"
_RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def job_type_for(job_name: str) -> str:
    """The ``ml_jobs.job_type`` of a Dagster job; ``ValueError`` if it is not an ML job."""
    try:
        return JOB_TYPES_BY_JOB[job_name]
    except KeyError:
        raise ValueError(f"{job_name!r} is not an ML job; known: {', '.join(sorted(JOB_TYPES_BY_JOB))}") from None


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
        raise ValueError(f"unknown ml_jobs status {values['status']!r}")
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


def record_progress(engine: sa.Engine, run_id: str, job_name: str, progress: float, message: str) -> int:
    """Mark the run RUNNING with ``progress`` (0–1, clamped) and ``message``; sets started_at if unset."""
    values = {"job_type": job_type_for(job_name), "status": "RUNNING", "progress": progress,
              "progress_msg": message, "started_at": dt.datetime.now(dt.timezone.utc)}
    with engine.begin() as conn:
        return upsert_job(conn, run_id, values)


def record_result(engine: sa.Engine, run_id: str, job_name: str, **result_ids: int) -> int:
    """Store the ids of what the run produced: ``result_model_id``, ``result_test_id``, ``result_comparison_id``."""
    unknown = sorted(set(result_ids) - set(RESULT_COLUMNS))
    if unknown:
        raise ValueError(f"unknown result column(s): {', '.join(unknown)}; known: {', '.join(RESULT_COLUMNS)}")
    with engine.begin() as conn:
        return upsert_job(conn, run_id, {"job_type": job_type_for(job_name), "status": "RUNNING", **result_ids})


def request_fields(job_name: str, run_config: Mapping[str, Any], tags: Mapping[str, str] | None = None) -> dict:
    """The ``ml_jobs`` request columns of a run, from its run config (and partition tags).

    Training runs read ``resources.training_request.config`` (a run's config holds only the
    fields the user set: merge the request's defaults in first); test and compare runs read the
    ``config`` of their op(s) under ``ops`` (``model`` / ``model_a`` / ``model_b`` as an id or a
    name, ``test_start``, ``test_end``). Absent keys are left out; values are coerced to the
    column's type (strings cut to the column length, unparsable numbers and times dropped), so a
    malformed request, which its run rejects anyway, can never make the mirror write fail. When
    the config gives no window, the selected partition day(s) are the window.
    """
    job_type = JOB_TYPES_BY_JOB.get(job_name)
    if job_type is None:
        return {}
    run_config = run_config or {}
    if job_type == "TRAIN":
        config = dict(((run_config.get("resources") or {}).get("training_request") or {}).get("config") or {})
        # Like ml_models: a time-based target has no operator/value, a threshold target no horizon/direction.
        unused = (("target_operator", "target_value") if config.get("use_time_based_prediction", True)
                  else ("future_minutes", "min_percent_change", "direction"))
        for key in unused:
            config.pop(key, None)
        if not config.get("phases"):  # [] means every phase, stored as NULL like ml_models.phases
            config.pop("phases", None)
        fields = _TRAIN_FIELDS
    else:
        config = {}
        for op_config in (run_config.get("ops") or {}).values():
            if isinstance(op_config, Mapping):
                config.update(op_config.get("config") or {})
        fields = _TEST_FIELDS if job_type == "TEST" else _COMPARE_FIELDS
    out = {}
    for key, column in fields.items():
        value = _coerce(column, config.get(key))
        if value is not None:
            out[column] = value
    start_column, end_column = _WINDOW_COLUMNS[job_type]
    window = _partition_window(tags or {})
    if window is not None:
        out.setdefault(start_column, window[0])
        out.setdefault(end_column, window[1])
    return out


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


def _coerce(column: str, value: Any) -> Any:
    """``value`` in the Python type of ``ml_jobs.<column>``, or None when it cannot be."""
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
    if isinstance(value, dt.datetime):
        parsed = value
    else:
        parsed = dt.datetime.fromisoformat(str(value).strip().replace("Z", "+00:00"))
    return parsed.replace(tzinfo=dt.timezone.utc) if parsed.tzinfo is None else parsed.astimezone(dt.timezone.utc)


def _partition_window(tags: Mapping[str, str]) -> tuple[dt.datetime, dt.datetime] | None:
    """[first day 00:00, day after the last day) of the run's daily partition(s), if it has any."""
    first, last = tags.get(_RANGE_TAGS[0]), tags.get(_RANGE_TAGS[1])
    if not (first and last):
        first = last = tags.get(_PARTITION_TAG)
    if not first:
        return None
    try:
        return _parse_time(first), _parse_time(last) + dt.timedelta(days=1)
    except ValueError:
        return None
