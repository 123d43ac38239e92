"""Definitions of evaluation."""
import dagster as dg

from pump_orchestration.defs.evaluation.assets import model_comparison, test_report
from pump_orchestration.defs.evaluation.io_managers import (
    ComparisonsIOManager,
    TestResultsIOManager,
    WalkForwardIOManager,
)
from pump_orchestration.defs.evaluation.jobs import compare_models_job, test_model_job, walk_forward_job
from pump_orchestration.defs.evaluation.walk_forward import walk_forward_evaluation
from pump_orchestration.defs.shared.resources import SharedResources


def evaluation_definitions(shared: SharedResources) -> dg.Definitions:
    """Test reports, comparisons and walk-forward, with the writers of their results.

    Walk-forward reads ``training_request``, which training's Definitions provide.
    """
    writers = {"warehouse": shared.warehouse, "model_store": shared.model_store}
    return dg.Definitions(
        assets=[test_report, model_comparison, walk_forward_evaluation],
        jobs=[test_model_job, compare_models_job, walk_forward_job],
        resources={
            **shared.as_dict(),
            "ml_test_results_io_manager": TestResultsIOManager(**writers),
            "ml_comparisons_io_manager": ComparisonsIOManager(**writers),
            "ml_walk_forward_io_manager": WalkForwardIOManager(**writers),
        },
    )
