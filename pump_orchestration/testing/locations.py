"""The code location on a test's own resources, and running its jobs in process."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from pump_orchestration.definitions import build_definitions
from pump_orchestration.defs.shared.resources import ModelStoreResource, SharedResources, WarehouseResource


@dataclass
class TestLocation:
    """The code location's Definitions on ``engine``'s warehouse, with artifacts and caches under ``data_dir``."""

    __test__ = False  # not a pytest class, whatever its name

    engine: sa.Engine
    data_dir: Path
    defs: dg.Definitions

    @classmethod
    def on(cls, engine: sa.Engine, data_dir: Path) -> "TestLocation":
        shared = SharedResources(
            warehouse=WarehouseResource(dsn=engine.url.render_as_string(hide_password=False)),
            model_store=ModelStoreResource(root=str(data_dir / "models")),
            cache_dir=str(data_dir / "cache"),
        )
        return cls(engine=engine, data_dir=data_dir, defs=build_definitions(shared))

    def run(self, job: str, run_config: dict | None = None, *, partition: str | None = None,
            tags: dict | None = None, instance: dg.DagsterInstance | None = None) -> dg.ExecuteInProcessResult:
        """Execute ``job`` in process on an ephemeral instance (or ``instance``); failures are returned, not raised."""
        return self.defs.resolve_job_def(job).execute_in_process(
            run_config=run_config or {}, partition_key=partition, tags=tags,
            instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=False,
        )

    def train(self, request: dict, *, partition: str | None = "2025-09-01", tags: dict | None = None,
              **kwargs) -> dg.ExecuteInProcessResult:
        """Run ``train_model_job`` with ``request`` as ``resources.training_request.config``."""
        return self.run("train_model_job", {"resources": {"training_request": {"config": request}}},
                        partition=partition, tags=tags, **kwargs)

    def models(self) -> list[dict]:
        """Every ``ml_models`` row, deleted ones included."""
        from pump_orchestration.warehouse import repository

        with self.engine.connect() as conn:
            return repository.list_models(conn, include_deleted=True)

    def artifacts(self) -> list[Path]:
        """The model artifacts on disk."""
        return sorted((self.data_dir / "models").glob("*.joblib"))


def failure_text(result: dg.ExecuteInProcessResult) -> str:
    """The error messages (with their causes) of a failed run."""
    messages = []
    for event in result.all_events:
        error = getattr(event.event_specific_data, "error", None) if event.is_failure else None
        while error is not None:
            messages.append(error.message)
            error = error.cause
    return "\n".join(messages)
