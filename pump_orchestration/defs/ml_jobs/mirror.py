"""How a Dagster run of an ML job becomes its ``ml_jobs`` row: job type, status, request columns, error text.

The job type comes from the run's ``pump/job_type`` tag (``shared.tags``), never from the job's name,
so a new ML job is mirrored by tagging it. Storing and merging the row is the warehouse's
(``warehouse.jobs_mirror.upsert_job``).
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any, Mapping

import dagster as dg

from pump_orchestration.defs.shared.launch import selected_days
from pump_orchestration.defs.shared.tags import ml_job_type
from pump_orchestration.ml.request import RequestValidationError, request_defaults
from pump_orchestration.vocabulary import TERMINAL_JOB_STATUSES
from pump_orchestration.warehouse.jobs_mirror import MAX_ERROR_CHARS, coerce_column

#: Dagster run status → ``ml_jobs.status``. STARTING counts as RUNNING: the run has left the
#: queue and holds one of the ML slots. CANCELING is still running until Dagster says CANCELED.
STATUS_BY_DAGSTER: dict[dg.DagsterRunStatus, str] = {
    dg.DagsterRunStatus.QUEUED: "PENDING",
    dg.DagsterRunStatus.NOT_STARTED: "PENDING",
    dg.DagsterRunStatus.STARTING: "RUNNING",
    dg.DagsterRunStatus.STARTED: "RUNNING",
    dg.DagsterRunStatus.CANCELING: "RUNNING",
    dg.DagsterRunStatus.SUCCESS: "COMPLETED",
    dg.DagsterRunStatus.FAILURE: "FAILED",
    dg.DagsterRunStatus.CANCELED: "CANCELLED",
}

# Training request field → ml_jobs column (training and walk-forward runs read resources.training_request).
_TRAIN_FIELDS = {
    "name": "train_model_name",
    "model_type": "train_model_type",
    "target_var": "train_target_var",
    "target_operator": "train_operator",
    "target_value": "train_value",
    "train_start": "train_start",
    "train_end": "train_end",
    "features": "train_features",
    "phases": "train_phases",
    "params": "train_params",
    "future_minutes": "train_future_minutes",
    "min_percent_change": "train_price_change_percent",
    "direction": "train_target_direction",
}
# Op config field → ml_jobs column, per job type; "request" = read the training request instead.
_FIELDS = {
    "TRAIN": "request",
    "WALK_FORWARD": "request",
    "TEST": {"model": "test_model_id", "test_start": "test_start", "test_end": "test_end"},
    "COMPARE": {"model_a": "compare_model_a_id", "model_b": "compare_model_b_id",
                "test_start": "compare_start", "test_end": "compare_end"},
}
# Where each job type's window goes when the config does not narrow the selected days.
_WINDOW_COLUMNS = {"TRAIN": ("train_start", "train_end"), "WALK_FORWARD": ("train_start", "train_end"),
                   "TEST": ("test_start", "test_end"), "COMPARE": ("compare_start", "compare_end")}
_FAILURE_EVENTS = {dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
# Dagster's wrapper around the user's exception; its cause is the readable part.
_WRAPPER_ERRORS = {"DagsterExecutionStepExecutionError", "DagsterUserCodeExecutionError",
                   "DagsterResourceFunctionError"}


def job_values(instance: dg.DagsterInstance, record: dg.RunRecord) -> dict | None:
    """The ``ml_jobs`` columns a run record gives, or None for a run that is not mirrored."""
    run = record.dagster_run
    job_type = ml_job_type(run.tags)
    status = STATUS_BY_DAGSTER.get(run.status)
    if job_type is None or status is None:
        return None
    values = {
        "job_type": job_type,
        "status": status,
        "created_at": record.create_timestamp,
        "started_at": _from_timestamp(record.start_time),
        **request_fields(job_type, _with_request_defaults(job_type, run.run_config), run.tags),
    }
    if status in TERMINAL_JOB_STATUSES:
        values["completed_at"] = _from_timestamp(record.end_time)
    if status == "COMPLETED":
        values["progress"] = 1.0
    if status == "FAILED":
        values["error_msg"] = failure_message(instance, run.run_id)
    return values


def request_fields(job_type: str, run_config: Mapping[str, Any] | None, tags: Mapping[str, str] | None = None) -> dict:
    """The ``ml_jobs`` request columns of a run, from its run config (and partition tags).

    Training and walk-forward runs read ``resources.training_request.config``; test and compare runs
    read the ``config`` of their op(s) under ``ops`` (``model`` / ``model_a`` / ``model_b`` as an
    id or a name, ``test_start``, ``test_end``). Values are coerced to the column's type, so a
    malformed request, which its run rejects anyway, can never make the mirror write fail. When
    the config gives no window, the selected partition day(s) are the window.
    """
    fields = _FIELDS.get(job_type)
    if fields is None:
        return {}
    run_config = run_config or {}
    if fields == "request":
        config = dict(((run_config.get("resources") or {}).get("training_request") or {}).get("config") or {})
        # Like ml_models: a time-based target has no operator/value, a threshold target no horizon/direction,
        # and known-event labels neither (they read ml_known_events, not target_var's future).
        threshold_fields, horizon_fields = ("target_operator", "target_value"), ("future_minutes",
                                                                                "min_percent_change", "direction")
        if config.get("label_source") == "known_events":
            unused = threshold_fields + horizon_fields
        elif config.get("use_time_based_prediction", True):
            unused = threshold_fields
        else:
            unused = horizon_fields
        for key in unused:
            config.pop(key, None)
        if not config.get("phases"):  # [] means every phase, stored as NULL like ml_models.phases
            config.pop("phases", None)
        fields = _TRAIN_FIELDS
    else:
        config = {}
        for op_config in (run_config.get("ops") or {}).values():
            if isinstance(op_config, Mapping):
                config.update(op_config.get("config") or {})
    out = {}
    for key, column in fields.items():
        value = coerce_column(column, config.get(key))
        if value is not None:
            out[column] = value
    start_column, end_column = _WINDOW_COLUMNS[job_type]
    window = partition_window(tags or {})
    if window is not None:
        out.setdefault(start_column, window[0])
        out.setdefault(end_column, window[1])
    return out


def _with_request_defaults(job_type: str, run_config: Mapping[str, Any] | None) -> dict:
    """``run_config`` with the training request's defaults filled in (a run's config holds only the fields set)."""
    run_config = dict(run_config or {})
    if _FIELDS.get(job_type) != "request":
        return run_config
    resources = run_config.get("resources") or {}
    given = (resources.get("training_request") or {}).get("config") or {}
    return {**run_config, "resources": {**resources, "training_request": {"config": {**request_defaults(), **given}}}}


def partition_window(tags: Mapping[str, str]) -> tuple[dt.datetime, dt.datetime] | None:
    """[first day 00:00, day after the last day) of the run's daily partition(s), if it has valid ones."""
    try:
        start, end = selected_days(tags)
    except RequestValidationError:  # the run itself reports what is wrong with them
        return None
    return start.to_pydatetime(), end.to_pydatetime()


def _from_timestamp(seconds: float | None) -> dt.datetime | None:
    return None if seconds is None else dt.datetime.fromtimestamp(seconds, tz=dt.timezone.utc)


def failure_message(instance: dg.DagsterInstance, run_id: str) -> str | None:
    """A readable reason for a failed run: the user's error first, then the step it failed in.

    Each failed step's error (or, when no step ran, the run's) without Dagster's wrapper types;
    stack traces are left out (they stay in Dagster's event log); cut to MAX_ERROR_CHARS.
    """
    errors, steps, run_message, run_error = [], [], None, None
    for entry in instance.all_logs(run_id, of_type=_FAILURE_EVENTS):
        event = entry.dagster_event
        error = getattr(event.event_specific_data, "error", None)
        if event.event_type == dg.DagsterEventType.STEP_FAILURE:
            steps.append(entry.step_key)
            errors.append(_error_text(error) if error else event.message)
        else:
            run_message, run_error = event.message, error
    if not steps:  # e.g. a resource failed before any step ran, or the run worker died
        errors.append(_error_text(run_error) if run_error is not None else run_message or "run failed")
    text = "\n".join(line for line in errors if line)
    if steps:
        text += f"\n(failed step{'s' if len(steps) > 1 else ''}: {', '.join(steps)})"
    if len(text) > MAX_ERROR_CHARS:
        text = text[: MAX_ERROR_CHARS - 15] + "… (truncated)"
    return text or None


def _error_text(error) -> str:
    """An error and its causes, one message each, without Dagster's wrappers around user code.

    A ``dg.Failure`` is a user message already (``partitions.user_errors_as_failures``): shown without its
    type, and its cause, the same message as the exception it came from, is not repeated.
    """
    parts = []
    while error is not None:
        if not (error.cls_name in _WRAPPER_ERRORS and error.cause is not None):
            # "pkg.module.SomeError: text" → "SomeError: text"
            text = re.sub(r"^(?:\w+\.)+(?=\w+: )", "", error.message.strip())
            if error.cls_name == "Failure":
                text = text.removeprefix("Failure: ")
            if not (parts and text.split(": ", 1)[-1] == parts[-1]):
                parts.append(text)
        error = error.cause
    return "\ncaused by: ".join(parts)
