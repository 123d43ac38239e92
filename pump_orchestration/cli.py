"""Command line: pump-orchestration init-db | generate | import-trades | import-events | demo | models | score.

demo is the README's first command: it fills the embedded warehouse with synthetic data and
trains a first model through Dagster, so the run, its metadata and the model show up in the UI
afterwards. models chooses which models score live (prediction_active_models); score scores one
coin now. Both print JSON. Mistakes are answered in one line on stderr with exit code 2; --debug
shows the traceback instead.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

#: The checkout: the demo launches its run through the workspace.yaml here, as the UI does.
REPO = Path(__file__).resolve().parents[1]
#: Printed after the demo and in the README: the one way to open the UI on the demo's instance.
UI_COMMAND = "DAGSTER_HOME=$PWD .venv/bin/dagster dev -w workspace.yaml"


class UsageError(ValueError):
    """A command-line value that cannot work; the message names the option."""


def _engine():
    from pump_orchestration.warehouse.db import init_schema, make_engine

    engine = make_engine()
    init_schema(engine)
    return engine


def _cmd_init_db(args) -> int:
    engine = _engine()
    print(f"schema ready at {engine.url.render_as_string(hide_password=True)}")
    return 0


def _positive(kind):
    """An argparse type: ``kind`` (int or float) > 0, so a bad value is refused before anything is written."""
    def parse(text: str):
        value = kind(text)
        if value <= 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in "invalid int value"
    return parse


def _share(text: str) -> float:
    value = float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1, got {text}")
    return value


def _timestamp(text: str) -> str:
    from pump_orchestration.vocabulary import to_utc

    try:
        to_utc(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO timestamp: {text!r} (e.g. 2025-09-01T00:00:00Z)") from None
    return text


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

    if not Path(args.path).is_file():
        raise UsageError(f"path: no such file: {args.path}")
    print(json.dumps(ingest_trades(_engine(), args.path, interval_seconds=args.interval), indent=2))
    return 0


def _cmd_import_events(args) -> int:
    from pump_orchestration.data.known_events import read_known_events
    from pump_orchestration.warehouse.repository import replace_known_events

    events = read_known_events(args.path)  # every row checked before the transaction below
    rows = [{k: (None if v is None or v != v else v) for k, v in row.items()}  # NaN -> NULL
            for row in events.to_dict("records")]
    with _engine().begin() as conn:
        counts = replace_known_events(conn, rows)
    print(json.dumps({"path": str(args.path), "events": len(rows), **counts,
                      "coins": int(events["mint"].nunique()),
                      "first_start": events["start_time"].min().isoformat(),
                      "last_end": events["end_time"].max().isoformat()}, indent=2))
    return 0


def _check_demo(args) -> None:
    """Everything the demo needs, checked before it writes a row."""
    from pump_orchestration.defs.shared.partitions import training_days
    from pump_orchestration.vocabulary import MODEL_TYPES

    home = os.environ.get("DAGSTER_HOME")
    if not home:
        raise UsageError("DAGSTER_HOME is not set: the demo records its run in a Dagster instance; run "
                         "bash scripts/demo.sh, or DAGSTER_HOME=$PWD in the checkout (it holds dagster.yaml)")
    if not (Path(home).is_absolute() and (Path(home) / "dagster.yaml").is_file()):
        raise UsageError(f"DAGSTER_HOME={home}: must be an absolute path to a folder holding dagster.yaml "
                         f"(the checkout: DAGSTER_HOME=$PWD)")
    days = training_days.get_partition_keys()
    if args.day not in days:
        first, last = (days[0], days[-1]) if days else (training_days.start.strftime("%Y-%m-%d"), "none yet")
        raise UsageError(f"--day: {args.day!r} is not a training day; choose a finished UTC day (YYYY-MM-DD) "
                         f"from {first} to {last} (PUMP_PARTITIONS_START sets the first)")
    if args.model_type not in MODEL_TYPES:
        raise UsageError(f"--model-type: unknown {args.model_type!r}; one of {', '.join(MODEL_TYPES)}")


def _launch_and_wait(instance, job_name: str, run_config: dict, tags: dict, log_level: str) -> str:
    """Launch ``job_name`` from the checkout's workspace, as the UI does, and wait for it; returns the run id.

    A run created from the workspace has a code origin, so the UI lists it under its job and in the
    Overview timeline (an in-process run appears in neither). It is launched directly, not queued:
    without a daemon nothing would dequeue it.
    """
    # The run `dagster job launch` creates (Dagster has no public call for a run from a workspace
    # that skips the queue); launch_run below is what the daemon calls when it dequeues one.
    from dagster._cli.job import _create_run
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    target = WorkspaceFileTarget(paths=[str(REPO / "workspace.yaml")])
    with WorkspaceProcessContext(instance, target, code_server_log_level=log_level) as process:
        workspace = process.create_request_context()
        location = workspace.get_code_location("pump_orchestration")
        repo = location.get_repository("__repository__")
        run = _create_run(instance=instance, code_location=location, remote_repo=repo,
                          remote_job=repo.get_full_job(job_name), run_config=run_config, tags=tags,
                          op_selection=None, run_id=None)
        instance.launch_run(run.run_id, workspace)
        while not instance.get_run_by_id(run.run_id).is_finished:
            time.sleep(1)
    return run.run_id


def _mirror(instance, engine, run_id: str) -> None:
    """Write the run's ml_jobs row now, as ml_jobs_sensor would: the demo runs without a daemon."""
    import dagster as dg

    from pump_orchestration.defs.ml_jobs.mirror import job_values
    from pump_orchestration.warehouse.jobs_mirror import upsert_job

    record = instance.get_run_records(dg.RunsFilter(run_ids=[run_id]), limit=1)[0]
    values = job_values(instance, record)
    if values is not None:  # None only for a job without the pump/job_type tag
        with engine.begin() as conn:
            upsert_job(conn, run_id, values)


def _demo_event_figures(operating_point: dict, rule_baseline: dict) -> dict:
    """Pumps caught and false alarms at the chosen alert threshold, on the training run's out-of-fold CV rows,
    for the model and for the volume/price rule fitted on the same folds (the beats_rule_baseline check)."""
    def figures(report: dict) -> dict:
        return {"pumps": report["events"], "caught_before_peak": report["detected_before_peak"],
                "false_alerts_per_coin_day": round(report["false_alerts_per_coin_day"], 2)}

    at = operating_point["at_threshold"]
    if "events" not in at:  # a classic target: no events, the threshold was chosen by row F1
        return {}
    out = {"cv_events_at_alert_threshold": figures(at)}
    if rule_baseline.get("applicable") and rule_baseline["level"] == "event":
        out["rule_baseline_cv_events"] = figures(rule_baseline["rule"])
        out["beats_rule_baseline"] = rule_baseline["model_score"] > rule_baseline["rule_score"]
    return out


def _cmd_demo(args) -> int:
    import dagster as dg
    import pandas as pd

    from pump_orchestration.data.ingest import ingest_synthetic
    from pump_orchestration.defs.ml_jobs.mirror import failure_message
    from pump_orchestration.defs.shared.tags import PARTITION_TAG
    from pump_orchestration.warehouse.repository import model_name_exists

    _check_demo(args)
    name = args.name or f"demo_{args.model_type}_{pd.Timestamp.now(tz='UTC'):%Y%m%d_%H%M%S}"
    engine = _engine()
    with engine.connect() as conn:
        if model_name_exists(conn, name):
            raise UsageError(f"--name: a model named {name!r} already exists; choose another name")
    day = pd.Timestamp(args.day, tz="UTC")
    # From an hour before the day (the features' history) to an hour after it (the last rows' labels).
    summary, pumps = ingest_synthetic(engine, n_coins=args.coins, start=(day - pd.Timedelta(hours=1)).isoformat(),
                                      hours=26.0, seed=args.seed)
    print(f"synthetic coin_metrics: {summary['rows']:,} rows, {summary['coins']} coins, {len(pumps)} planted pumps")
    run_config = {"resources": {"training_request": {"config": {
        "name": name, "model_type": args.model_type, "target_var": "price_close",
        "future_minutes": 10, "min_percent_change": 30.0, "direction": "up", "label_mode": "within",
    }}}, "loggers": {"console": {"config": {"log_level": "DEBUG" if args.debug else "CRITICAL"}}}}
    with dg.DagsterInstance.get() as instance:
        # The run's own log stays in the UI (and with --debug, here); the demo prints the outcome.
        print(f"training {name!r} on {args.day} through Dagster (train_model_job, about a minute)…", flush=True)
        run_id = _launch_and_wait(instance, "train_model_job", run_config, {PARTITION_TAG: args.day},
                                  log_level="DEBUG" if args.debug else "WARNING")
        _mirror(instance, engine, run_id)
        if instance.get_run_by_id(run_id).status != dg.DagsterRunStatus.SUCCESS:
            reason = failure_message(instance, run_id) or "no failure event recorded"
            print(f"pump-orchestration: training run {run_id} failed: {reason}", file=sys.stderr)
            return 1
        events = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    meta = next(e.asset_materialization.metadata for e in reversed(events)
                if e.asset_materialization.asset_key == dg.AssetKey("fitted_model"))
    # Rounded for reading; the stored row keeps full precision.
    shown = {key: round(meta[key].value, 3) if isinstance(meta[key].value, float) else meta[key].value
             for key in ("model_name", "rows_used", "accuracy", "f1", "precision", "recall", "roc_auc",
                         "simulated_profit_pct", "alert_threshold") if key in meta}
    shown.update(_demo_event_figures(meta["operating_point"].value, meta["rule_baseline"].value))
    print(json.dumps(shown, indent=2, default=str))
    print(f"run {run_id} succeeded\n\nOpen the UI, from the checkout (then http://127.0.0.1:3000):\n  {UI_COMMAND}")
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
    activate.add_argument("--threshold", type=float, default=None,
                          help="alert threshold in [0, 1] (default: the model's operating point chosen at training, "
                               "0.7 for older models)")
    activate.add_argument("--name", default=None, help="custom name, unique among the active models")
    activate.add_argument("--force", action="store_true",
                          help="activate although a quality gate that guards scoring failed "
                               "(beats_majority_baseline, beats_rule_baseline)")
    model_help = "the active model's model_id, model_name or custom_name"
    actions.add_parser("deactivate", help="stop scoring with a model (the row stays)").add_argument(
        "model", help=model_help)
    threshold = actions.add_parser("set-threshold", help="change the alert threshold")
    threshold.add_argument("model", help=model_help)
    threshold.add_argument("threshold", type=float, help="probability in [0, 1]")
    rename = actions.add_parser("rename", help="set the custom name")
    rename.add_argument("model", help=model_help)
    rename.add_argument("name", help="the new custom name")
    actions.add_parser("delete", help="remove the row and its local artifact copy").add_argument(
        "model", help=model_help)
    models.set_defaults(func=_cmd_models)


class _Parser(argparse.ArgumentParser):
    """argparse, answering a bad option in one line (argparse's own prints the usage first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (--help shows the options)\n")


def build_parser() -> argparse.ArgumentParser:
    """Every command and option, each with its help text."""
    parser = _Parser(prog="pump-orchestration", description=__doc__.split("\n\n")[0])
    parser.add_argument("--debug", action="store_true", help="show the full traceback when a command fails")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("init-db", help="create the product tables (idempotent)").set_defaults(func=_cmd_init_db)

    gen = sub.add_parser("generate", help="write synthetic coin_metrics with planted pumps")
    gen.add_argument("--coins", type=_positive(int), default=300, help="number of coins (default 300)")
    gen.add_argument("--start", type=_timestamp, default="2025-09-01T00:00:00Z",
                     help="ISO timestamp of the first row (default 2025-09-01T00:00:00Z)")
    gen.add_argument("--hours", type=_positive(float), default=24.0, help="hours of rows per coin (default 24)")
    gen.add_argument("--seed", type=int, default=0, help="random seed; the same seed writes the same rows (default 0)")
    gen.add_argument("--pump-share", type=_share, default=0.25,
                     help="share of coins with a planted pump, 0 to 1 (default 0.25)")
    gen.add_argument("--pumps-csv", help="also write the planted pumps (mint, pump_start, ...) to this CSV")
    gen.add_argument("--live", action="store_true",
                     help="queue the rows for live scoring, as a tracker's inserts (default: history, not scored)")
    gen.set_defaults(func=_cmd_generate)

    imp = sub.add_parser("import-trades", help="build coin_metrics from a raw pump.fun trades CSV")
    imp.add_argument("path", help="the trades CSV (one row per trade)")
    imp.add_argument("--interval", type=_positive(int), default=5, help="seconds per coin_metrics row (default 5)")
    imp.set_defaults(func=_cmd_import_trades)

    events = sub.add_parser("import-events", help="store known pump events (e.g. Telegram signals) in "
                                                  "ml_known_events for label_source: known_events (idempotent)")
    events.add_argument("path", help="CSV with mint, start_time and end_time or duration_minutes "
                                     "(optional symbol, source, note); naive times are UTC")
    events.set_defaults(func=_cmd_import_events)

    demo = sub.add_parser("demo", help="generate a day of synthetic data and train a first model via Dagster "
                                       "(needs DAGSTER_HOME; bash scripts/demo.sh sets it)")
    demo.add_argument("--day", default="2025-09-01", help="training day, a finished UTC day YYYY-MM-DD "
                                                          "(default 2025-09-01)")
    demo.add_argument("--coins", type=_positive(int), default=150, help="number of synthetic coins (default 150)")
    demo.add_argument("--seed", type=int, default=0, help="random seed of the synthetic data (default 0)")
    demo.add_argument("--model-type", default="xgboost", help="classifier to train (default xgboost)")
    demo.add_argument("--name", default=None, help="model name (default: demo_<type>_<timestamp>)")
    demo.set_defaults(func=_cmd_demo)

    _add_models_parser(sub)
    _add_score_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the pump-orchestration command."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - every failure is answered in one line; --debug shows the traceback
        if args.debug:
            raise
        print(f"pump-orchestration: {_one_line(exc)}", file=sys.stderr)
        return 2 if _is_user_error(exc) else 1


def _is_user_error(exc: Exception) -> bool:
    """A mistake in the command or the environment (exit 2), as opposed to a failure of the program (exit 1)."""
    from pump_orchestration.settings import DeploymentError
    from pump_orchestration.warehouse.active_models import ActivationError

    return isinstance(exc, (UsageError, DeploymentError, ActivationError, LookupError, ValueError, OSError))


def _one_line(exc: Exception) -> str:
    """The exception's message on one line; an unexpected type is named, and --debug suggested."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    if _is_user_error(exc):
        return text
    return f"{type(exc).__name__}: {text} (run with --debug for the traceback)"


if __name__ == "__main__":
    sys.exit(main())
