"""``coin_metrics`` (the tracker's table, read only) and ``coin_metrics_slice``, its rows per daily window."""
import time

import dagster as dg
import pandas as pd

from pump_orchestration import settings
from pump_orchestration.defs.shared.metadata import with_stage
from pump_orchestration.defs.shared.partitions import partition_window, window_asset
from pump_orchestration.defs.shared.progress import report_progress
from pump_orchestration.defs.shared.resources import WarehouseResource

coin_metrics = dg.AssetSpec(
    "coin_metrics",
    description="Per-coin metrics written by the tracker; this product only reads them.",
    group_name="source",
    kinds={"sql"},
)


@window_asset(
    deps=[coin_metrics],
    io_manager_key="slice_io_manager",
    group_name="data",
    kinds={"pandas", "parquet"},
)
def coin_metrics_slice(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.Output[pd.DataFrame]:
    """coin_metrics rows of the selected day(s), plus FEATURE_LOOKBACK_MINUTES of history before them.

    Loaded in chunks with no row cap; cached per day as parquet so later windows reuse it.
    """
    from pump_orchestration.warehouse.coin_metrics import load_coin_metrics

    start, end = partition_window(context)
    lookback = settings.feature_lookback_minutes()
    t0 = time.perf_counter()
    df = load_coin_metrics(warehouse.engine(), start - pd.Timedelta(minutes=lookback), end)
    seconds = time.perf_counter() - t0
    in_window = int((df["timestamp"] >= start).sum())
    df.attrs = with_stage({"lookback_minutes": lookback, "rows_loaded": int(len(df))}, "load", seconds)
    report_progress(context, warehouse, 0.2, f"loaded {len(df):,} rows ({in_window:,} in window, "
                    f"{len(df) - in_window:,} look-back) in {seconds:.1f}s")
    return dg.Output(df, metadata={
        "rows_loaded": len(df),
        "rows_in_window": in_window,
        "coins": int(df["mint"].nunique()),
        "chunks": int(df.attrs.get("chunks", 0) or 0),
        "load_seconds": round(seconds, 3),
        "rows_per_second": round(len(df) / seconds, 1) if seconds > 0 else 0.0,
        "window": f"[{start.isoformat()}, {end.isoformat()})",
    })
