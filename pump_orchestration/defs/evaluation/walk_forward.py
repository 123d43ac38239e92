"""Walk-forward evaluation: backfill a range of days and judge a model family over time."""
import dagster as dg
import pandas as pd
from pydantic import Field

from pump_orchestration import settings
from pump_orchestration.defs.shared.launch import op_config, register_launch_check
from pump_orchestration.defs.shared.metadata import metrics_chart, metrics_table, number, sparklines
from pump_orchestration.defs.shared.partitions import window_asset
from pump_orchestration.defs.shared.progress import report_progress
from pump_orchestration.defs.shared.resources import WarehouseResource
from pump_orchestration.defs.training.resources import TrainingRequestResource

_CHART_SERIES = ["f1", "precision", "recall", "roc_auc"]


class WalkForwardConfig(dg.Config):
    """Window lengths; the model settings come from resources.training_request (its name is the prefix)."""

    train_hours: float = Field(default=24.0, description="Length of each trailing training window in hours.")
    test_hours: float = Field(default=24.0, description="Length of each test window (right after training) in hours.")
    step_hours: float = Field(default=24.0, description="How far the windows move forward each step, in hours.")
    n_bootstrap: int = Field(default=1000, description="Bootstrap resamples for each comparison's F1 interval.")


def _launch_problems(run_config, days, engine):
    """A walk-forward run's launch check: the training request, windows that fit, their model names free."""
    import dataclasses

    from pump_orchestration.defs.training.resources import request_from_run_config, request_problems
    from pump_orchestration.ml.pipeline import plan_windows, window_model_name
    from pump_orchestration.ml.request import RequestValidationError
    from pump_orchestration.warehouse import repository

    # The windows replace train_start/train_end, and each window's model gets its own name.
    request = dataclasses.replace(request_from_run_config(run_config), train_start=None, train_end=None)
    problems = request_problems(request, engine, check_name=False)
    config, config_problems = op_config(run_config, "walk_forward_evaluation", WalkForwardConfig)
    problems += config_problems
    if config is not None:
        try:
            windows = plan_windows(*days, train_hours=config.train_hours, test_hours=config.test_hours,
                                   step_hours=config.step_hours)
        except RequestValidationError as exc:
            problems += exc.problems
        else:
            with engine.connect() as conn:
                taken = [name for name in (window_model_name(request.name, w) for w in windows)
                         if repository.model_name_exists(conn, name)]
            if taken:
                problems.append(f"name: walk-forward models {taken} already exist; choose another name prefix")
    return problems, days


register_launch_check("WALK_FORWARD", _launch_problems)


@window_asset(
    io_manager_key="ml_walk_forward_io_manager",
    group_name="evaluation",
    kinds={"scikitlearn"},
)
def walk_forward_evaluation(
    context: dg.AssetExecutionContext,
    config: WalkForwardConfig,
    coin_metrics_slice: pd.DataFrame,
    training_request: TrainingRequestResource,
    warehouse: WarehouseResource,
) -> dg.Output:
    """Train on each window's trailing period, test on the next, compare each model with the previous one.

    Select a range of days (a backfill runs once over the range): the raw slice is loaded
    once and the past-only features are built once for every window; only labels
    (which must stop at each boundary) and model fits are per window.
    """
    import dataclasses

    from pump_orchestration.ml.pipeline import plan_windows, walk_forward
    from pump_orchestration.warehouse import repository

    request = training_request.to_request()
    span = context.partition_time_window
    windows = plan_windows(pd.Timestamp(span.start), pd.Timestamp(span.end), train_hours=config.train_hours,
                           test_hours=config.test_hours, step_hours=config.step_hours)
    # The launch check (window_asset) has verified the windows fit and their model names are free.
    with warehouse.engine().connect() as conn:
        defaults = repository.get_model_type_defaults(conn, request.model_type)
        known_events = (repository.known_events_for(conn, coin_metrics_slice, request.label_spec.horizon)
                        if request.label_spec.known_events else None)
    outcomes, skipped, timings = walk_forward(
        coin_metrics_slice, dataclasses.replace(request, train_start=None, train_end=None), windows,
        params={**defaults, **request.params}, n_bootstrap=config.n_bootstrap, known_events=known_events,
        progress=lambda fraction, message: report_progress(context, warehouse, 0.1 + 0.8 * fraction, message),
    )
    rows = [{
        "test_start": o.window.test_start.strftime("%Y-%m-%d %H:%M"),
        "model": o.trained.request.name,
        "rows": o.test["num_samples"],
        "positives": o.test["num_positive"],
        "f1": o.test["f1_score"], "precision": o.test["precision_score"], "recall": o.test["recall"],
        "roc_auc": o.test["roc_auc"], "profit_pct": o.test["simulated_profit_pct"],
        "pumps caught": ("–" if not o.test.get("event_metrics") else
                         f"{o.test['event_metrics']['detected_before_peak']}/{o.test['event_metrics']['events']}"),
        "false/coin-day": (o.test.get("event_metrics") or {}).get("false_alerts_per_coin_day"),
        "threshold": o.test["alert_threshold"],
        "beats_rule": _beats_rule(o.trained),
        "vs_previous": ("–" if o.comparison is None else
                        {"a": "better", "b": "worse", None: "tie"}[o.comparison.winner]
                        + (" (significant)" if o.comparison.comparison["significance"]["significant"] else "")),
    } for o in outcomes]
    chart = metrics_chart(rows, "test_start", _CHART_SERIES,
                          settings.data_dir() / "reports" / f"walk_forward_{context.run_id}.png")
    for skip in skipped:
        context.log.warning(f"window testing from {skip['test_start']} skipped: {skip['reason']}")
    fitting = sum(o.trained.result.fitting_seconds for o in outcomes)
    return dg.Output(
        outcomes,
        metadata={
            "windows": len(outcomes),
            "metrics_trend": dg.MetadataValue.md(sparklines(rows, _CHART_SERIES)),
            "skipped_windows": dg.MetadataValue.json(skipped),
            "metrics_per_window": dg.MetadataValue.md(metrics_table(
                rows, ["test_start", "model", "rows", "positives", "f1", "precision", "recall", "roc_auc",
                       "profit_pct", "pumps caught", "false/coin-day", "threshold", "beats_rule", "vs_previous"])),
            "chart": dg.MetadataValue.md(chart),
            "mean_f1": number(pd.Series([r["f1"] for r in rows]).mean()),
            "stage_seconds": dg.MetadataValue.json({**timings, "model_fitting": round(fitting, 3)}),
        },
    )



def _beats_rule(trained) -> str:
    """The window model's ``beats_rule_baseline`` gate as a table cell."""
    from pump_orchestration.ml.quality import rule_baseline_check

    comparison = trained.result.rule_baseline
    if not comparison["applicable"]:
        return "n/a"
    passed = rule_baseline_check(comparison).passed
    return f"{'yes' if passed else 'no'} ({comparison['model_score'] or 0:.2f} vs {comparison['rule_score'] or 0:.2f})"
