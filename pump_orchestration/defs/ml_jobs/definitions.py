"""Definitions of the ``ml_jobs`` mirror."""
import dagster as dg

from pump_orchestration.defs.ml_jobs.sensors import ml_jobs_sensor
from pump_orchestration.defs.shared.resources import SharedResources


def ml_jobs_definitions(shared: SharedResources) -> dg.Definitions:
    """The ``ml_jobs_sensor`` with the warehouse it writes to."""
    return dg.Definitions(sensors=[ml_jobs_sensor], resources={"warehouse": shared.warehouse})
