"""Run tags: the ML run queue and the job type of a mirrored run (imports nothing of the Dagster layer).

Every training, test, comparison and walk-forward job carries both tags. ``dagster.yaml`` limits how
many runs with the queue tag run at once; the ``ml_jobs`` mirror recognises an ML run, and what it
does, by the job-type tag alone, never by the job's name. Prediction jobs carry neither, so they
never wait behind training.
"""
from __future__ import annotations

from typing import Mapping

from pump_orchestration.vocabulary import JOB_TYPES

QUEUE_TAG = "pump/queue"
ML_QUEUE_TAGS = {QUEUE_TAG: "ml"}
#: ``ml_jobs.job_type`` of the run (one of ``vocabulary.JOB_TYPES``).
JOB_TYPE_TAG = "pump/job_type"
#: Dagster's own tags for the partition (or range) a run covers.
PARTITION_TAG = "dagster/partition"
PARTITION_RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def ml_job_tags(job_type: str) -> dict[str, str]:
    """The tags of an ML job of ``job_type``."""
    if job_type not in JOB_TYPES:
        raise ValueError(f"job_type: {job_type!r} is unknown; allowed: {', '.join(JOB_TYPES)}")
    return {**ML_QUEUE_TAGS, JOB_TYPE_TAG: job_type}


def ml_job_type(tags: Mapping[str, str]) -> str | None:
    """The job type of a run that carries the ML tags, else None (the run is not mirrored)."""
    if any(tags.get(key) != value for key, value in ML_QUEUE_TAGS.items()):
        return None
    job_type = tags.get(JOB_TYPE_TAG)
    return job_type if job_type in JOB_TYPES else None
