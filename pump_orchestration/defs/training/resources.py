"""The training request given at launch (``resources.training_request.config``).

Its fields, types, defaults and launchpad descriptions are derived from the core's
``TrainingRequest`` dataclass, which declares them once (tuples become lists in run config).
"""
from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, Optional

import dagster as dg
import pydantic
from pydantic import Field

from pump_orchestration import settings
from pump_orchestration.defs.shared.resources import WarehouseResource
from pump_orchestration.ml.request import RequestValidationError, TrainingRequest, validate_request


class _TrainingRequestBase(dg.ConfigurableResource):
    """A model-training request, filled in on the launchpad or in GraphQL ``runConfigData``.

    It is validated against the warehouse when the run starts, before any step runs,
    so a bad field fails the run at once with a message naming it.
    """

    def to_request(self) -> TrainingRequest:
        """The core request object."""
        values = {}
        for f in dataclasses.fields(TrainingRequest):
            value = getattr(self, f.name)
            values[f.name] = tuple(value) if isinstance(value, list) else value
        return TrainingRequest(**values)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        """Validate every field against the warehouse before any step of the run executes."""
        from sqlalchemy import select

        from pump_orchestration.warehouse import repository
        from pump_orchestration.warehouse.coin_metrics import available_columns
        from pump_orchestration.warehouse.schema import ref_coin_phases

        request = self.to_request()
        engine = self.warehouse.engine()
        with engine.connect() as conn:
            phase_ids = [row[0] for row in conn.execute(select(ref_coin_phases.c.phase_id))]
            name_taken = repository.model_name_exists(conn, request.name)
        try:
            validate_request(
                request,
                available_columns=available_columns(engine),
                phase_ids=phase_ids,
                max_window_minutes=settings.feature_lookback_minutes(),
            )
        except RequestValidationError as exc:
            problems = list(exc.problems)
        else:
            problems = []
        if name_taken:
            problems.append(f"name: a model named {request.name!r} already exists; choose another name")
        if problems:
            raise RequestValidationError(problems)


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
