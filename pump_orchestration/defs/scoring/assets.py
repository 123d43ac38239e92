"""``predictions``: every active model's prediction for each batch of new coin_metrics rows."""
import datetime as dt
from collections import Counter

import dagster as dg
from pydantic import Field

from pump_orchestration.defs.data.assets import coin_metrics
from pump_orchestration.defs.shared.resources import WarehouseResource, WebhookResource

#: Longest a prediction run spends posting its own webhooks; what is left goes to the redelivery job.
WEBHOOK_BUDGET_SECONDS = 20.0
#: While older payloads are still failing, runs leave theirs to the redelivery job instead of waiting on a
#: receiver that is down (which would only make prediction runs pile up).
RECEIVER_TROUBLE_AFTER = dt.timedelta(seconds=30)
#: Most skip reasons shown in a run's metadata (all are counted).
SHOWN_SKIPS = 20


class ScoreBatchConfig(dg.Config):
    """Which outbox batch to score (set by the coin_metrics_sensor)."""

    batch_key: str = Field(description="coin_metrics_outbox.batch_key of the rows to score, e.g. '101-250'.")


@dg.asset(deps=[coin_metrics], group_name="scoring", kinds={"scikitlearn", "sql"})
def predictions(context: dg.AssetExecutionContext, config: ScoreBatchConfig, warehouse: WarehouseResource,
                webhooks: WebhookResource) -> dg.MaterializeResult:
    """Predictions of every active model for one batch of new coin_metrics rows, stored in ``predictions``.

    Features are built from each coin's own history exactly as in training; the predictions, one webhook
    row per coin and timestamp and the batch's closing are written in one transaction; then the run posts
    its webhooks (retried with back-off, within a time budget; leftovers go to deliver_webhooks_job).
    """
    from pump_orchestration.delivery.rounds import deliver_pending
    from pump_orchestration.live.service import score_batch
    from pump_orchestration.warehouse.predictions import receiver_failing

    engine = warehouse.engine()
    sender = webhooks.sender()
    summary = score_batch(engine, config.batch_key, webhooks=sender is not None)
    for problem in summary["models_unavailable"]:
        context.log.warning(f"model {problem['model']} not scored: {problem['reason']}")
    delivery = {"delivered": 0, "failed": 0, "attempts": 0, "left_for_later": 0, "errors": []}
    if sender is not None and summary["keys"]:
        with engine.connect() as conn:
            trouble = receiver_failing(conn, RECEIVER_TROUBLE_AFTER)
        if trouble:
            delivery["left_for_later"] = len(summary["keys"])
            context.log.warning("older webhooks are still failing: this run's webhooks are left to the redelivery job")
        else:
            delivery = deliver_pending(engine, sender, keys=summary["keys"], budget_seconds=WEBHOOK_BUDGET_SECONDS)
        for error in delivery["errors"]:
            context.log.warning(f"webhook not delivered yet: {error}")
    seconds = {**summary["seconds"], "webhooks": delivery.get("seconds", 0.0)}
    # Reasons counted without their per-row detail (after the ";"), so the same cause is one entry.
    reasons = Counter(skip["reason"].split(";")[0] for skip in summary["skipped"])
    context.log.info(f"batch {config.batch_key}: {summary['predictions']} predictions for "
                     f"{summary.get('coins_scored', 0)} coins, {summary.get('alerts', 0)} alerts, "
                     f"{len(summary['skipped'])} skipped, webhooks {delivery['delivered']} delivered")
    return dg.MaterializeResult(metadata={
        "batch_key": config.batch_key,
        "note": summary.get("note") or "scored",
        "rows": summary["rows"],
        "coins_scored": summary.get("coins_scored", 0),
        "predictions": summary["predictions"],
        "predictions_written": summary["predictions_written"],
        "predictions_already_stored": summary["predictions_already_stored"],
        "predictions_per_model": dg.MetadataValue.json(summary.get("predictions_per_model", {})),
        "alerts": summary.get("alerts", 0),
        "rows_skipped": len(summary["skipped"]),
        "scored_with_short_history": dg.MetadataValue.int(summary.get("short_history", 0)),
        "outbox_rows_closed": summary["outbox_rows_closed"],
        "skip_reasons": dg.MetadataValue.json(dict(reasons)),
        "skipped_examples": dg.MetadataValue.json([
            {**s, "data_timestamp": str(s["data_timestamp"])} for s in summary["skipped"][:SHOWN_SKIPS]]),
        "models_unavailable": dg.MetadataValue.json(summary["models_unavailable"]),
        "webhooks_queued": summary["webhooks_queued"],
        "webhooks_delivered": delivery["delivered"],
        "webhooks_failed": delivery["failed"],
        "webhook_attempts": delivery["attempts"],
        "webhooks_left_for_redelivery": delivery["left_for_later"],
        "stage_seconds": dg.MetadataValue.json(seconds),
    })
