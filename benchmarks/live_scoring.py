"""Benchmark of live scoring: insert → prediction latency under a real daemon, and prediction-run throughput.

(a) **Latency.** A throwaway PostgreSQL warehouse (``pump_orchestration.testing.postgres``; with
``--backends postgres,sqlite`` also the embedded SQLite one) gets a day of synthetic history and two
trained, activated models (XGBoost and random forest, default parameters). A real dagster-webserver and
dagster-daemon run our code location with our ``dagster.yaml`` (``testing.dagster_servers.dagster_home``),
``N8N_WEBHOOK_URL`` points at a local HTTP receiver on 127.0.0.1 that records arrival times. The
benchmark then inserts ``--inserts`` single rows into ``coin_metrics``, one every ``--spacing`` seconds
(6 s against the daemon's 5 s sensor loop: each insert is its own batch, and the insert's phase against
the tick moves by 1 s each time, so every phase is sampled equally). Measured per row: insert →
prediction stored (``coin_metrics_outbox.scored_at``, stamped in the write transaction just before its
commit) and insert → webhook received.

BESIDE it, on the same stack (a fresh DAGSTER_HOME with the same dagster.yaml, the same webserver and
daemon commands, the same warehouse backend), a TRIVIAL sensor-launched run: a tiny code location
written into a temp dir (a sensor, ``minimum_interval_seconds=4``, polling a table for new ids and
launching a job with ``in_process_executor`` whose op writes a "done" row). Insert → done row is
measured the same way, and the RATIO ours / trivial is printed for p50 and p95. From the runs' event
logs each latency is split into: waiting for the sensor tick (insert → RUN_ENQUEUED), the queue
(→ RUN_STARTING), starting the run process (→ RUN_START), step set-up (→ STEP_START) and the step itself
(→ stored / done), plus stored → webhook. Two warm-up inserts per stack are not counted.

(b) **Throughput.** In process, no Dagster: ``--models`` models are trained on synthetic data through
the code location (``testing.locations.TestLocation``) and activated. For each ``--coins`` size, that
many fresh coins, each with ≥ 15 minutes of history (up to an hour kept), get one new row each; the new
rows are claimed into ONE outbox batch and scored with ``live.service.score_batch(engine, key,
webhooks=True)`` (what a prediction run does; the in-process artifact cache is cleared first, because
every run is a fresh process), then ``delivery.rounds.deliver_pending`` posts the webhooks to a fast
local receiver. Printed: coin-models per second, coins per minute, the time to committed predictions
and the time until every webhook is delivered, and the share of each stage (loading models, loading
history, features, inference, database writes, payloads, webhooks). The receiver runs in its own process
(as n8n would) and answers at once. ``--profile`` scores one more batch of the largest size under
cProfile (not part of the figures) and prints the top functions.

    .venv/bin/python benchmarks/live_scoring.py                                   # everything (PostgreSQL)
    .venv/bin/python benchmarks/live_scoring.py --backends postgres,sqlite        # latency on both warehouses
    .venv/bin/python benchmarks/live_scoring.py --skip-latency --coins 1000,10000 --models 10 --profile
    .venv/bin/python benchmarks/live_scoring.py --skip-throughput --inserts 20 --spacing 6

See ``benchmarks/README.md`` (live scoring) for the meaning of every figure.
"""
from __future__ import annotations

import argparse
import atexit
import cProfile
import io
import os
import pstats
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import requests

DAY = "2025-09-01"
#: History of the latency warehouse ends here; later rows are the ones inserted one by one.
LIVE_FROM = pd.Timestamp(f"{DAY}T05:30:00Z")
TRAIN_END = f"{DAY}T05:00:00Z"
#: Every throughput coin has at least this much history before its new row (the largest feature window).
MIN_HISTORY = pd.Timedelta(minutes=15)
#: History kept per throughput coin before its new row (older rows would never be loaded).
KEEP_HISTORY = pd.Timedelta(minutes=60)
BATCH_TAG = "pump/score_batch"
TRIVIAL_TAG = "bench/events"
WARMUP_INSERTS = 2

#: The throughput models: (name, model_type, params, other request fields). Ten different ones; with
#: --models N > 10 the list repeats as copies (suffix _copyK), with fewer the first N are used.
MODEL_SPECS: list[tuple[str, str, dict, dict]] = [
    ("xgb_default", "xgboost", {}, {}),
    ("rf_default", "random_forest", {}, {}),
    ("gb_default", "gradient_boosting", {}, {}),
    ("lr_default", "logistic_regression", {"max_iter": 300}, {}),
    ("nn_small", "neural_network", {"hidden_layers": [64, 32], "max_iter": 100}, {}),
    ("xgb_shallow", "xgboost", {"n_estimators": 50, "max_depth": 4}, {}),
    ("rf_small", "random_forest", {"n_estimators": 50, "max_depth": 6}, {}),
    ("xgb_5min", "xgboost", {"n_estimators": 150}, {"future_minutes": 5}),
    ("xgb_w5_10", "xgboost", {}, {"feature_engineering_windows": [5, 10]}),
    ("rf_base_only", "random_forest", {"n_estimators": 50}, {"use_engineered_features": False}),
]


# --- small helpers -------------------------------------------------------------------------------


def pct(values, q: float) -> float:
    values = [v for v in values if v is not None and np.isfinite(v)]
    return float(np.percentile(values, q)) if values else float("nan")


@contextmanager
def env_vars(**values: str):
    """Set environment variables for the block (the in-process code reads PUMP_DATA_DIR etc.)."""
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


RECEIVER = r"""
import json, signal, socket, sys, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# A parent that ignores SIGTERM (Dagster's in-process runs can leave it so) would pass that on to this process.
signal.signal(signal.SIGTERM, signal.SIG_DFL)

arrivals, lock = [], threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the sender's session reuses its connection

    def setup(self):
        super().setup()
        # Status line + headers and the body leave in separate writes; without TCP_NODELAY the body waits for
        # the client's delayed ACK (~40 ms a request on Linux).
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def _answer(self, body):
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        arrived = time.time()
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with lock:
            arrivals.append((arrived, self.headers.get("Idempotency-Key", "")))
        self._answer(b"ok")

    def do_GET(self):  # /arrivals: what arrived so far; /reset: forget it
        with lock:
            body = json.dumps(arrivals).encode()
            if self.path == "/reset":
                arrivals.clear()
        self._answer(body)

    def log_message(self, *args):
        pass


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
server.serve_forever()
"""


class Receiver:
    """The webhook receiver: an HTTP/1.1 server on 127.0.0.1 in its own process (as n8n would be), recording
    (arrival time.time(), Idempotency-Key) per POST."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True)
        atexit.register(self.stop)
        self.port = int(self.proc.stdout.readline())
        self.session = requests.Session()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webhook/pump-alerts"

    def _get(self, path: str) -> list:
        return self.session.get(f"http://127.0.0.1:{self.port}{path}", timeout=30).json()

    def first_arrival(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for t, key in self._get("/arrivals"):
            out.setdefault(key, t)
        return out

    def reset(self) -> None:
        self._get("/reset")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


# --- warehouse set-up ----------------------------------------------------------------------------


def new_warehouse(server, backend: str, name: str, data_dir: Path):
    """An engine on a fresh warehouse (a PostgreSQL database, or the embedded SQLite file under ``data_dir``)."""
    from pump_orchestration.warehouse.db import init_schema, make_engine

    data_dir.mkdir(parents=True, exist_ok=True)
    if backend == "postgres":
        url = server.url(server.create_database(name))
    else:
        url = f"sqlite:///{data_dir / 'warehouse.sqlite'}"
    engine = make_engine(url)
    init_schema(engine, create_coin_metrics=True)
    return engine, url


def training_market(engine, n_coins: int = 60, seed: int = 5) -> pd.DataFrame:
    """6 h of synthetic coins on DAY; rows before LIVE_FROM are written (history, not queued); returns the rest."""
    from pump_orchestration.data.synthetic import generate_coin_metrics
    from pump_orchestration.warehouse.coin_metrics import write_coin_metrics
    from pump_orchestration.warehouse.schema import coin_metrics_outbox

    metrics, _ = generate_coin_metrics(n_coins=n_coins, start=f"{DAY}T00:00:00Z", hours=6, seed=seed)
    write_coin_metrics(engine, metrics[metrics["timestamp"] < LIVE_FROM])
    with engine.begin() as conn:
        conn.execute(coin_metrics_outbox.delete())
    return metrics[metrics["timestamp"] >= LIVE_FROM].sort_values(["timestamp", "mint"]).reset_index(drop=True)


def train(location, request: dict):
    """``train_model_job`` in process for DAY (TestLocation.run), its console log at WARNING."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence and beta warnings of the small training runs
        return location.run("train_model_job", {"resources": {"training_request": {"config": request}},
                                                "loggers": {"console": {"config": {"log_level": "WARNING"}}}},
                            partition=DAY)


def train_and_activate(engine, data_dir: Path, specs: list[tuple[str, str, dict, dict]]) -> list[dict]:
    """Train each spec through the code location (train_model_job in process) and activate it."""
    from pump_orchestration.ml.model_store import ModelStore
    from pump_orchestration.testing.locations import TestLocation, failure_text
    from pump_orchestration.warehouse import active_models

    location = TestLocation.on(engine, data_dir)
    out = []
    for name, model_type, params, extra in specs:
        t0 = time.perf_counter()
        request = {"name": name, "model_type": model_type, "label_mode": "within", "cv_splits": 3,
                   "params": params, "train_end": TRAIN_END, **extra}
        result = train(location, request)
        note = ""
        if not result.success:  # e.g. a quality gate on this small market: fall back to a copy of XGBoost
            note = f"training failed ({failure_text(result).splitlines()[0][:120]}); replaced by an XGBoost copy"
            name = f"{name}_xgb"
            result = train(location, {**request, "name": name, "model_type": "xgboost", "params": {}})
            if not result.success:
                raise RuntimeError(f"training {name} failed: {failure_text(result)}")
            model_type = "xgboost"
        active_models.activate(engine, name, store=ModelStore(data_dir / "models"),  # force: speed, not quality,
                               active_dir=data_dir / "active_models", force=True)   # is measured here
        out.append({"name": name, "model_type": model_type, "params": params, "extra": extra,
                    "seconds": time.perf_counter() - t0, "note": note})
        print(f"  trained + activated {name} ({model_type}) in {out[-1]['seconds']:.1f}s {note}", flush=True)
    return out


def model_specs(n: int) -> list[tuple[str, str, dict, dict]]:
    specs = []
    for i in range(n):
        name, model_type, params, extra = MODEL_SPECS[i % len(MODEL_SPECS)]
        copy = i // len(MODEL_SPECS)
        specs.append((name if not copy else f"{name}_copy{copy}", model_type, params, extra))
    return specs


# --- (b) throughput ------------------------------------------------------------------------------


def live_coins(n_coins: int, at: pd.Timestamp, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n_coins`` synthetic coins, each shifted in time so that one of its rows at age ≥ 15 min lands in
    [at, at + 5 s): that row is the coin's new row; up to KEEP_HISTORY of the rows before it are history."""
    from pump_orchestration.data.synthetic import generate_coin_metrics

    rng = np.random.default_rng(seed)
    histories, news, got, round_ = [], [], 0, 0
    while got < n_coins:
        need = n_coins - got
        metrics, _ = generate_coin_metrics(n_coins=int(need * 2.3) + 50, start=f"{DAY}T00:00:00Z", hours=2,
                                           seed=seed * 1000 + round_)
        round_ += 1
        metrics = metrics.sort_values(["mint", "timestamp"]).reset_index(drop=True)
        age = metrics["timestamp"] - metrics.groupby("mint")["timestamp"].transform("min")
        eligible = metrics.index[age >= MIN_HISTORY]
        # one random eligible row per coin
        pick = (pd.Series(rng.random(len(eligible)), index=eligible).groupby(metrics.loc[eligible, "mint"].to_numpy())
                .idxmax())
        pick = pick.iloc[:need]
        target_ts = metrics.loc[pick.to_numpy(), "timestamp"].to_numpy()
        jitter = pd.to_timedelta(rng.uniform(0, 5.0, len(pick)), unit="s")
        shift = pd.Series((at + jitter) - pd.DatetimeIndex(target_ts, tz="UTC"), index=pick.index)
        chosen = metrics[metrics["mint"].isin(pick.index)].copy()
        chosen["timestamp"] = chosen["timestamp"] + chosen["mint"].map(shift)
        new_ts = chosen["mint"].map(pd.Series(at + jitter, index=pick.index))
        keep = (chosen["timestamp"] <= new_ts) & (chosen["timestamp"] >= new_ts - KEEP_HISTORY)
        chosen = chosen[keep]
        is_new = chosen["timestamp"] == new_ts[keep]
        histories.append(chosen[~is_new])
        news.append(chosen[is_new])
        got += len(pick)
    history = pd.concat(histories, ignore_index=True).sort_values(["timestamp", "mint"]).reset_index(drop=True)
    new = pd.concat(news, ignore_index=True).sort_values(["timestamp", "mint"]).reset_index(drop=True)
    assert new["mint"].is_unique and len(new) == n_coins
    return history, new


def vacuum_analyze(engine) -> None:
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE" if engine.dialect.name == "postgresql" else "ANALYZE")


def throughput_case(engine, receiver: Receiver, n_coins: int, at: pd.Timestamp, seed: int, profile: bool) -> dict:
    import sqlalchemy as sa

    from pump_orchestration.delivery.rounds import deliver_pending
    from pump_orchestration.delivery.webhooks import WebhookSender
    from pump_orchestration.live import service
    from pump_orchestration.warehouse import outbox
    from pump_orchestration.warehouse.coin_metrics import write_coin_metrics
    from pump_orchestration.warehouse.schema import coin_metrics_outbox

    t0 = time.perf_counter()
    history, new = live_coins(n_coins, at, seed)
    gen_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    write_coin_metrics(engine, history)
    with engine.begin() as conn:  # history is not news
        conn.execute(coin_metrics_outbox.delete().where(coin_metrics_outbox.c.batch_key.is_(None)))
    vacuum_analyze(engine)
    write_coin_metrics(engine, new)  # the tracker's insert: one new row per coin → the outbox
    with engine.begin() as conn:
        [(key, claimed)] = outbox.claim_batches(conn, batch_rows=n_coins, max_batches=1)
    setup_s = time.perf_counter() - t0
    per_coin = history.groupby("mint").size()
    new_ts = history["mint"].map(new.set_index("mint")["timestamp"])
    window_rows = int((history["timestamp"] > new_ts - MIN_HISTORY).sum())
    print(f"  {n_coins:,} coins: history {len(history):,} rows ({per_coin.median():.0f} median per coin; "
          f"{window_rows:,} inside the 15-min windows), {claimed:,} new rows in batch {key} "
          f"(generate {gen_s:.0f}s, write {setup_s:.0f}s)", flush=True)

    service.MODEL_CACHE.clear()  # a prediction run is a fresh process: it verifies and loads every artifact
    receiver.reset()
    profiler = cProfile.Profile() if profile else None
    t_start = time.time()
    p0 = time.perf_counter()
    if profiler:
        profiler.enable()
    summary = service.score_batch(engine, key, webhooks=True)
    if profiler:
        profiler.disable()
    commit_s = time.perf_counter() - p0
    t_committed = time.time()
    sender = WebhookSender(receiver.url, timeout=5.0, max_attempts=3)
    p1 = time.perf_counter()
    # All of this batch's webhooks in one round (the asset's round is capped at 500 rows / 20 s; see README).
    delivery = deliver_pending(engine, sender, keys=summary["keys"], limit=max(1, len(summary["keys"])),
                               budget_seconds=3600.0)
    deliver_s = time.perf_counter() - p1
    arrivals = receiver.first_arrival()
    with engine.connect() as conn:
        stored = conn.execute(sa.text("select count(*) from predictions p join coin_metrics_outbox o "
                                      "on o.mint = p.coin_id and o.timestamp = p.data_timestamp "
                                      "where o.batch_key = :k"), {"k": key}).scalar()
    result = {
        "coins": n_coins, "models": summary["active_models"], "predictions": summary["predictions"],
        "stored": stored, "skipped": len(summary["skipped"]), "history_rows": len(history),
        "commit_s": commit_s, "deliver_s": deliver_s, "stages": summary["seconds"],
        "webhooks": len(summary["keys"]), "delivered": delivery["delivered"], "received": len(arrivals),
        # score_batch returns after its commit, so every arrival after t_committed means "committed first".
        "first_webhook_after_commit_s": (min(arrivals.values()) - t_committed) if arrivals else float("nan"),
        "last_webhook_s": (max(arrivals.values()) - t_start) if arrivals else float("nan"),
        "models_unavailable": summary["models_unavailable"],
    }
    if profiler:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(30)
        result["profile"] = out.getvalue()
    if summary["skipped"]:
        reasons = pd.Series([s["reason"].split(";")[0] for s in summary["skipped"]]).value_counts()
        result["skip_reasons"] = reasons.head(5).to_dict()
    print(f"  {n_coins:,} coins x {result['models']} models: committed in {commit_s:.2f}s, webhooks delivered "
          f"in {deliver_s:.2f}s more", flush=True)
    return result


def run_throughput(server, tmp: Path, args) -> dict:
    data_dir = tmp / "throughput" / "data"
    engine, _ = new_warehouse(server, "postgres", "throughput", data_dir)
    receiver = Receiver()
    try:
        with env_vars(PUMP_DATA_DIR=str(data_dir)):
            training_market(engine)
            print(f"## throughput: training {args.models} models", flush=True)
            trained = train_and_activate(engine, data_dir, model_specs(args.models))
            cases, profiled = [], None
            for i, n in enumerate(args.coins):
                at = pd.Timestamp(f"{DAY}T12:00:00Z") + pd.Timedelta(days=1 + i)
                cases.append(throughput_case(engine, receiver, n, at, seed=100 + i, profile=False))
            if args.profile:  # an extra batch of the largest size: cProfile slows Python code, so it is not measured
                print("  extra batch under cProfile (not part of the figures)", flush=True)
                at = pd.Timestamp(f"{DAY}T12:00:00Z") + pd.Timedelta(days=1 + len(args.coins))
                profiled = throughput_case(engine, receiver, max(args.coins), at, seed=99, profile=True)
        return {"models": trained, "cases": cases, "profiled": profiled}
    finally:
        receiver.stop()
        engine.dispose()


# --- (a) latency ---------------------------------------------------------------------------------

TRIVIAL_LOCATION = '''\
"""Trivial code location of benchmarks/live_scoring.py: a sensor polls bench_events for new ids and launches
a run (in-process executor) whose op writes one bench_done row per id."""
import os
import time

import dagster as dg

KIND, TARGET = os.environ["BENCH_DB_KIND"], os.environ["BENCH_DB"]


def connect():
    if KIND == "postgres":
        import psycopg2
        return psycopg2.connect(TARGET)
    import sqlite3
    return sqlite3.connect(TARGET, timeout=30)


@dg.op(config_schema={"ids": [int]})
def mark_done(context):
    conn = connect()
    try:
        cur = conn.cursor()
        mark = "%s" if KIND == "postgres" else "?"
        now = time.time()
        for i in context.op_config["ids"]:
            cur.execute(f"INSERT INTO bench_done (event_id, done_at) VALUES ({mark}, {mark})", (i, now))
        conn.commit()
    finally:
        conn.close()


@dg.job(executor_def=dg.in_process_executor)
def trivial_job():
    mark_done()


@dg.sensor(job=trivial_job, minimum_interval_seconds=4, default_status=dg.DefaultSensorStatus.RUNNING)
def trivial_sensor(context):
    last = int(context.cursor or 0)
    conn = connect()
    try:
        cur = conn.cursor()
        cur.execute(f"SELECT id FROM bench_events WHERE id > {last} ORDER BY id")
        ids = [r[0] for r in cur.fetchall()]
    finally:
        conn.close()
    if not ids:
        return dg.SkipReason("no new events")
    key = f"{ids[0]}-{ids[-1]}"
    request = dg.RunRequest(run_key=f"ev-{key}", run_config={"ops": {"mark_done": {"config": {"ids": ids}}}},
                            tags={"bench/events": key})
    return dg.SensorResult(run_requests=[request], cursor=str(ids[-1]))


defs = dg.Definitions(jobs=[trivial_job], sensors=[trivial_sensor])
'''


@contextmanager
def trivial_servers(env: dict, workdir: Path, location_dir: Path):
    """dagster-webserver + dagster-daemon (the commands of testing.dagster_servers) on the trivial location."""
    from pump_orchestration.testing import free_port
    from pump_orchestration.testing.dagster_servers import BIN, _processes, _wait_http

    workspace = location_dir / "workspace.yaml"
    workspace.write_text(textwrap.dedent(f"""\
        load_from:
          - python_file:
              relative_path: trivial_location.py
              working_directory: {location_dir}
              location_name: trivial
        """))
    (location_dir / "trivial_location.py").write_text(TRIVIAL_LOCATION)
    port = free_port()
    commands = [[str(BIN / "dagster-webserver"), "-h", "127.0.0.1", "-p", str(port), "-w", str(workspace)],
                [str(BIN / "dagster-daemon"), "run", "-w", str(workspace)]]
    with _processes(commands, env, workdir) as procs:
        webserver, log = procs[0]
        _wait_http(f"http://127.0.0.1:{port}/server_info", webserver, log, 120)
        yield port


def run_events(home: Path, tag: str, value: str) -> dict[str, float]:
    """First timestamp of each event type of the run tagged ``tag=value`` (plus its status)."""
    import dagster as dg

    with dg.DagsterInstance.from_config(str(home)) as instance:
        records = instance.get_run_records(filters=dg.RunsFilter(tags={tag: value}))
        if not records:
            return {}
        run = records[-1].dagster_run  # the first run of the batch (a retry would be newer)
        out: dict[str, float] = {"runs": len(records), "status": run.status.value}
        for entry in instance.all_logs(run.run_id):
            if entry.dagster_event is not None:  # names as in DagsterEventType (values are legacy PIPELINE_*)
                out.setdefault(entry.dagster_event.event_type.name, entry.timestamp)
        return out


def breakdown(insert_t: float, done_t: float, ev: dict) -> dict[str, float]:
    """Split insert → done with the run's events (NaN where an event is missing)."""
    nan = float("nan")
    enq = ev.get("RUN_ENQUEUED", nan)
    starting = ev.get("RUN_STARTING", nan)
    start = ev.get("RUN_START", nan)
    step = ev.get("STEP_START", nan)
    return {"sensor tick (insert -> RUN_ENQUEUED)": enq - insert_t,
            "queue (-> RUN_STARTING)": starting - enq,
            "run process start (-> RUN_START)": start - starting,
            "step set-up (-> STEP_START)": step - start,
            "step until stored/done": done_t - step}


def wait_until(predicate, timeout: float, what: str, poll: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError(f"{what} not reached within {timeout:.0f}s")


def latency_ours(server, backend: str, tmp: Path, args) -> dict:
    import sqlalchemy as sa

    from pump_orchestration.delivery.webhooks import idempotency_key
    from pump_orchestration.testing.dagster_servers import dagster_home, dagster_processes
    from pump_orchestration.warehouse.coin_metrics import write_coin_metrics
    from pump_orchestration.warehouse.schema import coin_metrics_outbox

    base = tmp / f"latency_{backend}"
    data_dir = base / "data"
    engine, url = new_warehouse(server, backend, f"latency_{backend}", data_dir)
    receiver = Receiver()
    try:
        with env_vars(PUMP_DATA_DIR=str(data_dir)):
            arriving = training_market(engine)
            print(f"## latency ({backend}): training 2 models", flush=True)
            train_and_activate(engine, data_dir, [("lat_xgb", "xgboost", {}, {}), ("lat_rf", "random_forest", {}, {})])
        # One row per insert: the next rows, in time order, of the coins that already have 15 min of history
        # (a coin's rows arrive in order, so its history has no gaps).
        with engine.connect() as conn:
            first = conn.execute(sa.text("select mint, min(timestamp) from coin_metrics group by mint")).all()
        seen = pd.DataFrame(first, columns=["mint", "first"])
        seen["first"] = pd.to_datetime(seen["first"], utc=True, format="ISO8601")
        rows = arriving.merge(seen, on="mint")
        rows = rows[rows["timestamp"] - rows["first"] >= MIN_HISTORY].drop(columns="first")
        rows = rows.sort_values(["timestamp", "mint"]).reset_index(drop=True)
        n = WARMUP_INSERTS + args.inserts
        if len(rows) < n:
            raise RuntimeError(f"only {len(rows)} coins to insert rows for, need {n}")
        rows = rows.iloc[:n]
        home = dagster_home(base / "home")
        env = {"DAGSTER_HOME": str(home), "PUMP_DATA_DIR": str(data_dir), "PUMP_PARTITIONS_START": "2025-08-25",
               "N8N_WEBHOOK_URL": receiver.url, "SCORING_BATCH_ROWS": "40"}
        env.update({"PUMP_DEPLOYMENT": "production", "DB_DSN": url} if backend == "postgres" else
                   {"PUMP_DEPLOYMENT": "local", "DB_DSN": ""})
        print(f"## latency ({backend}): our code location under dagster-webserver + dagster-daemon; "
              f"{WARMUP_INSERTS} warm-up + {args.inserts} inserts every {args.spacing:g}s", flush=True)

        def scored_at(mint, ts):
            outbox = coin_metrics_outbox.c
            with engine.connect() as conn:
                value = conn.execute(sa.select(outbox.scored_at, outbox.batch_key)
                                     .where(outbox.mint == mint, outbox.timestamp == ts.to_pydatetime())).first()
            return tuple(value) if value is not None and value[0] is not None else None

        inserts = []
        workdir = base / "logs_ours"
        workdir.mkdir(parents=True, exist_ok=True)
        with dagster_processes(env, workdir, daemon=True):
            for i, row in rows.iterrows():
                frame = arriving[(arriving["mint"] == row["mint"]) & (arriving["timestamp"] == row["timestamp"])]
                if i < WARMUP_INSERTS:
                    write_coin_metrics(engine, frame)
                    t_ins = time.time()
                    wait_until(lambda: scored_at(row["mint"], row["timestamp"]), 300, f"warm-up insert {i} scored")
                    time.sleep(1.0)
                    continue
                if i == WARMUP_INSERTS:
                    schedule = time.monotonic()
                delay = schedule - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                schedule += args.spacing
                write_coin_metrics(engine, frame)
                t_ins = time.time()
                inserts.append({"mint": row["mint"], "timestamp": row["timestamp"], "insert": t_ins,
                                "key": idempotency_key(row["mint"], row["timestamp"])})
            print(f"  {len(inserts)} rows inserted; waiting for their predictions and webhooks", flush=True)
            keys = {x["key"] for x in inserts}
            wait_until(lambda: all(scored_at(x["mint"], x["timestamp"]) for x in inserts), 300, "every insert scored")
            try:
                wait_until(lambda: keys <= set(receiver.first_arrival()), 120, "every webhook received")
            except TimeoutError as exc:
                print(f"  {exc}", flush=True)
        arrivals = receiver.first_arrival()
        for x in inserts:
            stored, batch_key = scored_at(x["mint"], x["timestamp"])
            stored = pd.Timestamp(stored)
            stored = (stored.tz_localize("UTC") if stored.tzinfo is None else stored).timestamp()
            x["stored_t"] = stored
            x["stored"] = stored - x["insert"]
            x["webhook"] = arrivals.get(x["key"], float("nan")) - x["insert"]
            x["batch_key"] = batch_key
            ev = run_events(home, BATCH_TAG, batch_key)
            x["parts"] = breakdown(x["insert"], stored, ev)
            x["parts"]["stored -> webhook received"] = x["webhook"] - x["stored"]
            x["run_end_after_stored"] = ev.get("RUN_SUCCESS", float("nan")) - stored
            x["run_status"] = ev.get("status")
        with engine.connect() as conn:
            per_insert = conn.execute(sa.text("select count(*) from predictions")).scalar()
        with_stages = stage_seconds(home, {x["batch_key"] for x in inserts})
        return {"backend": backend, "inserts": inserts, "predictions": per_insert, "stages": with_stages,
                "batches": len({x["batch_key"] for x in inserts})}
    finally:
        receiver.stop()
        engine.dispose()


def stage_seconds(home: Path, batch_keys: set[str]) -> dict[str, float]:
    """Median of the predictions asset's ``stage_seconds`` metadata over the measured runs."""
    import dagster as dg

    values: dict[str, list[float]] = {}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for key in batch_keys:
            for record in instance.get_run_records(filters=dg.RunsFilter(tags={BATCH_TAG: key})):
                for entry in instance.all_logs(record.dagster_run.run_id):
                    event = entry.dagster_event
                    if event is not None and event.event_type.name == "ASSET_MATERIALIZATION":
                        meta = event.event_specific_data.materialization.metadata
                        stages = meta.get("stage_seconds")
                        for k, v in (stages.data if stages is not None else {}).items():
                            values.setdefault(k, []).append(float(v))
    return {k: float(np.median(v)) for k, v in values.items()}


def latency_trivial(server, backend: str, tmp: Path, args) -> dict:
    base = tmp / f"latency_{backend}" / "trivial"
    location_dir = base / "location"
    location_dir.mkdir(parents=True, exist_ok=True)
    if backend == "postgres":
        import psycopg2

        name = server.create_database(f"trivial_{backend}")
        target = server.url(name, driver="postgresql")

        def connect():
            return psycopg2.connect(target)

        ddl = ["CREATE TABLE bench_events (id BIGSERIAL PRIMARY KEY, inserted_at DOUBLE PRECISION)",
               "CREATE TABLE bench_done (event_id BIGINT PRIMARY KEY, done_at DOUBLE PRECISION)"]
        mark, returning = "%s", " RETURNING id"
    else:
        import sqlite3

        target = str(base / "trivial.sqlite")

        def connect():
            conn = sqlite3.connect(target, timeout=30)
            conn.execute("PRAGMA journal_mode=WAL")
            return conn

        ddl = ["CREATE TABLE bench_events (id INTEGER PRIMARY KEY AUTOINCREMENT, inserted_at REAL)",
               "CREATE TABLE bench_done (event_id INTEGER PRIMARY KEY, done_at REAL)"]
        mark, returning = "?", " RETURNING id"
    conn = connect()
    cur = conn.cursor()
    for statement in ddl:
        cur.execute(statement)
    conn.commit()

    from pump_orchestration.testing.dagster_servers import dagster_home

    home = dagster_home(base / "home")
    env = {"DAGSTER_HOME": str(home), "BENCH_DB_KIND": backend, "BENCH_DB": target}

    def insert() -> tuple[int, float]:
        cur.execute(f"INSERT INTO bench_events (inserted_at) VALUES ({mark}){returning}", (time.time(),))
        event_id = cur.fetchone()[0]
        conn.commit()
        return event_id, time.time()

    def done(event_id: int):
        c = connect()
        try:
            row = c.cursor()
            row.execute(f"SELECT done_at FROM bench_done WHERE event_id = {mark}", (event_id,))
            value = row.fetchone()
            return value[0] if value else None
        finally:
            c.close()

    print(f"## latency ({backend}): TRIVIAL code location on the same stack; {WARMUP_INSERTS} warm-up + "
          f"{args.inserts} inserts every {args.spacing:g}s", flush=True)
    inserts = []
    workdir = base / "logs"
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        with trivial_servers(env, workdir, location_dir):
            for i in range(WARMUP_INSERTS):
                event_id, _ = insert()
                wait_until(lambda: done(event_id), 300, f"trivial warm-up {i} done")
                time.sleep(1.0)
            schedule = time.monotonic()
            for _ in range(args.inserts):
                delay = schedule - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                schedule += args.spacing
                event_id, t_ins = insert()
                inserts.append({"id": event_id, "insert": t_ins})
            print(f"  {len(inserts)} events inserted; waiting for their done rows", flush=True)
            wait_until(lambda: all(done(x["id"]) for x in inserts), 300, "every trivial insert done")
        import dagster as dg

        with dg.DagsterInstance.from_config(str(home)) as instance:
            records = instance.get_run_records(filters=dg.RunsFilter(job_name="trivial_job"))
            keys = {int(k.split("-")[0]): (int(k.split("-")[0]), int(k.split("-")[1]))
                    for k in (r.dagster_run.tags.get(TRIVIAL_TAG) for r in records) if k}
        for x in inserts:
            done_t = done(x["id"])
            x["stored"] = done_t - x["insert"]
            key = next(f"{a}-{b}" for a, b in keys.values() if a <= x["id"] <= b)
            ev = run_events(home, TRIVIAL_TAG, key)
            x["parts"] = breakdown(x["insert"], done_t, ev)
            x["run_end_after_stored"] = ev.get("RUN_SUCCESS", float("nan")) - done_t
            x["run_status"] = ev.get("status")
        return {"backend": backend, "inserts": inserts}
    finally:
        conn.close()


# --- report --------------------------------------------------------------------------------------


def print_latency(ours: dict, trivial: dict) -> None:
    backend = ours["backend"]
    o, t = ours["inserts"], trivial["inserts"]
    print(f"\n### latency, {backend} warehouse ({len(o)} inserts ours in {ours['batches']} batches, "
          f"{len(t)} trivial; seconds)")
    print(f"{'':44s} {'p50':>7s} {'p95':>7s} {'min':>7s} {'max':>7s}")

    def line(label, values):
        print(f"{label:44s} {pct(values, 50):7.2f} {pct(values, 95):7.2f} {np.nanmin(values):7.2f} "
              f"{np.nanmax(values):7.2f}")

    line("ours: insert -> prediction stored", [x["stored"] for x in o])
    line("ours: insert -> webhook received", [x["webhook"] for x in o])
    line("trivial: insert -> done row", [x["stored"] for x in t])
    for q in (50, 95):
        s, w, d = pct([x["stored"] for x in o], q), pct([x["webhook"] for x in o], q), pct([x["stored"] for x in t], q)
        print(f"RATIO ours/trivial p{q}: stored {s / d:.2f}x, webhook {w / d:.2f}x (aim <= 1.3x)")
    print("where the time goes (median per insert of each part, from the runs' event logs; seconds):")
    parts = list(o[0]["parts"])
    print(f"  {'':42s} {'ours':>7s} {'trivial':>8s} {'ours - trivial':>15s}")
    for p in parts:
        a = pct([x["parts"][p] for x in o], 50)
        b = pct([x["parts"].get(p, float("nan")) for x in t], 50) if p in t[0]["parts"] else float("nan")
        print(f"  {p:42s} {a:7.2f} {b:8.2f} {a - b:15.2f}")
    print(f"  {'run ends after stored/done':42s} {pct([x['run_end_after_stored'] for x in o], 50):7.2f} "
          f"{pct([x['run_end_after_stored'] for x in t], 50):8.2f}")
    stages = ours["stages"]
    if stages:
        print("  ours, inside the step (median of the asset's stage_seconds): "
              + ", ".join(f"{k} {v:.3f}" for k, v in stages.items()))
    bad = [x for x in o + t if x.get("run_status") not in ("SUCCESS", None)]
    if bad:
        print(f"  runs not SUCCESS: {len(bad)}")


def print_throughput(th: dict) -> None:
    print("\n### throughput: one prediction run in process (score_batch, then deliver_pending)")
    types = {}
    for m in th["models"]:
        types[m["model_type"]] = types.get(m["model_type"], 0) + 1
    print(f"models: {len(th['models'])} ({', '.join(f'{v} {k}' for k, v in types.items())}): "
          + "; ".join(f"{m['name']}" + (f" {m['params']}" if m["params"] else "")
                      + (f" {m['extra']}" if m["extra"] else "") for m in th["models"]))
    for c in th["cases"]:
        s = c["stages"]
        total = c["commit_s"] + c["deliver_s"]
        known = {k: s.get(k, 0.0) for k in ("load_models", "load_history", "features", "inference", "write")}
        other = max(0.0, c["commit_s"] - sum(known.values()))
        print(f"\n{c['coins']:,} coins x {c['models']} models ({c['history_rows']:,} history rows): "
              f"{c['predictions']:,} predictions ({c['stored']:,} stored, {c['skipped']} skipped), "
              f"{c['webhooks']:,} webhooks ({c['delivered']:,} delivered, {c['received']:,} received)")
        print(f"  predictions committed after {c['commit_s']:.2f}s -> {c['coins'] * c['models'] / c['commit_s']:,.0f} "
              f"coin-models/s, {c['coins'] / c['commit_s'] * 60:,.0f} coins/min")
        print(f"  webhooks delivered {c['deliver_s']:.2f}s later ({c['webhooks'] / max(c['deliver_s'], 1e-9):,.0f}/s); "
              f"first webhook {c['first_webhook_after_commit_s'] * 1000:.0f} ms after the commit; "
              f"incl. webhooks {c['coins'] / total * 60:,.0f} coins/min")
        print("  time share (of committed + delivered = {:.2f}s):".format(total))
        rows = [("load models (verify sha256 + unpickle)", known["load_models"]),
                ("load history (coin_metrics)", known["load_history"]), ("features", known["features"]),
                ("inference", known["inference"]), ("database writes", known["write"]),
                ("outbox read, payloads, other", other), ("webhooks (post + log)", c["deliver_s"])]
        for label, v in rows:
            print(f"    {label:40s} {v:7.2f}s {100 * v / total:5.1f}%")
        if c.get("skip_reasons"):
            print(f"  skip reasons: {c['skip_reasons']}")
        if c["models_unavailable"]:
            print(f"  models unavailable: {c['models_unavailable']}")
        per_min = c["coins"] / c["commit_s"] * 60
        print(f"  aim >= 10,000 coins/min with predictions committed before any webhook: {per_min:,.0f} coins/min, "
              f"first webhook {'after' if c['first_webhook_after_commit_s'] > 0 else 'BEFORE'} the commit -> "
              f"{'met' if per_min >= 10_000 and c['first_webhook_after_commit_s'] > 0 else 'NOT met'}")
    if th.get("profiled"):
        c = th["profiled"]
        print(f"\ncProfile of score_batch on an extra batch of {c['coins']:,} coins (committed in {c['commit_s']:.2f}s "
              f"under the profiler; cumulative, top 30):")
        print(c["profile"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n\n".join(__doc__.split("\n\n")[-2:]))
    parser.add_argument("--coins", default="1000,10000", help="comma list of batch sizes (coins with a new row)")
    parser.add_argument("--models", type=int, default=10, help="active models in the throughput part")
    parser.add_argument("--inserts", type=int, default=20, help="measured single-row inserts per stack")
    parser.add_argument("--spacing", type=float, default=6.0, help="seconds between inserts")
    parser.add_argument("--backends", default="postgres", help="latency warehouses: postgres and/or sqlite")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-trivial", action="store_true", help="latency of our location only")
    parser.add_argument("--profile", action="store_true",
                        help="score one more batch of the largest size under cProfile and print its top functions")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs) and the PostgreSQL cluster")
    args = parser.parse_args(argv)
    args.coins = [int(c) for c in args.coins.split(",") if c.strip()]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    if set(backends) - {"postgres", "sqlite"}:
        parser.error("--backends: postgres and/or sqlite")

    from pump_orchestration.testing.postgres import start_postgres

    throughput = "skipped" if args.skip_throughput else f"coins {args.coins} x {args.models} models"
    latency = "skipped" if args.skip_latency else f"{backends}, {args.inserts} inserts every {args.spacing:g}s"
    print(f"# live scoring benchmark: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}; "
          f"throughput {throughput}; latency {latency}", flush=True)
    tmp = Path(tempfile.mkdtemp(prefix="pump_live_bench_"))
    server = start_postgres()
    results = {}
    try:
        if not args.skip_throughput:
            results["throughput"] = run_throughput(server, tmp, args)
        if not args.skip_latency:
            for backend in backends:
                ours = latency_ours(server, backend, tmp, args)
                trivial = None if args.skip_trivial else latency_trivial(server, backend, tmp, args)
                results.setdefault("latency", []).append((ours, trivial))
        print("\n## results")
        if "throughput" in results:
            print_throughput(results["throughput"])
        for ours, trivial in results.get("latency", []):
            if trivial is None:
                v = [x["stored"] for x in ours["inserts"]]
                print(f"\n### latency, {ours['backend']}: insert -> stored p50 {pct(v, 50):.2f}s p95 {pct(v, 95):.2f}s")
            else:
                print_latency(ours, trivial)
        print(f"\nload average at the end {os.getloadavg()[0]:.2f}")
    finally:
        if args.keep:
            print(f"kept {tmp} and PostgreSQL {server.url()} ({server.data_dir})")
        else:
            server.stop()
            shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
