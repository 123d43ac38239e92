"""What users type and scripts name must not change when the code moves: asset keys, job and sensor names,
and the run-config paths (with their fields) of the launchpad and of GraphQL ``runConfigData``."""
from __future__ import annotations

from pump_orchestration.definitions import defs

ASSET_KEYS = [
    "coin_metrics", "coin_metrics_slice", "engineered_features", "fitted_model", "labelled_dataset",
    "model_comparison", "predictions", "test_report", "walk_forward_evaluation",
]
JOB_NAMES = [
    "compare_models_job", "deliver_webhooks_job", "generate_synthetic_data_job", "import_trades_job",
    "manage_active_models_job", "score_coin_job", "score_coins_job", "test_model_job", "train_model_job",
    "walk_forward_job",
]
SENSOR_NAMES = ["coin_metrics_sensor", "ml_jobs_sensor", "webhook_delivery_sensor"]
ASSET_CHECKS = {
    "fitted_model": ["beats_majority_baseline", "beats_rule_baseline", "no_severe_overfitting"],
    "test_report": ["beats_majority_baseline", "enough_positives", "not_overfitted", "test_window_disjoint"],
}
TRAINING_REQUEST_FIELDS = [
    "calibration", "cv_splits", "description", "direction", "feature_engineering_windows", "features", "fee_pct",
    "future_minutes", "imbalance", "label_mode", "label_source", "lead_minutes", "max_false_alarms_per_coin_day", "min_percent_change", "model_type", "n_jobs", "name", "params",
    "phases", "random_state", "target_operator", "target_value", "target_var", "threshold_objective", "train_end",
    "train_start", "use_engineered_features", "use_smote", "use_time_based_prediction", "use_timeseries_split",
]
#: job name -> run-config path -> the fields under it.
RUN_CONFIG_PATHS = {
    "train_model_job": {"resources.training_request.config": TRAINING_REQUEST_FIELDS},
    "walk_forward_job": {
        "resources.training_request.config": TRAINING_REQUEST_FIELDS,
        "ops.walk_forward_evaluation.config": ["n_bootstrap", "step_hours", "test_hours", "train_hours"],
    },
    "test_model_job": {"ops.test_report.config": ["min_positives", "model", "test_end", "test_start", "threshold"]},
    "compare_models_job": {"ops.model_comparison.config": ["model_a", "model_b", "n_bootstrap", "test_end",
                                                           "test_start", "winner_by"]},
    "generate_synthetic_data_job": {"ops.generate_synthetic_coin_metrics.config": ["hours", "live", "n_coins",
                                                                                  "pump_share", "seed", "start"]},
    "import_trades_job": {"ops.import_trades_into_coin_metrics.config": ["interval_seconds", "path"]},
    "score_coins_job": {"ops.predictions.config": ["batch_key"]},
    "score_coin_job": {"ops.score_coin.config": ["at", "coin", "models"]},
    "manage_active_models_job": {"ops.manage_active_models.config": ["action", "force", "model", "name",
                                                                     "threshold"]},
}


def _fields_at(job_name: str, path: str) -> list[str]:
    config_type = defs.resolve_job_def(job_name).run_config_schema.config_type
    for part in path.split("."):
        config_type = config_type.fields[part].config_type
    return sorted(config_type.fields)


def test_asset_keys_jobs_sensors_and_checks_are_the_published_ones():
    graph = defs.get_repository_def().asset_graph
    assert sorted(key.to_user_string() for key in graph.get_all_asset_keys()) == ASSET_KEYS
    assert sorted(j.name for j in defs.resolve_all_job_defs() if not j.name.startswith("__")) == JOB_NAMES
    assert sorted(s.name for s in defs.sensors) == SENSOR_NAMES
    checks = {}
    for check_key in graph.asset_check_keys:
        checks.setdefault(check_key.asset_key.to_user_string(), []).append(check_key.name)
    assert {asset: sorted(names) for asset, names in checks.items()} == ASSET_CHECKS


def test_run_config_paths_users_type_are_unchanged():
    for job_name, paths in RUN_CONFIG_PATHS.items():
        for path, fields in paths.items():
            assert _fields_at(job_name, path) == fields, (job_name, path)
