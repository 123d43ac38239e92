"""Test reports and comparisons of stored models on the daily partitions.

Each reads the cached ``coin_metrics_slice`` of its days and calls the Dagster-free core
(``ml/evaluation.py``); rows go to ``ml_test_results`` / ``ml_comparisons`` through this
capability's IO managers (``io_managers.py``).
"""
import functools
from typing import Optional

import dagster as dg
import pandas as pd
import pydantic
from pydantic import Field

from pump_orchestration.defs.shared.launch import ModelRef, model_config_problems, ready_model, register_launch_check
from pump_orchestration.defs.shared.metadata import (
    check_results,
    check_specs,
    event_metadata,
    metric_values,
    number,
    rounded,
)
from pump_orchestration.defs.shared.partitions import window_asset
from pump_orchestration.defs.shared.progress import report_progress
from pump_orchestration.defs.shared.resources import ModelStoreResource, WarehouseResource
from pump_orchestration.defs.training.assets import fitted_model
from pump_orchestration.vocabulary import WINNER_BY

# Test reports evaluate models trained on other days: lineage to every fitted_model partition.
_ANY_MODEL = dg.AssetDep(fitted_model, partition_mapping=dg.AllPartitionMapping())
_REPORT_CHECKS = {"beats_majority_baseline": True, "enough_positives": False, "test_window_disjoint": False,
                  "not_overfitted": False}


class WindowConfig(dg.Config):
    """An optional narrowing of the selected day(s)."""

    test_start: Optional[str] = Field(
        default=None, description="ISO timestamp; default = start of the first selected day.")
    test_end: Optional[str] = Field(
        default=None, description="ISO timestamp (exclusive); default = end of the last selected day.")

    def window(self, context: dg.AssetExecutionContext) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The test window inside the selected partitions."""
        from pump_orchestration.ml.request import narrow_window

        span = context.partition_time_window
        return narrow_window(pd.Timestamp(span.start), pd.Timestamp(span.end), self.test_start, self.test_end,
                             names=("test_start", "test_end"))


class TestReportConfig(WindowConfig):
    """Which model to test."""

    model: ModelRef = Field(description="ml_models id (e.g. 12) or name of a READY model.")
    min_positives: int = Field(default=10, description="Fewer positive test rows than this fails a (warning) check.")
    threshold: Optional[float] = Field(
        default=None, description="Alert threshold (probability within [0, 1]) the class and event figures are "
                                  "computed at; default = the model's operating point chosen at training "
                                  "(0.5 for models stored before it).")

    @pydantic.field_validator("threshold")
    @classmethod
    def _probability(cls, value: Optional[float]) -> Optional[float]:
        # Checked at launch (defs.shared.launch), so a bad value fails the run before any work.
        if value is not None and not 0.0 <= value <= 1.0:
            raise ValueError(f"must be a probability within [0, 1], got {value}")
        return value


class ComparisonConfig(WindowConfig):
    """Which two models to compare on the same rows."""

    model_a: ModelRef = Field(description="ml_models id (e.g. 12) or name of model A.")
    model_b: ModelRef = Field(description="ml_models id or name of model B (must differ from A).")
    n_bootstrap: int = Field(default=1000, description="Bootstrap resamples for the F1-difference interval.")
    winner_by: Optional[str] = Field(
        default=None, description=f"Test figure that picks the winner (one of {', '.join(WINNER_BY)}; later figures "
                                  "break ties: event_f1, then f1, then roc_auc). Default: event_f1 when both models "
                                  "have time-based targets, else f1. A tie on every figure = no winner.")

    @pydantic.field_validator("winner_by")
    @classmethod
    def _known_rule(cls, value: Optional[str]) -> Optional[str]:
        if value is not None and value not in WINNER_BY:
            raise ValueError(f"unknown rule {value!r}; allowed: {', '.join(WINNER_BY)}")
        return value


# Checked in the run's first step, before any data is loaded (defs.shared.launch).
register_launch_check("TEST", functools.partial(model_config_problems, op="test_report",
                                                config_class=TestReportConfig, model_fields=("model",)))
register_launch_check("COMPARE", functools.partial(model_config_problems, op="model_comparison",
                                                   config_class=ComparisonConfig, model_fields=("model_a", "model_b")))


def _load_model(warehouse: WarehouseResource, model_store: ModelStoreResource, ref: str):
    """A READY, non-deleted model by id or name, its artifact verified by SHA-256 before loading."""
    from pump_orchestration.ml.evaluation import ModelUnderTest

    with warehouse.engine().connect() as conn:
        row, problem = ready_model(conn, ref)
    if problem:  # the launch check found it READY; it changed since
        raise LookupError(problem)
    loaded = model_store.store().load(row["model_file_path"], row["model_sha256"])
    return ModelUnderTest.from_row(row, loaded)


def _test_metadata(test: dict) -> dict:
    return {
        **metric_values({"accuracy": test["accuracy"], "f1": test["f1_score"], "precision": test["precision_score"],
                         "recall": test["recall"], "roc_auc": test["roc_auc"], "mcc": test["mcc"],
                         "simulated_profit_pct": test["simulated_profit_pct"]}),
        "alert_threshold": number(test["alert_threshold"]),
        "num_samples": test["num_samples"],
        "num_positive": test["num_positive"],
        "has_overlap": test["has_overlap"],
        "overlap_note": test["overlap_note"] or "none",
        "accuracy_degradation": number(test["accuracy_degradation"]),
        "is_overfitted": bool(test["is_overfitted"]),
        **event_metadata(test.get("event_metrics")),
    }


def _known_events(warehouse: WarehouseResource, frame: pd.DataFrame, *models) -> Optional[pd.DataFrame]:
    """``ml_known_events`` for the models whose labels come from them (the longest lead of those); else None."""
    from pump_orchestration.warehouse.repository import known_events_for

    leads = [m.label_spec.horizon for m in models if m.label_spec.known_events]
    if not leads:
        return None
    with warehouse.engine().connect() as conn:
        return known_events_for(conn, frame, max(leads))


@window_asset(
    deps=[_ANY_MODEL],
    io_manager_key="ml_test_results_io_manager",
    group_name="evaluation",
    check_specs=check_specs("test_report", _REPORT_CHECKS),
    kinds={"scikitlearn"},
)
def test_report(
    context: dg.AssetExecutionContext,
    config: TestReportConfig,
    coin_metrics_slice: pd.DataFrame,
    warehouse: WarehouseResource,
    model_store: ModelStoreResource,
):
    """A READY model tested on the selected window with labels and features rebuilt exactly as in training."""
    from pump_orchestration.ml.evaluation import evaluate_model
    from pump_orchestration.ml.quality import test_report_checks

    start, end = config.window(context)
    model = _load_model(warehouse, model_store, config.model)
    report_progress(context, warehouse, 0.3, f"testing {model.name} on [{start}, {end})")
    test = evaluate_model(model, coin_metrics_slice, start, end, threshold=config.threshold,
                          known_events=_known_events(warehouse, coin_metrics_slice, model))
    checks = test_report_checks(test, config.min_positives)
    if test["has_overlap"]:
        context.log.warning(test["overlap_note"])
    yield dg.Output(test, metadata={"model_name": model.name, "model_id": model.model_id, **_test_metadata(test)})
    yield from check_results(checks)


@window_asset(
    deps=[_ANY_MODEL],
    io_manager_key="ml_comparisons_io_manager",
    group_name="evaluation",
    kinds={"scikitlearn"},
)
def model_comparison(
    context: dg.AssetExecutionContext,
    config: ComparisonConfig,
    coin_metrics_slice: pd.DataFrame,
    warehouse: WarehouseResource,
    model_store: ModelStoreResource,
) -> dg.Output:
    """Two models scored on exactly the same rows; winner by ``winner_by``, with a paired significance test."""
    from pump_orchestration.ml.evaluation import compare_models
    from pump_orchestration.ml.records import ComparisonOutcome

    start, end = config.window(context)
    a = _load_model(warehouse, model_store, config.model_a)
    b = _load_model(warehouse, model_store, config.model_b)
    report_progress(context, warehouse, 0.3, f"comparing {a.name} with {b.name} on [{start}, {end})")
    result = compare_models(a, b, coin_metrics_slice, start, end, n_bootstrap=config.n_bootstrap,
                            winner_by=config.winner_by, known_events=_known_events(warehouse, coin_metrics_slice, a, b))
    winner = {"a": a.name, "b": b.name, None: "tie"}[result.winner]
    context.log.info(f"winner: {winner}; significance: {result.comparison['significance']}")
    return dg.Output(
        ComparisonOutcome(result, model_a_id=a.model_id, model_b_id=b.model_id),
        metadata={
            "model_a": f"{a.name} (id {a.model_id})",
            "model_b": f"{b.name} (id {b.model_id})",
            "winner": winner,
            "winner_rule": result.comparison["significance"]["rule"],
            "num_samples": result.comparison["num_samples"],
            "rows_dropped": dg.MetadataValue.json(result.rows_dropped),
            "significance": dg.MetadataValue.json(rounded(result.comparison["significance"])),
            "a": dg.MetadataValue.json(rounded({"model": a.name, **{k: result.comparison[f"a_{k}"]
                                                                    for k in ("f1", "precision", "recall", "roc_auc")}})),
            "b": dg.MetadataValue.json(rounded({"model": b.name, **{k: result.comparison[f"b_{k}"]
                                                                    for k in ("f1", "precision", "recall", "roc_auc")}})),
        },
    )
