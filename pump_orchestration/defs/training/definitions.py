"""Definitions of training."""
import dagster as dg

from pump_orchestration.defs.shared.io_managers import ParquetIOManager
from pump_orchestration.defs.shared.resources import SharedResources
from pump_orchestration.defs.training.assets import engineered_features, fitted_model, labelled_dataset
from pump_orchestration.defs.training.io_managers import MlModelsIOManager
from pump_orchestration.defs.training.jobs import train_model_job
from pump_orchestration.defs.training.resources import TrainingRequestResource


def training_definitions(shared: SharedResources) -> dg.Definitions:
    """Labelled dataset → engineered features → fitted model, and ``train_model_job``.

    ``training_request`` is also what walk-forward evaluation reads (it trains a series of models).
    """
    return dg.Definitions(
        assets=[labelled_dataset, engineered_features, fitted_model],
        jobs=[train_model_job],
        resources={
            **shared.as_dict(),
            "training_request": TrainingRequestResource.configure_at_launch(warehouse=shared.warehouse),
            "dataset_io_manager": ParquetIOManager(base_dir=shared.cache_dir),
            "ml_models_io_manager": MlModelsIOManager(warehouse=shared.warehouse, model_store=shared.model_store),
        },
    )
