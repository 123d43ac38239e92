"""``ml_jobs_sensor``: mirrors the Dagster runs of the ML jobs into the ``ml_jobs`` table."""
from __future__ import annotations

import datetime as dt

import dagster as dg

from pump_orchestration.defs.ml_jobs.mirror import job_values
from pump_orchestration.defs.shared.resources import WarehouseResource
from pump_orchestration.defs.shared.tags import ML_QUEUE_TAGS
from pump_orchestration.warehouse.jobs_mirror import upsert_job

#: Run records read per tick; more changes are picked up by the next ticks.
BATCH_SIZE = 100
#: Each tick re-reads this much before the cursor: a run's update timestamp is the time its event
#: happened in the run process, which can be a moment before the write becomes visible here.
#: Re-reading is harmless because writing an unchanged row is a no-op.
LOOKBACK = dt.timedelta(seconds=10)


@dg.sensor(
    minimum_interval_seconds=4,  # the daemon loops every 5 s; a value ≤ 4 gives a steady 5 s
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Mirrors the runs of the ML jobs (training, test, comparison, walk-forward) into the ml_jobs table.",
)
def ml_jobs_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    """Upsert one ``ml_jobs`` row per ML run updated since the cursor (the last update timestamp seen).

    The cursor advances only after the rows are committed, and a repeated tick rewrites nothing,
    so a tick that fails or runs twice loses and duplicates nothing. Its skip reason tells news only:
    runs re-read inside the look-back window were mirrored by an earlier tick and are not reported again.
    """
    cursor = _parse_cursor(context.cursor)
    records = _changed_runs(context.instance, cursor)
    news = [record for record in records if cursor is None or record.update_timestamp > cursor]
    rows = {}
    for record in records:
        run = record.dagster_run
        values = job_values(context.instance, record)
        if values is None:
            if record in news:  # warned about once, not on every re-read
                context.log.warning(f"run {run.run_id} of {run.job_name} ({run.status.value}) is not mirrored: "
                                    f"no known pump/job_type tag, or an unknown status")
            continue
        rows[run.run_id] = values
    if rows:
        with warehouse.engine().begin() as conn:
            for run_id, values in rows.items():
                upsert_job(conn, run_id, values)
    mirrored = sum(1 for record in news if record.dagster_run.run_id in rows)
    if not records:
        return dg.SkipReason("no ML run changed")
    newest = max([record.update_timestamp for record in records] + ([cursor] if cursor else []))
    return dg.SensorResult(cursor=newest.isoformat(), skip_reason=(
        f"ml_jobs: {mirrored} run change(s) mirrored" if mirrored else "no ML run changed"))


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
