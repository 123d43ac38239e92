"""Jobs of live scoring: batched prediction runs, webhook redelivery, and scoring one coin by hand.

None carries the ML queue tag: scoring never waits behind training.
"""
from typing import Optional

import dagster as dg
from pydantic import Field

from pump_orchestration import settings
from pump_orchestration.defs.scoring.assets import predictions
from pump_orchestration.defs.shared.launch import ModelRef
from pump_orchestration.defs.shared.resources import WarehouseResource, WebhookResource

score_coins_job = dg.define_asset_job(
    "score_coins_job", selection=[predictions], executor_def=dg.in_process_executor,
    description="Score one batch of new coin_metrics rows with every active model (launched by coin_metrics_sensor).",
)


@dg.op
def deliver_webhooks(context: dg.OpExecutionContext, warehouse: WarehouseResource, webhooks: WebhookResource) -> None:
    """Post every pending webhook (retries with back-off); give up on ones older than WEBHOOK_GIVE_UP_HOURS."""
    import datetime as dt

    from pump_orchestration.delivery.rounds import deliver_pending

    sender = webhooks.sender()
    if sender is None:
        context.log.info("N8N_WEBHOOK_URL is not set: webhooks are off, nothing to deliver")
        return
    summary = deliver_pending(warehouse.engine(), sender, budget_seconds=120.0,
                              give_up_after=dt.timedelta(hours=settings.webhook_give_up_hours()))
    for error in summary["errors"]:
        context.log.warning(f"still undelivered: {error}")
    context.add_output_metadata({k: dg.MetadataValue.json(v) if isinstance(v, list) else v for k, v in summary.items()})


@dg.job(executor_def=dg.in_process_executor,
        description="Redeliver webhooks that are still pending (launched by webhook_delivery_sensor).")
def deliver_webhooks_job():
    deliver_webhooks()


class ScoreCoinConfig(dg.Config):
    """One coin to score by hand."""

    coin: str = Field(description="The coin's mint (coin_metrics.mint).")
    models: list[ModelRef] = Field(default=[], description="Active model ids (e.g. 12) or names; empty = every "
                                                           "active model.")
    at: Optional[str] = Field(default=None, description="ISO timestamp: score the coin's row at or before it; "
                                                        "empty = its newest row.")


@dg.op
def score_coin(context: dg.OpExecutionContext, config: ScoreCoinConfig, warehouse: WarehouseResource) -> None:
    """The active models' predictions for one coin, in the run's metadata (nothing stored, no webhook)."""
    from pump_orchestration.live.service import score_coin as score

    result = score(warehouse.engine(), config.coin, model_refs=config.models or None, at=config.at)
    for skip in result["skipped"]:
        context.log.warning(f"{skip.get('model')}: {skip['reason']}")
    context.add_output_metadata({"coin_id": result["coin_id"], "timestamp": result["timestamp"],
                                 "predictions": dg.MetadataValue.json(result["predictions"]),
                                 "skipped": dg.MetadataValue.json([{k: str(v) for k, v in s.items()}
                                                                   for s in result["skipped"]])})


@dg.job(executor_def=dg.in_process_executor,
        description="Score one coin now with the active models (ops.score_coin.config).")
def score_coin_job():
    score_coin()
