"""Partitions: one daily training window per key; a run over a key range trains on the whole range."""
import contextlib
import functools
import inspect
import warnings

import dagster as dg
import pandas as pd

from pump_orchestration import settings
from pump_orchestration.defs.shared.launch import verify_launch
from pump_orchestration.defs.shared.resources import WarehouseResource

#: Daily windows (UTC). Days are the caching unit of raw slices; a model's window is one day or a range of days,
#: optionally narrowed by train_start/train_end.
training_days = dg.DailyPartitionsDefinition(start_date=settings.partitions_start(), timezone="UTC")


def window_asset(**kwargs):
    """``@dg.asset`` on the daily windows; a run over a key range executes once over the whole range.

    Its body runs only after the run's launch is verified (``launch.verify_launch``, once per run, so in
    the first windowed step, before any data is loaded); a request or data problem it raises fails the
    step with that problem's own text.
    """

    def decorate(fn):
        # Dagster 1.13 labels backfill_policy beta and would warn at every import of the code location.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)
            return dg.asset(partitions_def=training_days, backfill_policy=dg.BackfillPolicy.single_run(),
                            **kwargs)(_verified_first(fn))

    return decorate


def _verified_first(fn):
    """``fn`` (a generator or not, with Dagster's signature kept) preceded by the launch check."""
    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def wrapper(context, *args, **kwargs):
            with user_errors_as_failures():
                _verify(context, kwargs)
                yield from fn(context, *args, **kwargs)
    else:
        @functools.wraps(fn)
        def wrapper(context, *args, **kwargs):
            with user_errors_as_failures():
                _verify(context, kwargs)
                return fn(context, *args, **kwargs)
    return wrapper


def _verify(context: dg.AssetExecutionContext, resources: dict) -> None:
    # The asset's warehouse, or the one its training request depends on: every windowed asset has one.
    candidates = [*resources.values(), *(getattr(value, "warehouse", None) for value in resources.values())]
    warehouse = next((value for value in candidates if isinstance(value, WarehouseResource)), None)
    if warehouse is None:
        raise TypeError(f"{context.op_def.name}: a window asset needs a warehouse or training_request resource")
    verify_launch(context, warehouse)


@contextlib.contextmanager
def user_errors_as_failures():
    """Fail the step with a request or data problem's own text (``ValueError``/``LookupError``) as its message.

    Dagster would report it wrapped ("DagsterExecutionStepExecutionError … caused by …"); a ``Failure`` is
    shown as it is, and the original exception stays attached as its cause, stack trace included.
    """
    try:
        yield
    except (ValueError, LookupError) as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from exc


def partition_window(context: dg.AssetExecutionContext) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[start of the first selected day, end of the last) of the run, in UTC."""
    window = context.partition_time_window
    return pd.Timestamp(window.start), pd.Timestamp(window.end)
