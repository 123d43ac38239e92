"""Jobs of evaluation: test one model, compare two, or walk forward over a range of days."""
from pump_orchestration.defs.data.assets import coin_metrics_slice
from pump_orchestration.defs.evaluation.assets import model_comparison, test_report
from pump_orchestration.defs.evaluation.walk_forward import walk_forward_evaluation
from pump_orchestration.defs.shared.jobs import ml_asset_job

test_model_job = ml_asset_job(
    "test_model_job", [coin_metrics_slice, test_report], "TEST",
    "Test a READY model on the selected day(s): ops.test_report.config.model = id or name.",
)
compare_models_job = ml_asset_job(
    "compare_models_job", [coin_metrics_slice, model_comparison], "COMPARE",
    "Compare two models on the same rows of the selected day(s).",
)
walk_forward_job = ml_asset_job(
    "walk_forward_job", [coin_metrics_slice, walk_forward_evaluation], "WALK_FORWARD",
    "Walk-forward over a range of days: train on trailing windows, test on the next, compare.",
)
