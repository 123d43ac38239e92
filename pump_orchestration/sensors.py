"""``ml_jobs_sensor``: mirrors the Dagster runs of the ML jobs into the seeds' ``ml_jobs`` table."""
from __future__ import annotations

import datetime as dt
import re

import dagster as dg

from pump_orchestration.jobs import ML_QUEUE_TAGS
from pump_orchestration.resources import TrainingRequestResource, WarehouseResource
from pump_orchestration.warehouse.jobs_mirror import (
    JOB_TYPES_BY_JOB,
    MAX_ERROR_CHARS,
    STATUS_BY_DAGSTER,
    request_fields,
    upsert_job,
)

#: Run records read per tick; more changes are picked up by the next ticks.
BATCH_SIZE = 100
#: Each tick re-reads this much before the cursor: a run's update timestamp is the time its event
#: happened in the run process, which can be a moment before the write becomes visible here.
#: Re-reading is harmless because writing an unchanged row is a no-op.
LOOKBACK = dt.timedelta(seconds=10)
_FAILURE_EVENTS = {dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
# Dagster's wrapper around the user's exception; its cause is the readable part.
_WRAPPER_ERRORS = {"DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError"}


@dg.sensor(
    minimum_interval_seconds=4,  # the daemon loops every 5 s; a value ≤ 4 gives a steady 5 s
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Mirrors runs tagged pump/queue=ml (training, test, comparison) into the ml_jobs table.",
)
def ml_jobs_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    """Upsert one ``ml_jobs`` row per ML run updated since the cursor (the last update timestamp seen).

    The cursor advances only after the rows are committed, and a repeated tick rewrites nothing,
    so a tick that fails or runs twice loses and duplicates nothing.
    """
    cursor = _parse_cursor(context.cursor)
    records = _changed_runs(context.instance, cursor)
    if not records:
        return dg.SkipReason("no ML run changed")
    rows = {}
    for record in records:
        run = record.dagster_run
        values = _job_values(context.instance, record)
        if values is None:
            context.log.warning(f"run {run.run_id} of {run.job_name} ({run.status.value}) is not mirrored: "
                                f"unknown ML job or status")
            continue
        rows[run.run_id] = values
    with warehouse.engine().begin() as conn:
        for run_id, values in rows.items():
            upsert_job(conn, run_id, values)
    newest = max(record.update_timestamp for record in records)
    if cursor is not None:
        newest = max(newest, cursor)
    return dg.SensorResult(cursor=newest.isoformat(), skip_reason=f"ml_jobs: {len(rows)} run(s) mirrored")


def _parse_cursor(cursor: str | None) -> dt.datetime | None:
    if not cursor:
        return None
    try:
        return dt.datetime.fromisoformat(cursor)
    except ValueError:  # a cursor edited by hand: start over, upserts are idempotent
        return None


def _changed_runs(instance: dg.DagsterInstance, cursor: dt.datetime | None) -> list[dg.RunRecord]:
    """ML run records updated after ``cursor`` − LOOKBACK, oldest update first, at most BATCH_SIZE."""
    def fetch(after: dt.datetime | None) -> list[dg.RunRecord]:
        return list(instance.get_run_records(
            dg.RunsFilter(tags=ML_QUEUE_TAGS, updated_after=after),
            limit=BATCH_SIZE, order_by="update_timestamp", ascending=True,
        ))

    if cursor is None:
        return fetch(None)
    records = fetch(cursor - LOOKBACK)
    if len(records) == BATCH_SIZE and records[-1].update_timestamp <= cursor:
        # More than a batch of updates inside the look-back window: move on from the cursor itself.
        records = fetch(cursor)
    return records


def _job_values(instance: dg.DagsterInstance, record: dg.RunRecord) -> dict | None:
    """The ``ml_jobs`` columns a run record gives, or None for a run the mirror does not know."""
    run = record.dagster_run
    job_type = JOB_TYPES_BY_JOB.get(run.job_name)
    status = STATUS_BY_DAGSTER.get(run.status.value)
    if job_type is None or status is None:
        return None
    values = {
        "job_type": job_type,
        "status": status,
        "created_at": record.create_timestamp,
        "started_at": _from_timestamp(record.start_time),
        **request_fields(run.job_name, _with_training_defaults(job_type, run.run_config), run.tags),
    }
    if status in ("COMPLETED", "FAILED", "CANCELLED"):
        values["completed_at"] = _from_timestamp(record.end_time)
    if status == "COMPLETED":
        values["progress"] = 1.0
    if status == "FAILED":
        values["error_msg"] = failure_message(instance, run.run_id)
    return values


def _with_training_defaults(job_type: str, run_config: dict) -> dict:
    """``run_config`` with the training request's defaults filled in (it holds only the fields set)."""
    if job_type != "TRAIN":
        return run_config
    defaults = {name: field.get_default(call_default_factory=True)
                for name, field in TrainingRequestResource.model_fields.items() if not field.is_required()}
    resources = run_config.get("resources") or {}
    request = (resources.get("training_request") or {}).get("config") or {}
    return {**run_config, "resources": {**resources, "training_request": {"config": {**defaults, **request}}}}


def _from_timestamp(seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)


def failure_message(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """A readable reason for a failed run: the run's failure message and each failed step's error.

    Stack traces are left out (they stay in Dagster's event log); the text is cut to MAX_ERROR_CHARS.
    """
    lines = []
    step_failed = False
    run_failure_error = None
    for entry in instance.all_logs(run_id, of_type=_FAILURE_EVENTS):
        event = entry.dagster_event
        error = getattr(event.event_specific_data, "error", None)
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            step_failed = True
            lines.append(f"{entry.step_key}: {_error_text(error)}" if error else f"{entry.step_key}: {event.message}")
        else:
            lines.insert(0, event.message or "run failed")
            run_failure_error = error
    if run_failure_error is not None and not step_failed:  # e.g. a resource failed before any step ran
        lines.append(_error_text(run_failure_error))
    text = "\n".join(line for line in lines if line)
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 15] + "… (truncated)"
    return text or None


def _error_text(error) -> str:
    """An error and its causes, one message each, without Dagster's wrapper around user code."""
    parts = []
    while error is not None:
        if not (error.cls_name in _WRAPPER_ERRORS and error.cause is not None):
            # "pkg.module.SomeError: text" → "SomeError: text"
            parts.append(re.sub(r"^(?:\w+\.)+(?=\w+: )", "", error.message.strip()))
        error = error.cause
    return "\ncaused by: ".join(parts)
