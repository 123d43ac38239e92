"""Sensors of live scoring: new coin_metrics rows → prediction runs; pending webhooks → redelivery runs."""
from __future__ import annotations

import time

import dagster as dg

from pump_orchestration import settings
from pump_orchestration.defs.scoring.jobs import deliver_webhooks_job, score_coins_job
from pump_orchestration.defs.shared.resources import WarehouseResource, WebhookResource

#: Run tag naming the outbox batch a prediction run scores.
BATCH_TAG = "pump/score_batch"
#: New batches claimed per tick (each at most SCORING_BATCH_ROWS rows): a backlog drains in bounded runs.
MAX_NEW_BATCHES = 10
#: Open batches looked at per tick.
MAX_OPEN_BATCHES = 50
#: Runs a batch gets before it is left for an operator (each failed run is retried by a new run).
MAX_RUNS_PER_BATCH = 5
_ENDED_BADLY = {dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED}


@dg.sensor(job=score_coins_job, minimum_interval_seconds=4,  # the daemon loops every 5 s; ≤ 4 gives a steady 5 s
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Notices new coin_metrics rows (through the outbox trigger) and launches a prediction run "
                       "per bounded batch.")
def coin_metrics_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource):
    """Claim new outbox rows into batches and request a run for every batch not scored yet.

    The state lives in the warehouse, not in a cursor: a row is claimed once (its ``batch_key`` is set
    in the same transaction that reads it), and every tick re-requests each open batch with the same
    ``run_key``, which Dagster drops when that run exists. So a tick that dies after claiming loses
    nothing (the next tick requests the batch), and a restart of the daemon or the code server scores
    nothing twice. A batch whose run failed (database down, say) gets a new run with a new key.
    """
    from pump_orchestration.warehouse import outbox

    engine = warehouse.engine()
    with engine.begin() as conn:
        if not outbox.trigger_installed(conn):
            return dg.SkipReason("coin_metrics has no outbox trigger, so new rows cannot be noticed: apply "
                                 "sql/coin_metrics_outbox.sql (see sql/README.md)")
        new = outbox.claim_batches(conn, settings.scoring_batch_rows(), MAX_NEW_BATCHES)
        open_keys = outbox.open_batches(conn, limit=MAX_OPEN_BATCHES)
    requests = []
    for key in open_keys:
        runs = context.instance.get_runs(dg.RunsFilter(job_name=score_coins_job.name, tags={BATCH_TAG: key}))
        if any(run.status not in _ENDED_BADLY for run in runs):
            continue  # queued, running or done: Dagster has it
        if len(runs) >= MAX_RUNS_PER_BATCH:
            context.log.warning(f"batch {key}: {len(runs)} runs failed; not retried again (rescore it by hand)")
            continue
        requests.append(dg.RunRequest(
            run_key=f"score-{key}" + (f"-retry{len(runs)}" if runs else ""),
            run_config={"ops": {"predictions": {"config": {"batch_key": key}}}},
            tags={BATCH_TAG: key},
        ))
    if not requests:
        return dg.SkipReason(f"no new coin_metrics rows ({len(open_keys)} batch(es) in progress)")
    if new:
        context.log.info(f"claimed {sum(n for _, n in new)} new row(s) into {len(new)} batch(es)")
    return dg.SensorResult(run_requests=requests)


@dg.sensor(job=deliver_webhooks_job, minimum_interval_seconds=15, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Launches a redelivery run while webhooks are pending (receiver down, 5xx, time budget spent).")
def webhook_delivery_sensor(context: dg.SensorEvaluationContext, warehouse: WarehouseResource,
                            webhooks: WebhookResource):
    """One redelivery run at a time, while anything is pending."""
    from pump_orchestration.warehouse.predictions import pending_webhooks

    if webhooks.sender() is None:
        return dg.SkipReason("N8N_WEBHOOK_URL is not set: webhooks are off")
    with warehouse.engine().connect() as conn:
        pending = pending_webhooks(conn)
    if not pending:
        return dg.SkipReason("no pending webhook")
    busy = context.instance.get_runs(dg.RunsFilter(job_name=deliver_webhooks_job.name, statuses=[
        dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
        dg.DagsterRunStatus.STARTED]), limit=1)
    if busy:
        return dg.SkipReason(f"{pending} pending webhook(s); a redelivery run is already on it")
    return dg.RunRequest(run_key=f"deliver-{int(time.time())}")
