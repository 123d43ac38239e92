"""The one Definitions object of the code location ``pump_orchestration``.

Heavy libraries (pandas work, scikit-learn, xgboost) are imported inside asset
bodies, not here: every run process re-imports this module.
"""
import dagster as dg

from pump_orchestration.assets.evaluation import model_comparison, test_report
from pump_orchestration.assets.training import (
    coin_metrics,
    coin_metrics_slice,
    engineered_features,
    fitted_model,
    labelled_dataset,
)
from pump_orchestration.assets.walk_forward import walk_forward_evaluation
from pump_orchestration.io_managers import MlModelsIOManager, MlResultsIOManager, ParquetIOManager
from pump_orchestration.jobs import (
    compare_models_job,
    generate_synthetic_data_job,
    import_trades_job,
    test_model_job,
    train_model_job,
    walk_forward_job,
)
from pump_orchestration.resources import ModelStoreResource, TrainingRequestResource, WarehouseResource
from pump_orchestration.sensors import ml_jobs_sensor

warehouse = WarehouseResource()
model_store = ModelStoreResource()

defs = dg.Definitions(
    assets=[coin_metrics, coin_metrics_slice, labelled_dataset, engineered_features, fitted_model, test_report,
            model_comparison, walk_forward_evaluation],
    jobs=[train_model_job, test_model_job, compare_models_job, walk_forward_job, generate_synthetic_data_job,
          import_trades_job],
    sensors=[ml_jobs_sensor],
    resources={
        "warehouse": warehouse,
        "model_store": model_store,
        "training_request": TrainingRequestResource.configure_at_launch(warehouse=warehouse),
        "slice_io_manager": ParquetIOManager(split_by_day=True),
        "dataset_io_manager": ParquetIOManager(),
        "ml_models_io_manager": MlModelsIOManager(warehouse=warehouse, model_store=model_store),
        "ml_results_io_manager": MlResultsIOManager(warehouse=warehouse, model_store=model_store),
    },
)
