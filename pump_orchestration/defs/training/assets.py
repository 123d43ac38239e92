"""Training chain on daily windows: coin_metrics_slice → labelled dataset → engineered features → fitted model.

Each asset is a thin wrapper around the Dagster-free core in ``pump_orchestration.ml``;
the request comes from the ``training_request`` resource filled in at launch.
"""

import time

import dagster as dg
import pandas as pd

from pump_orchestration.defs.shared.metadata import (
    calibration_metadata,
    check_results,
    check_specs,
    checks_record,
    metric_values,
    metrics_table,
    number,
    rounded,
    with_stage,
)
from pump_orchestration.defs.shared.partitions import partition_window, window_asset
from pump_orchestration.defs.shared.progress import report_progress
from pump_orchestration.defs.shared.resources import WarehouseResource
from pump_orchestration.defs.training.resources import TrainingRequestResource


def _check_fingerprint(df: pd.DataFrame, request, asset_name: str) -> None:
    # Cached intermediates depend on the request; never train on ones built for another request.
    built_for = df.attrs.get("request_fingerprint")
    if built_for != request.fingerprint():
        raise ValueError(
            f"{asset_name} for this window was built for a different request (labels/features differ); "
            "materialize labelled_dataset, engineered_features and fitted_model together in one run"
        )


@window_asset(
    io_manager_key="dataset_io_manager",
    group_name="training",
    kinds={"pandas", "parquet"},
)
def labelled_dataset(
    context: dg.AssetExecutionContext, coin_metrics_slice: pd.DataFrame, training_request: TrainingRequestResource
) -> dg.Output[pd.DataFrame]:
    """The slice with the request's label per row (per coin, by time; NaN where the horizon is not covered).

    Only rows before the window end are used, so no label looks past train_end.
    """
    from pump_orchestration.ml.dataset import LABEL
    from pump_orchestration.ml.pipeline import label_frame
    from pump_orchestration.ml.request import resolve_window

    request = training_request.to_request()
    start, end = resolve_window(request, *partition_window(context))
    t0 = time.perf_counter()
    known_events = None
    if request.label_spec.known_events:
        from pump_orchestration.ml.dataset import require_known_events
        from pump_orchestration.warehouse.repository import known_events_for

        with training_request.warehouse.engine().connect() as conn:
            known_events = known_events_for(conn, coin_metrics_slice, request.label_spec.horizon)
        require_known_events(known_events, coin_metrics_slice["mint"].unique(), start, end)
    df = label_frame(coin_metrics_slice, request, end, known_events)
    seconds = time.perf_counter() - t0
    in_window = df["timestamp"] >= start
    window_labels = df.loc[in_window, LABEL]
    balance = {
        "rows_in_window": int(in_window.sum()),
        "labelled": int(window_labels.notna().sum()),
        "unlabelled": int(window_labels.isna().sum()),
        "positive": int((window_labels == 1).sum()),
        "negative": int((window_labels == 0).sum()),
    }
    df.attrs = with_stage(
        {**coin_metrics_slice.attrs, "request_fingerprint": request.fingerprint(), "train_start": start.isoformat(),
         "train_end": end.isoformat(), "label_counts": balance},
        "labels", seconds,
    )
    report_progress(context, training_request.warehouse, 0.3, f"labels: {balance}")
    return dg.Output(df, metadata={**balance, "label_seconds": round(seconds, 3), "model_name": request.name})


@window_asset(
    io_manager_key="dataset_io_manager",
    group_name="training",
    kinds={"pandas", "parquet"},
)
def engineered_features(
    context: dg.AssetExecutionContext, labelled_dataset: pd.DataFrame, training_request: TrainingRequestResource
) -> dg.Output[pd.DataFrame]:
    """Model inputs (base columns + engineered features from each coin's past) for labelled rows of the window."""
    from pump_orchestration.ml.pipeline import feature_frame

    request = training_request.to_request()
    _check_fingerprint(labelled_dataset, request, "labelled_dataset")
    start = pd.Timestamp(labelled_dataset.attrs["train_start"])
    end = pd.Timestamp(labelled_dataset.attrs["train_end"])
    t0 = time.perf_counter()
    out, feature_names, skipped, stats = feature_frame(labelled_dataset, request, start, end)
    seconds = time.perf_counter() - t0
    out.attrs = with_stage(
        {**labelled_dataset.attrs, "feature_names": feature_names, "skipped_features": skipped,
         "dataset_stats": stats},
        "features", seconds,
    )
    for name, reason in skipped.items():
        context.log.warning(f"feature {name} skipped: {reason}")
    report_progress(context, training_request.warehouse, 0.4,
                    f"{len(feature_names)} inputs for {len(out):,} rows; {stats}")
    return dg.Output(out, metadata={
        "num_features": len(feature_names),
        "features": dg.MetadataValue.json(feature_names),
        "skipped_features": dg.MetadataValue.json(skipped),
        "rows_used": stats["rows_used"],
        "rows_dropped_non_finite": stats["rows_dropped_non_finite"],
        "feature_seconds": round(seconds, 3),
    })


def _importance_markdown(importance: dict, top: int = 20) -> str:
    lines = ["| feature | importance |", "|---|---|"]
    lines += [f"| {name} | {value:.4f} |" for name, value in list(importance.items())[:top]]
    return "\n".join(lines)


@window_asset(
    io_manager_key="ml_models_io_manager",
    group_name="training",
    check_specs=check_specs("fitted_model", {"beats_majority_baseline": True, "no_severe_overfitting": False,
                                             "beats_rule_baseline": False}),
    kinds={"scikitlearn", "xgboost"},
)
def fitted_model(
    context: dg.AssetExecutionContext,
    engineered_features: pd.DataFrame,
    training_request: TrainingRequestResource,
    warehouse: WarehouseResource,
):
    """A classifier trained on the window with order-respecting CV; stored as an ml_models row plus artifact.

    Its quality gates (beats the majority baseline: blocking; no severe overfitting; beats the
    volume/price rule on the out-of-fold rows: not blocking, but activation refuses a model that
    fails it unless forced) are asset checks and are also stored with the model for live scoring to consult.
    """
    from pump_orchestration.ml.dataset import FUTURE_CHANGE, LABEL, feature_columns
    from pump_orchestration.ml.pipeline import fit_request
    from pump_orchestration.ml.quality import model_checks
    from pump_orchestration.warehouse import repository

    request = training_request.to_request()
    _check_fingerprint(engineered_features, request, "engineered_features")
    attrs = engineered_features.attrs
    with warehouse.engine().connect() as conn:
        defaults = repository.get_model_type_defaults(conn, request.model_type)
        # The pumps the operating point and the gate count: the same events that labelled the rows.
        known_events = (repository.known_events_for(conn, engineered_features, request.label_spec.horizon)
                        if request.label_spec.known_events else None)
    trained = fit_request(
        feature_columns(engineered_features, attrs["feature_names"]),  # views: no second matrix while fitting
        engineered_features[LABEL],
        engineered_features["timestamp"],
        engineered_features[FUTURE_CHANGE],
        request,
        params={**defaults, **request.params},
        train_start=pd.Timestamp(attrs["train_start"]),
        train_end=pd.Timestamp(attrs["train_end"]),
        dataset_stats=attrs.get("dataset_stats", {}),
        skipped_features=attrs.get("skipped_features", {}),
        stage_seconds=attrs.get("stage_seconds", {}),
        progress=lambda fraction, message: report_progress(context, warehouse, 0.4 + 0.55 * fraction, message),
        mints=engineered_features["mint"],
        known_events=known_events,
    )
    result = trained.result
    checks = model_checks(result.metrics, result.cv_overfitting_gap, result.rule_baseline)
    trained.quality_checks = checks_record(checks)
    metadata = {
        "model_name": request.name,
        "model_type": request.model_type,
        "train_window": f"[{attrs['train_start']}, {attrs['train_end']})",
        "rows_used": int(len(engineered_features)),
        **metric_values(result.metrics),
        "metrics": dg.MetadataValue.json(rounded(result.metrics)),
        "cv_scores": dg.MetadataValue.json(rounded(result.cv_scores or {})),
        "cv_overfitting_gap": number(result.cv_overfitting_gap),
        "feature_importance": dg.MetadataValue.md(_importance_markdown(result.feature_importance)),
        "label_balance": dg.MetadataValue.json(result.label_balance),
        "resampling": dg.MetadataValue.json(result.resampling),
        "split": dg.MetadataValue.json(result.split),
        "alert_threshold": number(result.operating_point["threshold"]),
        "operating_point": dg.MetadataValue.json({k: v for k, v in result.operating_point.items() if k != "candidates"}),
        "threshold_candidates": dg.MetadataValue.md(metrics_table(
            result.operating_point["candidates"], list(result.operating_point["candidates"][0]))),
        "rule_baseline": dg.MetadataValue.json(result.rule_baseline),
        **calibration_metadata(result.calibration),
        "stage_seconds": dg.MetadataValue.json(trained.stage_seconds),
    }
    yield dg.Output(trained, metadata=metadata)
    yield from check_results(checks)
