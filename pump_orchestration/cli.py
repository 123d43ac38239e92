"""Command line: ``pump-orchestration init-db | generate | import-trades | demo | models | score``.

``demo`` is the README's first command: it fills the embedded warehouse with
synthetic data and trains a first model through Dagster, so the run, its
metadata and the model show up in the UI afterwards. ``models`` chooses which
models score live (``prediction_active_models``); ``score`` scores one coin now. Both print JSON.
"""
from __future__ import annotations

import argparse
import json
import sys


def _engine():
    from pump_orchestration.warehouse.db import init_schema, make_engine

    engine = make_engine()
    init_schema(engine)
    return engine


def _cmd_init_db(args) -> int:
    engine = _engine()
    print(f"schema ready at {engine.url.render_as_string(hide_password=True)}")
    return 0


def _cmd_generate(args) -> int:
    from pump_orchestration.data.ingest import ingest_synthetic

    summary, pumps = ingest_synthetic(_engine(), n_coins=args.coins, start=args.start, hours=args.hours,
                                      seed=args.seed, pump_share=args.pump_share, live=args.live)
    if args.pumps_csv:
        pumps.to_csv(args.pumps_csv, index=False)
    print(json.dumps({**summary, "planted_pumps": int(len(pumps))}, indent=2))
    return 0


def _cmd_import_trades(args) -> int:
    from pump_orchestration.data.ingest import ingest_trades

    print(json.dumps(ingest_trades(_engine(), args.path, interval_seconds=args.interval), indent=2))
    return 0


def _cmd_demo(args) -> int:
    import dagster as dg
    import pandas as pd

    from pump_orchestration.data.ingest import ingest_synthetic
    from pump_orchestration.definitions import defs

    day = pd.Timestamp(args.day)
    summary, pumps = ingest_synthetic(_engine(), n_coins=args.coins, start=(day - pd.Timedelta(hours=1)).isoformat(),
                                      hours=26.0, seed=args.seed)
    print(f"synthetic coin_metrics: {summary['rows']:,} rows, {summary['coins']} coins, {len(pumps)} planted pumps")
    name = args.name or f"demo_{args.model_type}_{pd.Timestamp.now(tz='UTC'):%Y%m%d_%H%M%S}"
    run_config = {"resources": {"training_request": {"config": {
        "name": name, "model_type": args.model_type, "target_var": "price_close",
        "future_minutes": 10, "min_percent_change": 30.0, "direction": "up",
        # Synthetic pumps dump within minutes: "rises 30 % at some point within 10 min" is the learnable target.
        "label_mode": "within",
    }}}}
    instance = dg.DagsterInstance.get()
    result = defs.resolve_job_def("train_model_job").execute_in_process(
        run_config=run_config, instance=instance, partition_key=day.strftime("%Y-%m-%d"), raise_on_error=False
    )
    if not result.success:
        errors = [e.event_specific_data.error.cause.message if e.event_specific_data.error.cause
                  else e.event_specific_data.error.message
                  for e in result.all_events if e.is_step_failure]
        print(f"training run {result.run_id} failed: {' | '.join(errors)}", file=sys.stderr)
        return 1
    meta = result.get_asset_materialization_events()[-1].materialization.metadata
    shown = {k: meta[k].value for k in ("model_name", "rows_used", "accuracy", "f1", "precision", "recall",
                                         "roc_auc", "simulated_profit_pct") if k in meta}
    print(json.dumps(shown, indent=2, default=str))
    print(f"run {result.run_id} succeeded; open the UI with: dagster dev -w workspace.yaml")
    return 0


#: What ``models`` prints of an active row.
_ACTIVE_MODEL_FIELDS = ("id", "model_id", "model_name", "custom_name", "model_type", "is_active", "alert_threshold",
                        "total_predictions", "last_prediction_at")


def _cmd_models(args) -> int:
    from pump_orchestration import settings
    from pump_orchestration.warehouse import active_models

    engine = _engine()
    if args.action == "list":
        result = active_models.list_active_models(engine)
    elif args.action == "activate":
        from pump_orchestration.ml.model_store import ModelStore

        result = active_models.activate(engine, args.model, store=ModelStore(settings.model_storage_path()),
                                        active_dir=settings.active_models_dir(), threshold=args.threshold,
                                        name=args.name, force=args.force)
    elif args.action == "deactivate":
        result = active_models.deactivate(engine, args.model)
    elif args.action == "set-threshold":
        result = active_models.set_threshold(engine, args.model, args.threshold)
    elif args.action == "rename":
        result = active_models.rename(engine, args.model, args.name)
    else:
        result = active_models.delete(engine, args.model, active_dir=settings.active_models_dir())

    def shown(row: dict) -> dict:
        return {key: row[key] for key in _ACTIVE_MODEL_FIELDS}

    print(json.dumps([shown(r) for r in result] if args.action == "list" else shown(result), indent=2, default=str))
    return 0


def _cmd_score(args) -> int:
    from pump_orchestration.live.service import score_coin

    result = score_coin(_engine(), args.mint, model_refs=args.model or None, at=args.at)
    print(json.dumps(result, indent=2, default=str))
    return 0


def _add_score_parser(sub) -> None:
    score = sub.add_parser("score", help="score one coin now with the active models; prints the predictions as "
                                         "JSON (nothing stored, no webhook)")
    score.add_argument("mint", help="the coin (coin_metrics.mint)")
    score.add_argument("--model", action="append", default=[], help="an active model's id or name (repeatable; "
                                                                    "default: every active model)")
    score.add_argument("--at", default=None, help="ISO timestamp: score the coin's row at or before it "
                                                  "(default: its newest row)")
    score.set_defaults(func=_cmd_score)


def _add_models_parser(sub) -> None:
    models = sub.add_parser("models", help="choose which models score live (prediction_active_models); prints JSON")
    actions = models.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="every active-model row, active or not")
    activate = actions.add_parser("activate", help="activate a READY ml_models row (id or name) for scoring")
    activate.add_argument("model", help="ml_models id or name")
    activate.add_argument("--threshold", type=float, default=None, help="alert threshold in [0, 1] (default 0.7)")
    activate.add_argument("--name", default=None, help="custom name, unique among the active models")
    activate.add_argument("--force", action="store_true", help="activate although a blocking quality gate failed")
    model_help = "the active model's model_id, model_name or custom_name"
    actions.add_parser("deactivate", help="stop scoring with a model (the row stays)").add_argument(
        "model", help=model_help)
    threshold = actions.add_parser("set-threshold", help="change the alert threshold")
    threshold.add_argument("model", help=model_help)
    threshold.add_argument("threshold", type=float, help="probability in [0, 1]")
    rename = actions.add_parser("rename", help="set the custom name")
    rename.add_argument("model", help=model_help)
    rename.add_argument("name")
    actions.add_parser("delete", help="remove the row and its local artifact copy").add_argument(
        "model", help=model_help)
    models.set_defaults(func=_cmd_models)


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``pump-orchestration`` command."""
    parser = argparse.ArgumentParser(prog="pump-orchestration", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("init-db", help="create the product tables (idempotent)").set_defaults(func=_cmd_init_db)

    gen = sub.add_parser("generate", help="write synthetic coin_metrics with planted pumps")
    gen.add_argument("--coins", type=int, default=300)
    gen.add_argument("--start", default="2025-09-01T00:00:00Z")
    gen.add_argument("--hours", type=float, default=24.0)
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--pump-share", type=float, default=0.25)
    gen.add_argument("--pumps-csv", help="also write the planted pumps (mint, pump_start, ...) to this CSV")
    gen.add_argument("--live", action="store_true",
                     help="queue the rows for live scoring, as a tracker's inserts (default: history, not scored)")
    gen.set_defaults(func=_cmd_generate)

    imp = sub.add_parser("import-trades", help="build coin_metrics from a raw pump.fun trades CSV")
    imp.add_argument("path")
    imp.add_argument("--interval", type=int, default=5, help="seconds per coin_metrics row (default 5)")
    imp.set_defaults(func=_cmd_import_trades)

    demo = sub.add_parser("demo", help="generate a day of synthetic data and train a first model via Dagster")
    demo.add_argument("--day", default="2025-09-01", help="training day (a daily partition key)")
    demo.add_argument("--coins", type=int, default=300)
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--model-type", default="xgboost")
    demo.add_argument("--name", default=None, help="model name (default: demo_<type>_<timestamp>)")
    demo.set_defaults(func=_cmd_demo)

    _add_models_parser(sub)
    _add_score_parser(sub)

    args = parser.parse_args(argv)
    from pump_orchestration.settings import DeploymentError
    from pump_orchestration.warehouse.active_models import ActivationError

    try:
        return args.func(args)
    except (DeploymentError, ActivationError, LookupError) as exc:  # the environment or a refused request: one line
        print(f"pump-orchestration: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
