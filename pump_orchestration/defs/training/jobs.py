"""``train_model_job``: the training chain on the selected day(s)."""
from pump_orchestration.defs.data.assets import coin_metrics_slice
from pump_orchestration.defs.shared.jobs import ml_asset_job
from pump_orchestration.defs.training.assets import engineered_features, fitted_model, labelled_dataset

train_model_job = ml_asset_job(
    "train_model_job", [coin_metrics_slice, labelled_dataset, engineered_features, fitted_model], "TRAIN",
    "Train one model on the selected day(s): fill in resources.training_request in the launchpad.",
)
