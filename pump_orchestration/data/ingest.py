"""Writing generated or imported coin_metrics into the warehouse (shared by the CLI and the Dagster jobs)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd


def ingest_synthetic(
    engine, *, n_coins: int, start: str, hours: float, seed: int = 0, pump_share: float = 0.25, live: bool = False
) -> tuple[dict, pd.DataFrame]:
    """Generate synthetic pump.fun coin_metrics into the warehouse; returns a summary and the planted pumps.

    The rows are history (not queued for live scoring) unless ``live``: then they are scored as a
    tracker's inserts would be.
    """
    from pump_orchestration.data.synthetic import generate_coin_metrics
    from pump_orchestration.warehouse.coin_metrics import write_coin_metrics

    metrics, pumps = generate_coin_metrics(n_coins=n_coins, start=start, hours=hours, seed=seed,
                                           pump_share=pump_share)
    written = write_coin_metrics(engine, metrics, queue_for_scoring=live)
    return _summary(metrics, written), pumps


def ingest_trades(engine, path: str | Path, *, interval_seconds: int = 5) -> dict:
    """Turn a raw pump.fun trades CSV into coin_metrics rows at ``interval_seconds`` and write them (as history)."""
    from pump_orchestration.data.trades_import import read_trades_csv, trades_to_coin_metrics
    from pump_orchestration.warehouse.coin_metrics import write_coin_metrics

    metrics = trades_to_coin_metrics(read_trades_csv(path), interval_seconds=interval_seconds)
    written = write_coin_metrics(engine, metrics, queue_for_scoring=False)
    return _summary(metrics, written)


def _summary(metrics: pd.DataFrame, written: int) -> dict:
    return {
        "rows": int(len(metrics)),
        "rows_written": int(written),
        "coins": int(metrics["mint"].nunique()),
        "first_timestamp": metrics["timestamp"].min().isoformat() if len(metrics) else None,
        "last_timestamp": metrics["timestamp"].max().isoformat() if len(metrics) else None,
    }
