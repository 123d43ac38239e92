"""What a running ML run writes into its own ``ml_jobs`` row: progress while it works, result ids at the end.

Only runs carrying the ML tags (``tags.ml_job_type``) are recorded, so no row is left RUNNING that
the ``ml_jobs_sensor`` would never complete; an asset materialised by another job, or invoked
directly in a test, just logs. A failed mirror write is logged as a warning and never fails the
run: the mirror is for dashboards, the run is the real work.
"""
from __future__ import annotations

import dagster as dg

from pump_orchestration.defs.shared.resources import WarehouseResource
from pump_orchestration.defs.shared.tags import ml_job_type


def report_progress(context: dg.OpExecutionContext | dg.AssetExecutionContext, warehouse: WarehouseResource,
                    fraction: float, message: str) -> None:
    """Log ``message`` with ``fraction`` (0–1) and record both in the run's ``ml_jobs`` row."""
    from pump_orchestration.warehouse.jobs_mirror import record_progress

    context.log.info(f"progress {fraction:.0%}: {message}")
    try:
        run = context.run
    except dg.DagsterError:  # invoked directly (a unit test): no run to mirror
        return
    job_type = ml_job_type(run.tags)
    if job_type is None:
        return
    try:
        record_progress(warehouse.engine(), context.run_id, job_type, fraction, message)
    except Exception as exc:  # noqa: BLE001 - any mirror failure must leave the run alone
        context.log.warning(f"ml_jobs progress not recorded ({type(exc).__name__}: {exc})")


def record_run_result(context: dg.OutputContext, warehouse: WarehouseResource, result_ids: dict[str, int]) -> None:
    """Record the ids of what the run wrote (``result_model_id``, ...) in its ``ml_jobs`` row."""
    from pump_orchestration.warehouse.jobs_mirror import record_result

    try:
        job_type = ml_job_type(context.step_context.dagster_run.tags)
        if job_type is not None and result_ids:
            record_result(warehouse.engine(), context.run_id, job_type, **result_ids)
    except Exception as exc:  # noqa: BLE001 - the result itself is already written
        context.log.warning(f"ml_jobs result ids not recorded ({type(exc).__name__}: {exc})")
