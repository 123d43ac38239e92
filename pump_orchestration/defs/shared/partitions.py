"""Partitions: one daily training window per key; a run over a key range trains on the whole range."""
import warnings

import dagster as dg
import pandas as pd

from pump_orchestration import settings

#: Daily windows (UTC). Days are the caching unit of raw slices; a model's window is one day or a range of days,
#: optionally narrowed by train_start/train_end.
training_days = dg.DailyPartitionsDefinition(start_date=settings.partitions_start(), timezone="UTC")


def window_asset(**kwargs):
    """``@dg.asset`` on the daily windows; a run over a key range executes once over the whole range."""

    def decorate(fn):
        # Dagster 1.13 labels backfill_policy beta and would warn at every import of the code location.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)
            return dg.asset(partitions_def=training_days, backfill_policy=dg.BackfillPolicy.single_run(), **kwargs)(fn)

    return decorate


def partition_window(context: dg.AssetExecutionContext) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start of the first selected day, end of the last) of the run, in UTC."""
    window = context.partition_time_window
    return pd.Timestamp(window.start), pd.Timestamp(window.end)
