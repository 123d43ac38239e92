"""Launch mistakes are caught in a run's first step, before any data is loaded, and read as one line.

Real in-process runs of the code location's jobs on a SQLite warehouse with synthetic coin_metrics;
the run's own failure event and the ``ml_jobs`` mirror both show the user's error first.
"""
import datetime as dt

import dagster as dg
import pandas as pd
import pytest

from pump_orchestration.data.synthetic import generate_coin_metrics
from pump_orchestration.defs.ml_jobs.mirror import failure_message
from pump_orchestration.defs.shared.launch import selected_days
from pump_orchestration.defs.shared.tags import PARTITION_RANGE_TAGS
from pump_orchestration.ml.request import RequestValidationError
from pump_orchestration.testing.locations import failure_text
from pump_orchestration.warehouse.coin_metrics import write_coin_metrics

DAY = "2025-09-01"
REQUEST = {"name": "m1", "future_minutes": 10, "min_percent_change": 30.0, "label_mode": "within", "cv_splits": 3,
           "params": {"n_estimators": 20}, "train_end": f"{DAY}T05:00:00Z"}
WINDOW = {"test_start": f"{DAY}T05:00:00Z", "test_end": f"{DAY}T08:00:00Z"}


@pytest.fixture
def market(location, warehouse_engine):
    metrics, _ = generate_coin_metrics(n_coins=120, start=f"{DAY}T00:00:00Z", hours=8, seed=3)
    write_coin_metrics(warehouse_engine, metrics)
    return location


def _nothing_loaded(result) -> bool:
    return result.get_step_success_events() == [] and not result.asset_materializations_for_node("coin_metrics_slice")


@pytest.mark.parametrize("partition, tags, changes, message", [
    (None, None, {}, "Invalid training request: partition: no day selected; select a day"),
    # A key as GraphQL passes it (a tag); execute_in_process would refuse it itself. (A key that is no date
    # at all fails in Dagster's run creation, before any run exists: test_partitions covers its message.)
    (None, {"dagster/partition": "2099-01-01"}, {}, "Invalid training request: partition: 2099-01-01 is in the future"),
    (None, dict(zip(PARTITION_RANGE_TAGS, ("2025-09-03", "2025-09-01"))), {},
     "Invalid training request: partition range: 2025-09-03 … 2025-09-01 is reversed"),
    (DAY, None, {"train_end": "2025-09-03T00:00:00Z"},
     "Invalid training request: train_end 2025-09-03T00:00:00+00:00 lies outside the selected partitions"),
    ("2025-09-05", None, {"train_end": None},
     "Invalid training request: empty window: no coin_metrics rows between 2025-09-05T00:00:00+00:00 and "
     "2025-09-06T00:00:00+00:00; coin_metrics holds rows from 2025-09-01 00:0"),
    (DAY, None, {"label_source": "known_events"},
     "Invalid training request: label_source: known_events: ml_known_events holds no event between "
     "2025-09-01T00:00:00+00:00 and 2025-09-01T05:00:00+00:00; import the pumps of that period"),
])
def test_training_launch_mistakes_fail_before_any_data_is_loaded(market, partition, tags, changes, message):
    result = market.train({**REQUEST, **changes}, partition=partition, tags=tags)
    assert not result.success and _nothing_loaded(result)
    assert message in failure_text(result)
    assert market.models() == []


def test_ids_as_numbers_and_every_evaluation_mistake_named_before_loading(market):
    trained = market.train(REQUEST)
    assert trained.success, failure_text(trained)
    [model] = market.models()

    # An id given as a number (YAML `model: 1`) is accepted where a model is named.
    tested = market.run("test_model_job", {"ops": {"test_report": {"config": {"model": model["id"], **WINDOW}}}},
                        partition=DAY)
    assert tested.success, failure_text(tested)
    activated = market.run("manage_active_models_job",
                           {"ops": {"manage_active_models": {"config": {"action": "activate", "model": model["id"], "force": True}}}})
    assert activated.success, failure_text(activated)

    cases = [
        ("test_model_job", "2025-09-05", {"test_report": {"config": {"model": model["id"]}}},
         "Invalid test request: empty window: no coin_metrics rows between 2025-09-05T00:00:00+00:00 and "
         "2025-09-06T00:00:00+00:00"),
        ("test_model_job", DAY, {"test_report": {"config": {"model": 999}}},
         "Invalid test request: model: no model with id or name '999'"),
        ("test_model_job", DAY, {"test_report": {"config": {"model": [1]}}},
         "Invalid test request: model: expected an ml_models id (e.g. 12) or name, got [1]"),
        ("compare_models_job", DAY, {"model_comparison": {"config": {"model_a": model["id"], "model_b": "m1"}}},
         f"Invalid comparison: model_b: must differ from model_a (both name model {model['id']} 'm1')"),
        ("walk_forward_job", DAY, {"walk_forward_evaluation": {"config": {"train_hours": 20, "test_hours": 6}}},
         "Invalid walk-forward: train_hours + test_hours (20.0 + 6.0 h) do not fit in the selected days"),
    ]
    for job, partition, ops, message in cases:
        run_config = {"ops": ops}
        if job == "walk_forward_job":
            run_config["resources"] = {"training_request": {"config": {**REQUEST, "name": "wf"}}}
        result = market.run(job, run_config, partition=partition)
        assert not result.success and _nothing_loaded(result), job
        assert message in failure_text(result), (job, failure_text(result))


def test_the_run_failure_and_ml_jobs_error_msg_show_the_users_error_first(market):
    with dg.instance_for_test() as instance:
        result = market.run("test_model_job", {"ops": {"test_report": {"config": {"model": "nope", **WINDOW}}}},
                            partition=DAY, instance=instance)
        assert not result.success
        [step_failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
        error = step_failure.event_specific_data.error
        # A Failure (no "DagsterExecutionStepExecutionError … caused by"); the original error and its
        # stack trace stay attached as the cause, in the event log.
        assert error.cls_name == "Failure"
        assert error.message.strip().endswith("Invalid test request: model: no model with id or name 'nope'; "
                                              "give the id or name of a READY model in ml_models")
        assert error.cause.cls_name == "RequestValidationError" and error.cause.stack
        assert failure_message(instance, result.run_id) == (
            "Invalid test request: model: no model with id or name 'nope'; give the id or name of a READY model "
            "in ml_models\n(failed step: coin_metrics_slice)")


# ---------------------------------------------------------------- the selected days alone

TODAY = dt.date(2025, 9, 10)
RANGE = PARTITION_RANGE_TAGS


@pytest.mark.parametrize("tags, days", [
    ({"dagster/partition": "2025-09-02"}, ("2025-09-02", "2025-09-03")),
    ({RANGE[0]: "2025-09-02", RANGE[1]: "2025-09-04"}, ("2025-09-02", "2025-09-05")),
    ({RANGE[0]: "2025-09-10", RANGE[1]: "2025-09-10"}, ("2025-09-10", "2025-09-11")),  # today: data so far
])
def test_a_day_or_a_range_is_its_utc_span(tags, days):
    assert selected_days(tags, TODAY) == tuple(pd.Timestamp(d, tz="UTC") for d in days)


@pytest.mark.parametrize("tags, problem", [
    ({}, "partition: no day selected; select a day (e.g. 2025-09-09) or a range of days"),
    ({"dagster/partition": "2025-13-01"}, "partition: '2025-13-01' is not a day; use YYYY-MM-DD, e.g. 2025-09-09"),
    ({"dagster/partition": "1 Sep"}, "partition: '1 Sep' is not a day"),
    ({"dagster/partition": "2030-01-01"}, "partition: 2030-01-01 is in the future (today is 2025-09-10 UTC), "
                                          "so it has no data yet; select a past day"),
    ({"dagster/partition": "2024-01-01"}, "partition: 2024-01-01 is before the first day 2025-09-01"),
    ({RANGE[0]: "2025-09-04", RANGE[1]: "2025-09-02"}, "partition range: 2025-09-04 … 2025-09-02 is reversed; "
                                                       "the first day must not come after the last"),
    ({RANGE[0]: "2025-09-04"}, "partition range: no day selected"),
])
def test_each_mistake_is_one_line_naming_the_field_and_the_fix(tags, problem):
    with pytest.raises(RequestValidationError) as caught:
        selected_days(tags, TODAY)
    [line] = caught.value.problems
    assert line.startswith(problem) and "\n" not in str(caught.value)
