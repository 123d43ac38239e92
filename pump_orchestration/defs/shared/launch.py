"""What a run on the daily windows checks before any data is loaded: its days, its request, its data.

The first windowed step of a run (``partitions.window_asset``) calls ``verify_launch``: the partition
key or range must be past days, the job's request (training request, test, comparison or walk-forward
settings) must be valid against the warehouse, and coin_metrics must have rows in the window. Every
problem is reported at once, one line each naming the field and the fix, under the request's label.
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Callable, Mapping

import dagster as dg
import pandas as pd
import pydantic
import sqlalchemy as sa

from pump_orchestration import settings
from pump_orchestration.defs.shared.resources import WarehouseResource
from pump_orchestration.defs.shared.tags import PARTITION_RANGE_TAGS, PARTITION_TAG, ml_job_type
from pump_orchestration.ml.request import RequestValidationError, narrow_window


def _model_ref(value: Any) -> str:
    # Dagster's run config has no "int or str" type: the field takes any value and this keeps a scalar as text.
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValueError(f"expected an ml_models id (e.g. 12) or name, got {value!r}")
    return str(value).strip()


#: A config field naming a model by id (``12`` or ``"12"``) or by name; the value is kept as text.
ModelRef = Annotated[Any, pydantic.BeforeValidator(_model_ref)]

#: How each job type's request is called in its error messages.
LABELS = {"TRAIN": "Invalid training request", "TEST": "Invalid test request", "COMPARE": "Invalid comparison",
          "WALK_FORWARD": "Invalid walk-forward"}
Window = tuple[pd.Timestamp, pd.Timestamp]
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")

# Runs verified in this process: steps of one run share the process (in-process executor), so only the first checks.
_verified: set[str] = set()


def verify_launch(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> None:
    """Raise ``RequestValidationError`` (labelled by job type) listing every launch problem of the run."""
    try:
        run = context.run
    except dg.DagsterError:  # invoked directly (a unit test): no launch to verify
        return
    if run.run_id in _verified:
        return
    run_config = run.run_config or {}
    job_type = ml_job_type(run.tags) or _job_type_from_config(run_config)
    problems = launch_problems(job_type, run_config, run.tags, warehouse.engine())
    if problems:
        raise RequestValidationError(problems, LABELS.get(job_type, "Invalid partition selection"))
    _verified.add(run.run_id)


def launch_problems(job_type: str | None, run_config: Mapping, tags: Mapping[str, str], engine: sa.Engine) -> list[str]:
    """The problems of a launch: its days first (nothing else can be checked without them), then its request."""
    try:
        days = selected_days(tags)
    except RequestValidationError as exc:
        return exc.problems
    check = _CHECKS.get(job_type)
    problems, window = check(run_config, days, engine) if check else ([], days)
    return problems or _data_problems(engine, window)


def ready_model(conn: sa.Connection, ref: str, field: str = "model") -> tuple[dict | None, str | None]:
    """(the READY, non-deleted ``ml_models`` row ``ref`` names by id or name, None) or (None, the problem)."""
    from pump_orchestration.warehouse import repository

    row = repository.get_model(conn, model_id=int(ref)) if ref.isdigit() else repository.get_model(conn, name=ref)
    if row is None or row.get("is_deleted"):
        return None, f"{field}: no model with id or name {ref!r}; give the id or name of a READY model in ml_models"
    if row["status"] != "READY":
        return None, (f"{field}: {row['name']!r} is {row['status']}, only READY models can be tested; "
                      "pick a READY model")
    return row, None


# ---------------------------------------------------------------- per job type

#: The request check of each job type, registered by its capability (``register_launch_check``): given the
#: run config, the selected days and the warehouse engine, it returns (problems, the window whose data is needed).
LaunchCheck = Callable[[Mapping, Window, sa.Engine], tuple[list[str], Window]]
_CHECKS: dict[str, LaunchCheck] = {}


def register_launch_check(job_type: str, check: LaunchCheck) -> LaunchCheck:
    """Make ``check`` the request check of runs of ``job_type`` (``vocabulary.JOB_TYPES``)."""
    if job_type not in LABELS:
        raise ValueError(f"job_type: {job_type!r} has no launch label; known: {', '.join(LABELS)}")
    _CHECKS[job_type] = check
    return check


def _job_type_from_config(run_config: Mapping) -> str | None:
    """The job type of a run without the ML tags (e.g. assets materialised from the UI), from what it configures."""
    ops = run_config.get("ops") or {}
    for op, job_type in (("test_report", "TEST"), ("model_comparison", "COMPARE"),
                         ("walk_forward_evaluation", "WALK_FORWARD")):
        if op in ops:
            return job_type
    return "TRAIN" if "training_request" in (run_config.get("resources") or {}) else None


def model_config_problems(run_config: Mapping, days: Window, engine: sa.Engine, *, op: str, config_class: type,
                          model_fields: tuple[str, ...]) -> tuple[list[str], Window]:
    """A test's or comparison's op config: its models (READY, two different ones), its window inside the days."""
    config, problems = op_config(run_config, op, config_class)
    if config is None:
        return problems, days
    rows = {}
    with engine.connect() as conn:
        for field in model_fields:
            rows[field], problem = ready_model(conn, getattr(config, field), field)
            if problem:
                problems.append(problem)
    first, *others = [rows[field] for field in model_fields]
    if first and any(other and other["id"] == first["id"] for other in others):
        problems.append(f"{model_fields[1]}: must differ from {model_fields[0]} (both name model {first['id']} "
                        f"{first['name']!r})")
    try:
        return problems, narrow_window(*days, config.test_start, config.test_end, names=("test_start", "test_end"))
    except RequestValidationError as exc:
        return problems + exc.problems, days


def op_config(run_config: Mapping, op: str, config_class: type) -> tuple[Any, list[str]]:
    """The op's config object (defaults applied), or None and one problem per field pydantic rejects."""
    raw = ((run_config.get("ops") or {}).get(op) or {}).get("config") or {}
    try:
        return config_class(**raw), []
    except pydantic.ValidationError as exc:
        return None, [f"{'.'.join(str(part) for part in error['loc'])}: {error['msg'].removeprefix('Value error, ')}"
                      for error in exc.errors()]


# ---------------------------------------------------------------- days and data

def selected_days(tags: Mapping[str, str], today: dt.date | None = None) -> tuple[pd.Timestamp, pd.Timestamp]:
    """[first selected day 00:00, day after the last) in UTC, from a run's partition tags.

    ``RequestValidationError`` (one line per problem, naming the field and the fix) when no day is
    selected, a key is not a day, lies before the first partition or in the future, or a range is reversed.
    """
    today = today or dt.datetime.now(dt.timezone.utc).date()
    first, last = tags.get(PARTITION_RANGE_TAGS[0]), tags.get(PARTITION_RANGE_TAGS[1])
    field = "partition range" if (first or last) else "partition"
    if field == "partition":
        first = last = tags.get(PARTITION_TAG)
    if not (first and last):
        raise RequestValidationError([f"{field}: no day selected; select a day (e.g. {today - dt.timedelta(days=1)})"
                                      " or a range of days"])
    problems, days = [], []
    for key in dict.fromkeys((first, last)):
        day = _day(key)
        if day is None:
            problems.append(f"{field}: {key!r} is not a day; use YYYY-MM-DD, e.g. {today - dt.timedelta(days=1)}")
        elif day < dt.date.fromisoformat(settings.partitions_start()):
            problems.append(f"{field}: {key} is before the first day {settings.partitions_start()} "
                            "(PUMP_PARTITIONS_START)")
        elif day > today:
            problems.append(f"{field}: {key} is in the future (today is {today} UTC), so it has no data yet; "
                            "select a past day")
        days.append(day)
    if not problems and days[0] > days[-1]:
        problems.append(f"{field}: {first} … {last} is reversed; the first day must not come after the last")
    if problems:
        raise RequestValidationError(problems)
    start = pd.Timestamp(days[0], tz="UTC")
    return start, pd.Timestamp(days[-1], tz="UTC") + pd.Timedelta(days=1)


def _day(key: str) -> dt.date | None:
    if not isinstance(key, str) or not _DAY.fullmatch(key):
        return None
    try:
        return dt.date.fromisoformat(key)
    except ValueError:
        return None



def _data_problems(engine: sa.Engine, window: Window) -> list[str]:
    """A window with no coin_metrics rows (an index-only min/max; gaps inside the data are found after loading)."""
    from pump_orchestration.warehouse.coin_metrics import coin_metrics_time_range

    start, end = window
    span = coin_metrics_time_range(engine)
    if span is None:
        return ["empty window: coin_metrics has no rows at all; load data first (pump-orchestration generate or "
                "import-trades)"]
    first, last = (pd.Timestamp(t) for t in span)
    if last < start or first >= end:
        return [f"empty window: no coin_metrics rows between {start.isoformat()} and {end.isoformat()}; "
                f"coin_metrics holds rows from {first:%Y-%m-%d %H:%M} to {last:%Y-%m-%d %H:%M} UTC: "
                "select days in that range"]
    return []
