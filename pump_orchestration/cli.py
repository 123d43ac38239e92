"""Command line: ``pump-orchestration init-db | generate | import-trades | demo``.

``demo`` is the README's first command: it fills the embedded warehouse with
synthetic data and trains a first model through Dagster, so the run, its
metadata and the model show up in the UI afterwards.
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
                                      seed=args.seed, pump_share=args.pump_share)
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

    args = parser.parse_args(argv)
    from pump_orchestration.settings import DeploymentError

    try:
        return args.func(args)
    except DeploymentError as exc:  # the environment, not a bug: one line, no traceback
        print(f"pump-orchestration: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
