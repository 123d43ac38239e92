"""Definitions of live scoring."""
import dagster as dg

from pump_orchestration.defs.scoring.activation import manage_active_models_job
from pump_orchestration.defs.scoring.assets import predictions
from pump_orchestration.defs.scoring.jobs import deliver_webhooks_job, score_coin_job, score_coins_job
from pump_orchestration.defs.scoring.sensors import coin_metrics_sensor, webhook_delivery_sensor
from pump_orchestration.defs.shared.resources import SharedResources


def scoring_definitions(shared: SharedResources) -> dg.Definitions:
    """Activation, the coin_metrics sensor and prediction runs, manual scoring, webhook redelivery."""
    return dg.Definitions(
        assets=[predictions],
        jobs=[score_coins_job, deliver_webhooks_job, score_coin_job, manage_active_models_job],
        sensors=[coin_metrics_sensor, webhook_delivery_sensor],
        resources=shared.as_dict(),
    )
