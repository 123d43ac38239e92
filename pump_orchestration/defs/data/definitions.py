"""Definitions of data loading."""
import dagster as dg

from pump_orchestration.defs.data.assets import coin_metrics, coin_metrics_slice
from pump_orchestration.defs.data.jobs import generate_synthetic_data_job, import_trades_job
from pump_orchestration.defs.shared.io_managers import ParquetIOManager
from pump_orchestration.defs.shared.resources import SharedResources


def data_definitions(shared: SharedResources) -> dg.Definitions:
    """The source, its per-day parquet slices, and the jobs that write coin_metrics."""
    return dg.Definitions(
        assets=[coin_metrics, coin_metrics_slice],
        jobs=[generate_synthetic_data_job, import_trades_job],
        resources={"warehouse": shared.warehouse,
                   "slice_io_manager": ParquetIOManager(base_dir=shared.cache_dir, split_by_day=True)},
    )
