"""The one Definitions object of the code location ``pump_orchestration``: a table of contents.

Each capability lives in its own folder under ``pump_orchestration/defs`` and builds its
Definitions from the deployment's shared resources (``PUMP_DEPLOYMENT``, see
``defs/shared/resources.py``). Heavy libraries (pandas work, scikit-learn, xgboost) are imported
inside asset bodies, not here: every run process re-imports this module.
"""
import warnings

import dagster as dg

from pump_orchestration.defs.data.definitions import data_definitions
from pump_orchestration.defs.evaluation.definitions import evaluation_definitions
from pump_orchestration.defs.ml_jobs.definitions import ml_jobs_definitions
from pump_orchestration.defs.scoring.definitions import scoring_definitions
from pump_orchestration.defs.shared.resources import SharedResources, deployment_resources
from pump_orchestration.defs.training.definitions import training_definitions


def build_definitions(shared: SharedResources) -> dg.Definitions:
    """Every capability, built with ``shared`` (a deployment's set, or one a test made)."""
    return dg.Definitions.merge(
        data_definitions(shared),          # coin_metrics, its daily slices, data-loading jobs
        training_definitions(shared),      # labelled dataset → features → fitted model, train_model_job
        evaluation_definitions(shared),    # test reports, comparisons, walk-forward
        ml_jobs_definitions(shared),       # the ml_jobs mirror of ML runs
        scoring_definitions(shared),       # model activation, coin_metrics sensor, predictions, webhooks
    )


# Dagster 1.13 copies each sensor when it binds resources, passing the sensor's empty owner list back as
# `owners=[]`, which its own beta check then reports on every code-server start (no sensor here sets owners).
warnings.filterwarnings("ignore", message=r"Parameter `owners` of initializer `SensorDefinition.__init__`",
                        category=dg.BetaWarning)
defs = build_definitions(deployment_resources())
