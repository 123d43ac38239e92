"""Choosing which models score live, from the launchpad or GraphQL: ``manage_active_models_job``.

A thin layer over ``pump_orchestration.warehouse.active_models``: the op performs one action, shows
the active models as a Markdown table and the affected row as JSON, and turns an ``ActivationError``
into a failed run whose message is that error's one line. The job carries no ML run tags: it is
quick bookkeeping and must not wait in the ML queue behind training runs.
"""
import json
from typing import Optional

import dagster as dg
from pydantic import Field

from pump_orchestration.defs.shared.launch import ModelRef
from pump_orchestration.defs.shared.metadata import metrics_table
from pump_orchestration.defs.shared.resources import ModelStoreResource, WarehouseResource

#: Each action and the config fields it needs besides ``action``.
ACTIONS: dict[str, tuple[str, ...]] = {
    "list": (),
    "activate": ("model",),
    "deactivate": ("model",),
    "set_threshold": ("model", "threshold"),
    "rename": ("model", "name"),
    "delete": ("model",),
}
_TABLE_COLUMNS = ["id", "model_id", "model_name", "custom_name", "model_type", "is_active", "alert_threshold",
                  "total_predictions", "last_prediction_at"]


class ActiveModelsConfig(dg.Config):
    """One action on ``prediction_active_models``."""

    action: str = Field(
        default="list",
        description="What to do: " + " | ".join(ACTIONS) + ". list shows the table; activate copies a READY "
                    "model's verified artifact for scoring; deactivate stops scoring (the row stays); "
                    "set_threshold, rename and delete change one active model.")
    model: Optional[ModelRef] = Field(
        default=None,
        description="activate: the ml_models id or name. Other actions: the active model's model_id, "
                    "model_name or custom_name.")
    threshold: Optional[float] = Field(
        default=None,
        description="Alert threshold, a probability within [0, 1] (activate: default = the model's operating point "
                    "chosen at training, 0.7 for older models; set_threshold: required).")
    name: Optional[str] = Field(
        default=None,
        description="custom_name shown in alerts (activate: optional; rename: required); at most 255 characters, "
                    "unique among the active models.")
    force: bool = Field(
        default=False,
        description="activate only: activate although a quality gate that guards scoring failed "
                    "(beats_majority_baseline, beats_rule_baseline).")


@dg.op
def manage_active_models(context: dg.OpExecutionContext, config: ActiveModelsConfig, warehouse: WarehouseResource,
                         model_store: ModelStoreResource) -> None:
    """Perform ``config.action``; a bad request or a refusal fails the run with its one-line reason."""
    from pump_orchestration.warehouse import active_models

    problem = _config_problem(config)
    if problem:
        raise dg.Failure(description=problem, allow_retries=False)
    engine = warehouse.engine()
    try:
        affected = _perform(config, engine, model_store)
    except active_models.ActivationError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    rows = active_models.list_active_models(engine)
    active_count = sum(bool(row["is_active"]) for row in rows)
    context.log.info(f"{len(rows)} model(s) in prediction_active_models, {active_count} active")
    metadata = {"active_models": dg.MetadataValue.md(metrics_table(rows, _TABLE_COLUMNS) if rows else "(none)"),
                "active_count": active_count}
    if affected is not None:
        shown = _json_ready(affected)
        context.log.info(f"{config.action}: active model id {shown['id']} (model_id {shown['model_id']}, "
                         f"{shown['model_name']})")
        metadata["affected_row"] = dg.MetadataValue.json(shown)
    context.add_output_metadata(metadata)


def _config_problem(config: ActiveModelsConfig) -> Optional[str]:
    """One line naming what is wrong with the request, or None."""
    if config.action not in ACTIONS:
        return f"action '{config.action}' is unknown; allowed: {', '.join(ACTIONS)}"
    missing = [field for field in ACTIONS[config.action] if getattr(config, field) is None]
    if missing:
        return f"action {config.action} needs {' and '.join(missing)}"
    return None


def _perform(config: ActiveModelsConfig, engine, model_store: ModelStoreResource) -> Optional[dict]:
    """Run the (valid) action; returns the row it changed, None for ``list``."""
    from pump_orchestration import settings
    from pump_orchestration.warehouse import active_models

    if config.action == "list":
        return None
    if config.action == "activate":
        return active_models.activate(engine, config.model, store=model_store.store(),
                                      active_dir=settings.active_models_dir(), threshold=config.threshold,
                                      name=config.name, force=config.force)
    if config.action == "deactivate":
        return active_models.deactivate(engine, config.model)
    if config.action == "set_threshold":
        return active_models.set_threshold(engine, config.model, config.threshold)
    if config.action == "rename":
        return active_models.rename(engine, config.model, config.name)
    return active_models.delete(engine, config.model, active_dir=settings.active_models_dir())


def _json_ready(row: dict) -> dict:
    """The row with timestamps as ISO text (JSON metadata takes plain values only)."""
    return json.loads(json.dumps(row, default=lambda value: value.isoformat()))


@dg.job(executor_def=dg.in_process_executor,
        description="List, activate, deactivate, re-threshold, rename or delete the models that score live "
                    "(prediction_active_models); config under ops.manage_active_models.config. No ML run tags: "
                    "it never waits in the ML queue.")
def manage_active_models_job():
    manage_active_models()
