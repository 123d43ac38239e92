"""Jobs that fill coin_metrics: synthetic demo data with planted pumps, or real pump.fun trades."""

import dagster as dg
from pydantic import Field

from pump_orchestration.defs.shared.resources import WarehouseResource


class SyntheticDataConfig(dg.Config):
    """Parameters of the synthetic pump.fun market."""

    n_coins: int = Field(default=300, description="Number of coins that appear during the period.")
    start: str = Field(default="2025-09-01T00:00:00Z", description="Start of the generated period (UTC).")
    hours: float = Field(default=24.0, description="Length of the generated period in hours.")
    seed: int = Field(default=0, description="Random seed (same seed = same data).")
    pump_share: float = Field(default=0.25, description="Share of coins with one planted pump.")
    live: bool = Field(default=False, description="Queue the rows for live scoring, as a tracker's inserts "
                                                  "(false: history for training, not scored).")


@dg.op
def generate_synthetic_coin_metrics(context: dg.OpExecutionContext, config: SyntheticDataConfig,
                                    warehouse: WarehouseResource) -> None:
    """Write synthetic coin_metrics (with planted pumps) into the warehouse."""
    from pump_orchestration.data.ingest import ingest_synthetic

    summary, pumps = ingest_synthetic(warehouse.engine(), n_coins=config.n_coins, start=config.start,
                                      hours=config.hours, seed=config.seed, pump_share=config.pump_share,
                                      live=config.live)
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
