"""The training request's run config is derived from the core dataclass: same fields, types, defaults, texts."""
import dataclasses
import typing

import pytest

from pump_orchestration.defs.shared.resources import WarehouseResource
from pump_orchestration.defs.training.resources import TrainingRequestResource
from pump_orchestration.ml.request import TrainingRequest, request_defaults


def test_every_request_field_has_its_config_field_with_the_same_default_and_description():
    config_fields = {n: f for n, f in TrainingRequestResource.model_fields.items() if n != "warehouse"}
    core_fields = {f.name: f for f in dataclasses.fields(TrainingRequest)}
    assert list(config_fields) == list(core_fields)
    defaults = request_defaults()
    for name, field in config_fields.items():
        assert field.description == core_fields[name].metadata["doc"] and field.description
        if name in defaults:
            assert field.get_default(call_default_factory=True) == defaults[name], name
        else:
            assert field.is_required(), name


def test_config_types_are_the_core_types_in_run_config_form():
    hints = typing.get_type_hints(TrainingRequest)
    assert TrainingRequestResource.model_fields["features"].annotation == list[str]
    assert hints["features"] == tuple[str, ...]
    assert TrainingRequestResource.model_fields["target_value"].annotation == typing.Optional[float]
    assert TrainingRequestResource.model_fields["cv_splits"].annotation is int


@pytest.mark.parametrize("given", [{}, {"features": ["volume_sol"], "phases": [1], "params": {"max_depth": 3},
                                        "use_time_based_prediction": False, "target_operator": ">",
                                        "target_value": 2.5}])
def test_to_request_round_trips_into_the_core_request(given):
    resource = TrainingRequestResource(name="m", warehouse=WarehouseResource(), **given)
    expected = TrainingRequest(name="m", **{k: tuple(v) if isinstance(v, list) else v for k, v in given.items()})
    assert resource.to_request() == expected
