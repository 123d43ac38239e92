"""How every ML job is built: an asset job on the in-process executor carrying the ML tags."""
import dagster as dg

from pump_orchestration.defs.shared.tags import ml_job_tags


def ml_asset_job(name: str, assets: list, job_type: str, description: str):
    """An asset job of ``job_type`` (``vocabulary.JOB_TYPES``) over ``assets``."""
    # One process per run (the in-process executor): the chain shares one warehouse engine and avoids a
    # process start per step; the tags put the run in the limited ML queue and in the ml_jobs mirror.
    return dg.define_asset_job(name, selection=dg.AssetSelection.assets(*assets), executor_def=dg.in_process_executor,
                               tags=ml_job_tags(job_type), description=description)
