"""Jobs: training on partitioned windows, and loading coin_metrics (synthetic demo data or real trades)."""

import dagster as dg
from pydantic import Field

from pump_orchestration.assets.evaluation import model_comparison, test_report
from pump_orchestration.assets.training import coin_metrics_slice, engineered_features, fitted_model, labelled_dataset
from pump_orchestration.assets.walk_forward import walk_forward_evaluation
from pump_orchestration.resources import WarehouseResource

#: Run tag of the jobs that share the ML run queue (dagster.yaml limits how many run at once).
QUEUE_TAG = "pump/queue"
#: Tags every training/test/comparison job carries; prediction jobs do not, so they never wait for training.
ML_QUEUE_TAGS = {QUEUE_TAG: "ml"}

def _ml_job(name: str, assets: list, description: str):
    # One process per run (the in-process executor): the chain shares one warehouse engine and avoids a
    # process start per step; the ML tag puts the run in the limited queue.
    return dg.define_asset_job(name, selection=dg.AssetSelection.assets(*assets), executor_def=dg.in_process_executor,
                               tags=ML_QUEUE_TAGS, description=description)


train_model_job = _ml_job(
    "train_model_job", [coin_metrics_slice, labelled_dataset, engineered_features, fitted_model],
    "Train one model on the selected day(s): fill in resources.training_request in the launchpad.",
)
test_model_job = _ml_job(
    "test_model_job", [coin_metrics_slice, test_report],
    "Test a READY model on the selected day(s): ops.test_report.config.model = id or name.",
)
compare_models_job = _ml_job(
    "compare_models_job", [coin_metrics_slice, model_comparison],
    "Compare two models on the same rows of the selected day(s).",
)
walk_forward_job = _ml_job(
    "walk_forward_job", [coin_metrics_slice, walk_forward_evaluation],
    "Walk-forward over a range of days: train on trailing windows, test on the next, compare.",
)


class SyntheticDataConfig(dg.Config):
    """Parameters of the synthetic pump.fun market."""

    n_coins: int = Field(default=300, description="Number of coins that appear during the period.")
    start: str = Field(default="2025-09-01T00:00:00Z", description="Start of the generated period (UTC).")
    hours: float = Field(default=24.0, description="Length of the generated period in hours.")
    seed: int = Field(default=0, description="Random seed (same seed = same data).")
    pump_share: float = Field(default=0.25, description="Share of coins with one planted pump.")


@dg.op
def generate_synthetic_coin_metrics(context: dg.OpExecutionContext, config: SyntheticDataConfig,
                                    warehouse: WarehouseResource) -> None:
    """Write synthetic coin_metrics (with planted pumps) into the warehouse."""
    from pump_orchestration.data.ingest import ingest_synthetic

    summary, pumps = ingest_synthetic(warehouse.engine(), n_coins=config.n_coins, start=config.start,
                                      hours=config.hours, seed=config.seed, pump_share=config.pump_share)
    context.log.info(f"synthetic coin_metrics: {summary}; planted pumps: {len(pumps)}")
    context.log_event(dg.AssetObservation(asset_key="coin_metrics", metadata={**summary, "planted_pumps": len(pumps)}))


class TradesImportConfig(dg.Config):
    """Where the raw trades are and how to bucket them."""

    path: str = Field(description="CSV of raw pump.fun trades (format of realdata/pumpfun_trades/trades_data.csv).")
    interval_seconds: int = Field(default=5, description="Length of one coin_metrics row in seconds.")


@dg.op
def import_trades_into_coin_metrics(context: dg.OpExecutionContext, config: TradesImportConfig,
                                    warehouse: WarehouseResource) -> None:
    """Build coin_metrics rows from raw trades and write them into the warehouse."""
    from pump_orchestration.data.ingest import ingest_trades

    summary = ingest_trades(warehouse.engine(), config.path, interval_seconds=config.interval_seconds)
    context.log.info(f"imported trades: {summary}")
    context.log_event(dg.AssetObservation(asset_key="coin_metrics", metadata=summary))


@dg.job(executor_def=dg.in_process_executor, description="Generate synthetic coin_metrics for demos and tests.")
def generate_synthetic_data_job():
    generate_synthetic_coin_metrics()


@dg.job(executor_def=dg.in_process_executor, description="Import raw pump.fun trades as coin_metrics rows.")
def import_trades_job():
    import_trades_into_coin_metrics()
