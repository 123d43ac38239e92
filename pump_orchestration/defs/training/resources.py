"""The training request given at launch (``resources.training_request.config``).

Its fields, types, defaults and launchpad descriptions are derived from the core's
``TrainingRequest`` dataclass, which declares them once (tuples become lists in run config).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Mapping, Optional

import dagster as dg
import pydantic
from pydantic import Field

import pandas as pd

from pump_orchestration import settings
from pump_orchestration.defs.shared.launch import register_launch_check
from pump_orchestration.defs.shared.resources import WarehouseResource
from pump_orchestration.ml.request import RequestValidationError, TrainingRequest, resolve_window, validate_request


class _TrainingRequestBase(dg.ConfigurableResource):
    """A model-training request, filled in on the launchpad or in GraphQL runConfigData.

    The run checks it against the warehouse in its first step, before any data is loaded
    (defs/shared/launch.py), so a bad field fails the run at once with a message naming it.
    (Plain text: the UI shows this docstring as the resource's description.)
    """

    def to_request(self) -> TrainingRequest:
        """The core request object."""
        return request_from_config({f.name: getattr(self, f.name) for f in dataclasses.fields(TrainingRequest)})


def request_from_config(config: Mapping[str, Any]) -> TrainingRequest:
    """The core request of ``resources.training_request.config`` (lists become tuples; unset fields take defaults)."""
    return TrainingRequest(**{key: tuple(value) if isinstance(value, list) else value
                              for key, value in config.items()})


def request_from_run_config(run_config: Mapping[str, Any]) -> TrainingRequest:
    """The core request in a run's config (``resources.training_request.config``)."""
    resources = run_config.get("resources") or {}
    return request_from_config((resources.get("training_request") or {}).get("config") or {})


def _training_launch_problems(run_config: Mapping[str, Any], days: tuple[pd.Timestamp, pd.Timestamp], engine):
    """A training run's launch check: the request, and its train_start/train_end inside the selected days."""
    request = request_from_run_config(run_config)
    problems = request_problems(request, engine)
    if any(p.startswith(("train_start", "train_end")) for p in problems):
        return problems, days  # already named; the window cannot be placed
    try:
        window = resolve_window(request, *days)
    except RequestValidationError as exc:
        return problems + exc.problems, days
    return (problems or _known_event_problems(request, window, engine)), window


def _known_event_problems(request: TrainingRequest, window: tuple[pd.Timestamp, pd.Timestamp], engine) -> list[str]:
    """A ``label_source: known_events`` window without any known event would label every row 0.

    Any coin's event counts here (the window's coins are known only after loading, where
    ``require_known_events`` checks them again).
    """
    if not request.label_spec.known_events:
        return []
    from pump_orchestration.warehouse.repository import load_known_events

    start, end = window
    with engine.connect() as conn:
        if not load_known_events(conn, start, end).empty:
            return []
    return [f"label_source: known_events: ml_known_events holds no event between {start.isoformat()} and "
            f"{end.isoformat()}; import the pumps of that period with 'pump-orchestration import-events FILE.csv' "
            "or choose another window"]


def request_problems(request: TrainingRequest, engine, *, check_name: bool = True) -> list[str]:
    """Every problem of ``request`` against the warehouse (columns, phases, the name still free), one line each."""
    from sqlalchemy import select

    from pump_orchestration.warehouse import repository
    from pump_orchestration.warehouse.coin_metrics import available_columns
    from pump_orchestration.warehouse.schema import ref_coin_phases

    with engine.connect() as conn:
        phase_ids = [row[0] for row in conn.execute(select(ref_coin_phases.c.phase_id))]
        name_taken = check_name and bool(request.name) and repository.model_name_exists(conn, request.name)
    try:
        validate_request(request, available_columns=available_columns(engine), phase_ids=phase_ids,
                         max_window_minutes=settings.feature_lookback_minutes())
    except RequestValidationError as exc:
        problems = list(exc.problems)
    else:
        problems = []
    if name_taken:
        problems.append(f"name: a model named {request.name!r} already exists; choose another name")
    return problems


def _config_type(annotation: Any) -> Any:
    """The run-config type of a request field: ``tuple[X, ...]`` → ``list[X]``, ``X | None`` → ``Optional[X]``."""
    origin = typing.get_origin(annotation)
    if origin is tuple:
        return list[typing.get_args(annotation)[0]]
    if origin in (typing.Union, types.UnionType):
        inner = [a for a in typing.get_args(annotation) if a is not type(None)]
        return Optional[_config_type(inner[0])]
    return annotation


def _config_fields() -> dict[str, tuple[Any, Any]]:
    hints = typing.get_type_hints(TrainingRequest)
    out = {}
    for f in dataclasses.fields(TrainingRequest):
        doc = f.metadata["doc"]
        if f.default is not dataclasses.MISSING:
            default = list(f.default) if isinstance(f.default, tuple) else f.default
            out[f.name] = (_config_type(hints[f.name]), Field(default=default, description=doc))
        elif f.default_factory is not dataclasses.MISSING:
            out[f.name] = (_config_type(hints[f.name]), Field(default_factory=f.default_factory, description=doc))
        else:
            out[f.name] = (_config_type(hints[f.name]), Field(description=doc))
    return out


# The warehouse dependency is declared with the fields: Dagster resolves ResourceDependency annotations
# of the class it creates, not ones inherited from a base.
TrainingRequestResource = pydantic.create_model(
    "TrainingRequestResource", __base__=_TrainingRequestBase, __module__=__name__,
    warehouse=(dg.ResourceDependency[WarehouseResource], ...), **_config_fields())
TrainingRequestResource.__doc__ = _TrainingRequestBase.__doc__
register_launch_check("TRAIN", _training_launch_problems)
