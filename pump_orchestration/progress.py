"""Progress reporting from inside ML runs: the run's log plus the ``ml_jobs`` mirror."""
from __future__ import annotations

import dagster as dg

from pump_orchestration.resources import WarehouseResource
from pump_orchestration.warehouse.jobs_mirror import JOB_TYPES_BY_JOB, record_progress


def is_mirrored(run: dg.DagsterRun) -> bool:
    """True for runs the ``ml_jobs_sensor`` mirrors: an ML job carrying the ML queue tag."""
    # Imported here, not at the top: jobs.py imports the assets, which import this module.
    from pump_orchestration.jobs import ML_QUEUE_TAGS

    return run.job_name in JOB_TYPES_BY_JOB and all(run.tags.get(k) == v for k, v in ML_QUEUE_TAGS.items())


def report_progress(context: dg.OpExecutionContext | dg.AssetExecutionContext, warehouse: WarehouseResource,
                    fraction: float, message: str) -> None:
    """Log ``message`` with ``fraction`` (0–1) and record both in the run's ``ml_jobs`` row.

    Only the runs the ``ml_jobs_sensor`` mirrors are recorded (an ML job of ``JOB_TYPES_BY_JOB``
    carrying the ML queue tag), so no row is left RUNNING that the sensor would never complete; an
    asset materialised by another job, or invoked directly in a test, just logs. A failed mirror write is logged as a warning and
    never fails the run: the mirror is for dashboards, the run is the real work.
    """
    context.log.info(f"progress {fraction:.0%}: {message}")
    try:
        run = context.run
    except dg.DagsterError:  # invoked directly (a unit test): no run to mirror
        return
    if not is_mirrored(run):
        return
    try:
        record_progress(warehouse.engine(), context.run_id, run.job_name, fraction, message)
    except Exception as exc:  # noqa: BLE001 - any mirror failure must leave the run alone
        context.log.warning(f"ml_jobs progress not recorded ({type(exc).__name__}: {exc})")
