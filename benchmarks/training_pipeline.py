"""Benchmark of the training pipeline on synthetic ``coin_metrics`` in a throwaway PostgreSQL.

Generates ``--rows`` rows with the synthetic generator, writes them to a fresh PostgreSQL cluster
(started from the local server binaries by ``pump_orchestration.testing.postgres``), then runs the
training chain with the same functions the Dagster assets call, but without Dagster and without the
parquet caches between assets:

    load_coin_metrics(window - look-back, window end)      -> coin_metrics_slice
    ml.pipeline.label_frame (rows < window end)            -> labelled_dataset
    ml.pipeline.feature_frame (features + row selection)   -> engineered_features
    ml.pipeline.fit_request (purged TimeSeriesSplit CV, SMOTE, final fit, evaluation) -> fitted_model

and prints time and peak memory per stage, PostgreSQL load rows/s, rows loaded vs rows written
(there is no row cap), the ratio (everything but model fitting) / (model fitting), and a
comparison of the loader with the loader before columnar loading (``BEFORE_COMMIT``, rows through a
server-side cursor) and with a naive ``pandas.read_sql`` of the same query. ``--json-out`` writes the
headline figures for ``training_scaling.py``.

With ``--baseline-rf`` it also fits scikit-learn's ``RandomForestClassifier`` defaults (``n_jobs``
= available cores) and the project's forests (``--rf-types``: ``random_forest_hist``,
``random_forest``) on the same matrix, stopping the baseline at ``--rf-budget`` seconds, and prints
each time ratio with the ROC-AUC difference. See ``benchmarks/README.md`` for the meaning of every figure.

    .venv/bin/python benchmarks/training_pipeline.py --rows 1000000
    .venv/bin/python benchmarks/training_pipeline.py --rows 500000 --stages load,labels,features \\
        --baseline-rf --rf-budget 100000
    .venv/bin/python benchmarks/training_pipeline.py --rows 5000000 --stages load,labels,features
"""
from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import threading
import time
from contextlib import contextmanager

import numpy as np
import pandas as pd

from pump_orchestration.vocabulary import IMBALANCE_METHODS

#: Average rows per coin of the synthetic generator (short-lived coins: ~138 rows each).
ROWS_PER_COIN = 138
#: Rows per simulated day when --hours is not given (a busy tracker writes a few million a day).
ROWS_PER_DAY = 1_000_000
DATA_START = pd.Timestamp("2025-09-01T00:00:00Z")
STAGES = ("load", "labels", "features", "fit")
BASE_FEATURES = ("price_open", "price_high", "price_low", "price_close", "volume_sol", "buy_volume_sol",
                 "sell_volume_sol")
_PAGE_KB = os.sysconf("SC_PAGE_SIZE") / 1024
#: Last commit whose ``load_coin_metrics`` read PostgreSQL row by row (psycopg2 server-side cursor).
BEFORE_COMMIT = "0a1a594"


# --- memory --------------------------------------------------------------------------------------


def rss_kb() -> int:
    """Current resident set size of this process (KiB), from /proc/self/statm."""
    with open("/proc/self/statm") as fh:
        return int(int(fh.read().split()[1]) * _PAGE_KB)


def maxrss_kb() -> int:
    """High-water mark of this process's RSS (KiB; Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class RssSampler:
    """Samples RSS every ``interval`` seconds in a daemon thread; ``peak()`` since the last ``reset()``."""

    def __init__(self, interval: float = 0.02):
        self.interval = interval
        self._peak = rss_kb()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            value = rss_kb()
            if value > self._peak:
                self._peak = value

    def reset(self) -> None:
        self._peak = rss_kb()

    def peak(self) -> int:
        return max(self._peak, rss_kb())

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def mib(kb: float) -> str:
    return f"{kb / 1024:,.0f} MiB"


# --- stage bookkeeping ---------------------------------------------------------------------------


class Recorder:
    """Wall time (perf_counter) and peak RSS (sampled) of named stages."""

    def __init__(self, sampler: RssSampler):
        self.sampler = sampler
        self.rows: list[dict] = []

    @contextmanager
    def stage(self, name: str, group: str):
        self.sampler.reset()
        start_rss = rss_kb()
        t0 = time.perf_counter()
        record = {"stage": name, "group": group}
        try:
            yield record
        finally:
            record["seconds"] = time.perf_counter() - t0
            record["rss_start_kb"] = start_rss
            record["peak_rss_kb"] = self.sampler.peak()
            record["rss_end_kb"] = rss_kb()
            self.rows.append(record)

    def add(self, name: str, group: str, seconds: float, **extra) -> None:
        self.rows.append({"stage": name, "group": group, "seconds": seconds, **extra})

    def seconds(self, group: str) -> float:
        return sum(r["seconds"] for r in self.rows if r["group"] == group)


# --- database ------------------------------------------------------------------------------------


def generate_and_write(engine, n_coins: int, hours: float, seed: int, batch_coins: int) -> dict:
    """Generate coins in batches and COPY them into coin_metrics; returns timings and counts."""
    from pump_orchestration.data.synthetic import iter_coin_metrics
    from pump_orchestration.warehouse.coin_metrics import write_coin_metrics

    gen_s = write_s = 0.0
    written = 0
    t0 = time.perf_counter()
    batches = iter_coin_metrics(n_coins=n_coins, start=DATA_START, hours=hours, seed=seed, batch_coins=batch_coins)
    gen_s += time.perf_counter() - t0
    last = time.perf_counter()
    first_ts = last_ts = None
    for batch in batches:
        now = time.perf_counter()
        gen_s += now - last
        first_ts = batch["timestamp"].min() if first_ts is None else min(first_ts, batch["timestamp"].min())
        last_ts = batch["timestamp"].max() if last_ts is None else max(last_ts, batch["timestamp"].max())
        written += write_coin_metrics(engine, batch)
        last = time.perf_counter()
        write_s += last - now
        print(f"  written {written:,} rows (generate {gen_s:.0f}s, write {write_s:.0f}s)", flush=True)
    return {"generate_seconds": gen_s, "write_seconds": write_s, "rows_written": written,
            "first_ts": first_ts, "last_ts": last_ts}


def naive_sql(columns: list[str]) -> str:
    """The loader's query as one plain SQL string (same columns, filter and order)."""
    cols = ", ".join(f'"{c}"' for c in columns)
    return (f'SELECT {cols} FROM coin_metrics WHERE "timestamp" >= %(start)s AND "timestamp" < %(end)s '
            f'ORDER BY "timestamp", mint COLLATE "C"')


def probe_load(kind: str, dsn: str, start: str, end: str) -> dict:
    """Run in a fresh child process: one load, its time and the memory it added to the process."""
    import sqlalchemy as sa

    from pump_orchestration.warehouse.coin_metrics import available_columns, load_coin_metrics
    from pump_orchestration.warehouse.db import make_engine

    engine = make_engine(dsn)
    columns = available_columns(engine)  # also opens the pooled connection before measuring
    start_ts, end_ts = pd.Timestamp(start), pd.Timestamp(end)
    base = rss_kb()
    sampler = RssSampler()
    t0 = time.perf_counter()
    if kind == "loader":
        df = load_coin_metrics(engine, start_ts, end_ts)
    elif kind == "loader_before":
        df = _loader_before().load_coin_metrics(engine, start_ts, end_ts)
    else:
        with engine.connect() as conn:
            df = pd.read_sql(sa.text(naive_sql(columns).replace("%(start)s", ":start").replace("%(end)s", ":end")),
                             conn, params={"start": start_ts.to_pydatetime(), "end": end_ts.to_pydatetime()})
    seconds = time.perf_counter() - t0
    peak = sampler.peak()
    sampler.stop()
    return {
        "kind": kind, "seconds": seconds, "rows": len(df), "rss_before_kb": base, "peak_rss_kb": peak,
        "maxrss_kb": maxrss_kb(), "frame_bytes": int(df.memory_usage(deep=True).sum()),
        "dtypes": {str(k): int(v) for k, v in df.dtypes.astype(str).value_counts().items()},
    }


def _loader_before():
    """``warehouse.coin_metrics`` as of ``BEFORE_COMMIT``, imported from git (the before of before/after)."""
    import importlib.util
    import tempfile

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    source = subprocess.run(["git", "-C", root, "show", f"{BEFORE_COMMIT}:pump_orchestration/warehouse/coin_metrics.py"],
                            capture_output=True, text=True, check=True).stdout
    path = os.path.join(tempfile.mkdtemp(), "coin_metrics_before.py")
    with open(path, "w") as fh:
        fh.write(source)
    spec = importlib.util.spec_from_file_location("coin_metrics_before", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run_probe(kind: str, dsn: str, start: pd.Timestamp, end: pd.Timestamp) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--probe-load", kind, "--dsn", dsn, "--window-start", start.isoformat(),
         "--window-end", end.isoformat()],
        capture_output=True, text=True, check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- random forest head-to-head ------------------------------------------------------------------


def rf_head_to_head(inputs_X: pd.DataFrame, y: pd.Series, ts: pd.Series, ours: dict[str, dict], budget: float,
                    random_state: int = 42) -> list[dict]:
    """The project's forests vs sklearn's default forest on the same (rebalanced, chronological 80 %) matrix.

    ``ours`` maps each project model type to its defaults (as in ``ref_model_types``). The baseline is
    ``RandomForestClassifier()`` with only ``n_jobs = available_cores()`` set (the project gives its own
    forests the same threads). It is grown with ``warm_start``, ``n_jobs`` trees per ``fit`` call: the
    trees are those of one ``fit`` with the same random_state (sklearn skips the random draws of the
    trees it already has), so the cost per tree is the default's, and growing stops once ``budget``
    seconds are used; the time for 100 trees is then extrapolated (and its ROC-AUC is not comparable).
    """
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.metrics import f1_score, roc_auc_score

    from pump_orchestration.ml.models import RF_BOOTSTRAP_ROWS, available_cores, build_estimator
    from pump_orchestration.ml.training import rebalance

    order = np.argsort(ts.to_numpy(dtype="datetime64[ns]"), kind="stable")
    cut = int(len(order) * 0.8)
    train, test = order[:cut], order[cut:]
    X_train, y_train, _ = rebalance(inputs_X.iloc[train].reset_index(drop=True),
                                    y.iloc[train].reset_index(drop=True), random_state)
    X_fit = np.ascontiguousarray(X_train.to_numpy(dtype=np.float32))
    y_fit = y_train.to_numpy()
    X_test = np.ascontiguousarray(inputs_X.iloc[test].to_numpy(dtype=np.float32))
    y_test = y.iloc[test].to_numpy()
    n = len(y_fit)
    print(f"  RF matrix: {n:,} rows x {X_fit.shape[1]} features (rebalanced first 80 % by time); "
          f"test {len(y_test):,} rows", flush=True)

    def quality(model) -> dict:
        proba = model.predict_proba(X_test)[:, list(model.classes_).index(1)]
        return {"test_f1": f1_score(y_test, (proba >= 0.5).astype(int), zero_division=0),
                "test_roc_auc": roc_auc_score(y_test, proba)}

    results = []
    for model_type, defaults in ours.items():
        model = build_estimator(model_type, defaults, random_state=random_state, n_samples=n)
        p = model.get_params()
        settings = ", ".join(f"{k}={p[k]}" for k in (*defaults, "n_jobs") if k in p)
        if model_type == "random_forest":
            rows = n if p["max_samples"] is None else round(p["max_samples"] * n)
            settings += f", max_samples={rows:,} rows (cap {RF_BOOTSTRAP_ROWS:,})"
        t0 = time.perf_counter()
        model.fit(X_fit, y_fit)
        seconds = time.perf_counter() - t0
        results.append({"name": model_type, "trees": p["n_estimators"], "seconds": seconds, "complete": True,
                        "settings": settings, **quality(model)})
        print(f"  RF {model_type}: {seconds:.1f}s", flush=True)
        del model

    n_jobs = available_cores()
    baseline = RandomForestClassifier(random_state=random_state, n_jobs=n_jobs)  # otherwise the defaults
    p = baseline.get_params()
    target = p["n_estimators"]
    baseline.set_params(warm_start=True, n_estimators=0)
    elapsed, trees = 0.0, 0
    while trees < target and elapsed < budget:
        trees = min(target, trees + n_jobs)
        baseline.set_params(n_estimators=trees)
        t0 = time.perf_counter()
        baseline.fit(X_fit, y_fit)
        elapsed += time.perf_counter() - t0
        if trees <= 2 * n_jobs or trees % 10 == 0:
            print(f"  RF sklearn defaults: {trees} trees in {elapsed:.0f}s", flush=True)
    results.append({"name": "sklearn defaults", "trees": trees, "seconds": elapsed, "complete": trees >= target,
                    "extrapolated_seconds": elapsed / trees * target,
                    "settings": f"n_estimators={target}, max_depth={p['max_depth']}, n_jobs={n_jobs}, "
                                f"max_samples={p['max_samples']} (= {n:,} rows per tree)",
                    "depth_mean": float(np.mean([e.get_depth() for e in baseline.estimators_])),
                    **quality(baseline)})
    return results


def smote_head_to_head(inputs_X: pd.DataFrame, y: pd.Series, ts: pd.Series, xgboost_defaults: dict,
                       random_state: int = 42) -> list[dict]:
    """SMOTE + under-sampling three ways on the same chronological 80 % of the matrix, each followed by the
    same XGBoost fit and tested on the last 20 %: imbalanced-learn's two samplers (the code before), the
    project's ``rebalance`` with one block of neighbours (exact, as imbalanced-learn) and with its blocks.

    Peak = the largest memory allocated above what was allocated before the resampling, traced with
    ``tracemalloc`` (numpy reports its arrays to it): RSS cannot tell, because each variant reuses the pages
    the previous one freed.
    """
    import tracemalloc

    from imblearn.over_sampling import SMOTE
    from imblearn.under_sampling import RandomUnderSampler
    from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

    from pump_orchestration.ml.models import build_estimator
    from pump_orchestration.ml.training import SMOTE_NEIGHBOUR_BLOCK_ROWS, rebalance

    order = np.argsort(ts.to_numpy(dtype="datetime64[ns]"), kind="stable")
    cut = int(len(order) * 0.8)
    X_part, y_part = inputs_X.iloc[order[:cut]].reset_index(drop=True), y.iloc[order[:cut]].reset_index(drop=True)
    X_test, y_test = inputs_X.iloc[order[cut:]], y.iloc[order[cut:]].to_numpy()
    minority = int(min(y_part.sum(), len(y_part) - y_part.sum()))
    part_bytes = X_part.shape[0] * X_part.shape[1] * 8
    print(f"  SMOTE part: {len(y_part):,} rows, minority {minority:,}, {part_bytes / 2**20:,.0f} MiB; "
          f"test {len(y_test):,} rows", flush=True)

    def imbalanced_learn():
        X_res, y_res = SMOTE(sampling_strategy=0.5, k_neighbors=min(5, minority - 1),
                             random_state=random_state).fit_resample(X_part, y_part)
        return RandomUnderSampler(sampling_strategy=1.0, random_state=random_state).fit_resample(X_res, y_res)

    variants = (
        ("imbalanced-learn", "exact", imbalanced_learn),
        ("ours exact", "exact", lambda: rebalance(X_part, y_part, random_state, neighbour_block_rows=minority)[:2]),
        ("ours blocked", f"blocks of {SMOTE_NEIGHBOUR_BLOCK_ROWS:,}",
         lambda: rebalance(X_part, y_part, random_state)[:2]),
    )
    results, reference = [], None
    tracemalloc.start()
    for name, search, resample in variants:
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        t0 = time.perf_counter()
        X_res, y_res = resample()
        smote_s = time.perf_counter() - t0
        peak_kb = (tracemalloc.get_traced_memory()[1] - before) / 1024
        same = None
        if reference is None:
            reference = X_res.to_numpy()
        elif search == "exact":
            same = bool(np.array_equal(X_res.to_numpy(), reference))
        model = build_estimator("xgboost", xgboost_defaults, random_state=random_state, n_samples=len(y_res))
        t0 = time.perf_counter()
        model.fit(X_res, y_res)
        fit_s = time.perf_counter() - t0
        proba = model.predict_proba(X_test)[:, 1]
        results.append({"name": name, "search": search, "smote_seconds": smote_s, "peak_kb": peak_kb,
                        "part_bytes": part_bytes, "fit_seconds": fit_s, "rows": len(y_res), "same": same,
                        "test_f1": f1_score(y_test, (proba >= 0.5).astype(int)),
                        "test_roc_auc": roc_auc_score(y_test, proba),
                        "test_pr_auc": average_precision_score(y_test, proba)})
        print(f"  SMOTE {name}: resample {smote_s:.1f}s (peak +{mib(peak_kb)}), fit {fit_s:.1f}s", flush=True)
        del X_res, y_res, model
    tracemalloc.stop()
    return results


# --- the pipeline --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="target number of coin_metrics rows")
    parser.add_argument("--coins", type=int, default=None, help=f"coins (default rows / {ROWS_PER_COIN})")
    parser.add_argument("--hours", type=float, default=None,
                        help=f"hours of simulated launches (default 24 per {ROWS_PER_DAY:,} rows, whole days)")
    parser.add_argument("--model-type", default="xgboost")
    parser.add_argument("--cv-splits", type=int, default=5)
    parser.add_argument("--imbalance", choices=IMBALANCE_METHODS, default="smote",
                        help="the request's imbalance method (default smote, as a request that gives none)")
    parser.add_argument("--phases", default="", help="comma list of phase ids to train on (default: all)")
    parser.add_argument("--stages", default=",".join(STAGES), help=f"subset of {','.join(STAGES)}")
    parser.add_argument("--n-jobs", type=int, default=None,
                        help="n_jobs passed to fit_request (default: none = every core, as the fitted_model asset does)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-coins", type=int, default=2000, help="coins per generated/written batch")
    parser.add_argument("--baseline-rf", action="store_true",
                        help="also fit sklearn's untouched RandomForestClassifier defaults vs ours on the same matrix")
    parser.add_argument("--rf-budget", type=float, default=600.0, help="seconds after which the baseline RF stops")
    parser.add_argument("--rf-types", default="random_forest_hist,random_forest",
                        help="the project's model types fitted against the baseline RF (comma list)")
    parser.add_argument("--smote-head-to-head", action="store_true",
                        help="also compare SMOTE's blocked neighbour search with the exact one on the same matrix")
    parser.add_argument("--no-read-sql", action="store_true", help="skip the pandas.read_sql comparison")
    parser.add_argument("--keep-db", action="store_true", help="leave the PostgreSQL cluster running at the end")
    parser.add_argument("--json-out", help="write the headline figures as JSON to this file")
    parser.add_argument("--probe-load", choices=("loader", "loader_before", "read_sql"), help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    parser.add_argument("--window-start", help=argparse.SUPPRESS)
    parser.add_argument("--window-end", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    if args.probe_load:
        print(json.dumps(probe_load(args.probe_load, args.dsn, args.window_start, args.window_end)))
        return 0

    stages = [s.strip() for s in args.stages.split(",") if s.strip()]
    unknown = sorted(set(stages) - set(STAGES))
    if unknown:
        parser.error(f"unknown stage(s) {unknown}; choose from {STAGES}")
    if stages != list(STAGES[:len(stages)]):
        parser.error(f"--stages must be a prefix of {','.join(STAGES)} (each stage needs the previous one)")
    n_coins = args.coins or max(1, round(args.rows / ROWS_PER_COIN))
    hours = args.hours or 24.0 * max(1, math.ceil(args.rows / ROWS_PER_DAY))
    days = max(1, math.ceil(hours / 24.0))

    import sqlalchemy as sa

    from pump_orchestration import settings
    from pump_orchestration.ml.dataset import FUTURE_CHANGE, LABEL, feature_columns
    from pump_orchestration.ml.pipeline import feature_frame, fit_request, label_frame
    from pump_orchestration.ml.request import TrainingRequest, resolve_window
    from pump_orchestration.testing.postgres import start_postgres
    from pump_orchestration.warehouse import repository
    from pump_orchestration.warehouse.coin_metrics import load_coin_metrics
    from pump_orchestration.warehouse.db import init_schema, make_engine

    request = TrainingRequest(
        name="benchmark", model_type=args.model_type, target_var="price_close", features=BASE_FEATURES,
        phases=tuple(int(p) for p in args.phases.split(",") if p.strip()), use_time_based_prediction=True,
        future_minutes=10, min_percent_change=30.0, direction="up", use_engineered_features=True,
        feature_engineering_windows=(5, 10, 15), imbalance=args.imbalance, use_timeseries_split=True,
        cv_splits=args.cv_splits,
    )
    window_start = DATA_START.floor("D")
    window_end = window_start + pd.Timedelta(days=days)
    # The training window inside the selected days, as the labelled_dataset asset resolves it.
    train_start, train_end = resolve_window(request, window_start, window_end)
    lookback = settings.feature_lookback_minutes()

    print(f"# training pipeline benchmark: target {args.rows:,} rows = {n_coins:,} coins over {hours:g} h; "
          f"window [{window_start.isoformat()}, {window_end.isoformat()}) + {lookback} min look-back; "
          f"model {args.model_type}, {args.cv_splits}-fold TimeSeriesSplit, imbalance {args.imbalance}, "
          f"engineered windows 5/10/15; "
          f"stages {','.join(stages)}; n_jobs {args.n_jobs}; {os.cpu_count()} CPUs; load chunk {settings.load_chunk_rows():,} rows",
          flush=True)
    sampler = RssSampler()
    rec = Recorder(sampler)
    server = start_postgres()
    try:
        dbname = server.create_database("pump_benchmark")
        dsn = server.url(dbname)
        engine = make_engine(dsn)
        init_schema(engine, create_coin_metrics=True)

        # --- data (not part of the pipeline ratio) ---
        print("## generate + write", flush=True)
        info = generate_and_write(engine, n_coins, hours, args.seed, args.batch_coins)
        rec.add("generate (synthetic)", "data", info["generate_seconds"])
        rec.add("write (COPY + INSERT)", "data", info["write_seconds"],
                note=f"{info['rows_written'] / info['write_seconds']:,.0f} rows/s")
        t0 = time.perf_counter()
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM ANALYZE coin_metrics")
        rec.add("VACUUM ANALYZE", "data", time.perf_counter() - t0)
        load_start = window_start - pd.Timedelta(minutes=lookback)
        with engine.connect() as conn:
            rows_in_db = conn.execute(sa.text("SELECT count(*) FROM coin_metrics")).scalar_one()
            rows_in_range = conn.execute(
                sa.text('SELECT count(*) FROM coin_metrics WHERE "timestamp" >= :a AND "timestamp" < :b'),
                {"a": load_start.to_pydatetime(), "b": window_end.to_pydatetime()}).scalar_one()
            table_bytes = conn.execute(sa.text("SELECT pg_total_relation_size('coin_metrics')")).scalar_one()
        print(f"  rows written {info['rows_written']:,}; in table {rows_in_db:,}; in load range {rows_in_range:,}; "
              f"data {info['first_ts']} .. {info['last_ts']}; table+indexes {table_bytes / 2**20:,.0f} MiB", flush=True)
        rss_before_pipeline = rss_kb()

        # --- pipeline: the functions the assets call ---
        print("## pipeline", flush=True)
        result = ef = None
        with rec.stage("load (coin_metrics_slice)", "prep") as r:
            slice_df = load_coin_metrics(engine, load_start, window_end)
        rows_loaded = len(slice_df)
        r["note"] = f"{rows_loaded / r['seconds']:,.0f} rows/s, {slice_df.attrs.get('chunks')} chunks"
        slice_bytes = int(slice_df.memory_usage(deep=True).sum())
        print(f"  loaded {rows_loaded:,} rows in {r['seconds']:.1f}s", flush=True)

        if "labels" in stages:
            with rec.stage("labels (labelled_dataset)", "prep") as r:
                labelled = label_frame(slice_df, request, train_end)
            del slice_df
            in_window = labelled["timestamp"] >= train_start
            r["note"] = (f"{int(labelled.loc[in_window, LABEL].notna().sum()):,} labelled, "
                         f"{int((labelled.loc[in_window, LABEL] == 1).sum()):,} positive")
            print(f"  labels in {r['seconds']:.1f}s: {r['note']}", flush=True)

        if "features" in stages:
            with rec.stage("features (engineered_features)", "prep") as r:
                ef, feature_names, skipped, stats = feature_frame(labelled, request, train_start, train_end)
            del labelled
            r["note"] = (f"{len(feature_names)} features x {len(ef):,} rows used of {stats['rows_in_window']:,} "
                         f"in window ({stats['rows_unlabelled']:,} unlabelled, "
                         f"{stats['rows_dropped_non_finite']:,} dropped non-finite)")
            print(f"  features in {r['seconds']:.1f}s: {r['note']}", flush=True)

        with engine.connect() as conn:
            defaults = repository.get_model_type_defaults(conn, request.model_type)
        if "fit" in stages:
            with rec.stage("fit_request (fitted_model)", "train") as r:
                t_fit = time.perf_counter()
                trained = fit_request(
                    feature_columns(ef, feature_names), ef[LABEL], ef["timestamp"], ef[FUTURE_CHANGE], request,
                    params={**defaults, **request.params}, train_start=train_start, train_end=train_end,
                    dataset_stats=stats, skipped_features=skipped, n_jobs=args.n_jobs, mints=ef["mint"],
                    progress=lambda fraction, message: print(
                        f"    {time.perf_counter() - t_fit:7.1f}s RSS {mib(rss_kb())}, peak {mib(sampler.peak())}: "
                        f"{message}", flush=True),
                )
            result = trained.result
            fit_stage_s = r["seconds"]
            t = result.timings
            r["note"] = (f"cv {t['cv_seconds']:.1f}s + fit {t['fit_seconds']:.1f}s + final fit on all rows "
                         f"{t['final_fit_seconds']:.1f}s; test f1 "
                         f"{result.metrics['f1']:.3f}, roc_auc {result.metrics['roc_auc']:.3f}")
            print(f"  fit_request in {r['seconds']:.1f}s: {r['note']}", flush=True)

        peak_pipeline = maxrss_kb()
        # The model matrix as fit_request receives it (float64 rows used x features).
        matrix_bytes = len(ef) * len(feature_names) * 8 if ef is not None else None

        # --- loader vs naive read_sql, each in a fresh process ---
        probes = []
        if not args.no_read_sql:
            print("## load comparison (fresh processes)", flush=True)
            for kind in ("loader", "loader_before", "read_sql"):
                probes.append(run_probe(kind, dsn, load_start, window_end))
                print(f"  {kind}: {probes[-1]['seconds']:.1f}s", flush=True)

        rf = None
        if args.baseline_rf and ef is not None:
            print("## random forest: ours vs sklearn defaults on the same matrix", flush=True)
            with engine.connect() as conn:
                rf_ours = {t: repository.get_model_type_defaults(conn, t) for t in args.rf_types.split(",")}
            rf = rf_head_to_head(ef[feature_names], ef[LABEL], ef["timestamp"], rf_ours, args.rf_budget)

        smote = None
        if args.smote_head_to_head and ef is not None:
            print("## SMOTE: imbalanced-learn vs ours (exact and blocked) on the same matrix", flush=True)
            with engine.connect() as conn:
                xgboost_defaults = repository.get_model_type_defaults(conn, "xgboost")
            smote = smote_head_to_head(feature_columns(ef, feature_names), ef[LABEL], ef["timestamp"],
                                       xgboost_defaults)

        # --- report ---
        print("\n## results")
        print(f"{'stage':44s} {'seconds':>9s} {'peak RSS':>11s} {'RSS after':>11s}  note")
        for row in rec.rows:
            peak = mib(row["peak_rss_kb"]) if "peak_rss_kb" in row else "-"
            after = mib(row["rss_end_kb"]) if "rss_end_kb" in row else "-"
            print(f"{row['stage']:44s} {row['seconds']:9.1f} {peak:>11s} {after:>11s}  {row.get('note', '')}")
        prep = rec.seconds("prep")
        print()
        print(f"rows written {info['rows_written']:,} | rows in load range (SQL count) {rows_in_range:,} | "
              f"rows loaded {rows_loaded:,} -> {'ALL rows loaded, no cap' if rows_loaded == rows_in_range else 'MISMATCH'}")
        load_s = rec.rows[[r["stage"] for r in rec.rows].index("load (coin_metrics_slice)")]["seconds"]
        print(f"load: {rows_loaded / load_s:,.0f} rows/s; slice frame {slice_bytes / 2**20:,.0f} MiB "
              f"= {slice_bytes / rows_loaded:,.0f} B/row")
        if result is not None:
            t = result.timings
            fitting = result.fitting_seconds
            checks = fit_stage_s - fitting
            non_fit = prep + checks
            print(f"fit_request: cv ({request.cv_splits} folds: {args.imbalance} + fit + score) {t['cv_seconds']:.1f}s, evaluation "
                  f"fit {t['fit_seconds']:.1f}s, final fit on all rows {t['final_fit_seconds']:.1f}s; "
                  f"checks/resampling/eval {checks:.1f}s (resample "
                  f"{t['resample_seconds']:.1f}, predict {t['predict_seconds']:.1f}, evaluate {t['evaluate_seconds']:.1f})")
            print(f"RATIO (load+labels+features+checks) / (model fitting) = {non_fit:.1f}s / {fitting:.1f}s "
                  f"= {non_fit / fitting:.3f}")
            evaluation_s = t["threshold_seconds"] + t["rule_baseline_seconds"]
            print(f"evaluation on the out-of-fold rows: operating point {t['threshold_seconds']:.1f}s + rule "
                  f"baseline {t['rule_baseline_seconds']:.1f}s = {evaluation_s:.1f}s = "
                  f"{evaluation_s / fitting:.1%} of model fitting")
        else:
            print(f"(no fitting stage) {'+'.join(stages)} = {prep:.1f}s")
        print(f"peak RSS of the pipeline process (ru_maxrss): {mib(peak_pipeline)}; RSS before the pipeline "
              f"{mib(rss_before_pipeline)}; per loaded row {peak_pipeline * 1024 / rows_loaded:,.0f} B "
              f"(above the pre-pipeline RSS: {(peak_pipeline - rss_before_pipeline) * 1024 / rows_loaded:,.0f} B)")
        if probes:
            print("\nload of the same rows in a fresh process (peak = RSS added above the process's RSS before the load):")
            for p in probes:
                print(f"  {p['kind']:9s} {p['seconds']:7.1f}s  {p['rows'] / p['seconds']:>10,.0f} rows/s  "
                      f"peak +{mib(p['peak_rss_kb'] - p['rss_before_kb'])}  frame {p['frame_bytes'] / 2**20:,.0f} MiB  "
                      f"rows {p['rows']:,}  dtypes {p['dtypes']}")
            a = probes[0]
            for b in probes[1:]:
                print(f"RATIO {b['kind']} / loader: time {b['seconds'] / a['seconds']:.2f}x, peak memory "
                      f"{(b['peak_rss_kb'] - b['rss_before_kb']) / (a['peak_rss_kb'] - a['rss_before_kb']):.2f}x")
        if rf:
            print("\nrandom forest, one fit on the same matrix:")
            for x in rf:
                status = (f"{x['seconds']:.1f}s" if x["complete"] else
                          f"> {args.rf_budget:.0f}s budget ({x['trees']} of 100 trees in {x['seconds']:.0f}s; "
                          f"extrapolated {x['extrapolated_seconds']:.0f}s for 100)")
                extra = f", mean tree depth {x['depth_mean']:.0f}" if "depth_mean" in x else ""
                print(f"  {x['name']:17s} {status}; test f1 {x['test_f1']:.3f}, roc_auc {x['test_roc_auc']:.3f} "
                      f"[{x['settings']}{extra}]")
            *ours, base = rf
            for x in ours:
                print(f"RATIO sklearn-defaults / {x['name']} (100 trees, extrapolated if cut): "
                      f"{base['extrapolated_seconds'] / x['seconds']:.1f}x; ROC-AUC difference "
                      f"{x['test_roc_auc'] - base['test_roc_auc']:+.3f}"
                      f"{'' if base['complete'] else ' (baseline cut: not like for like)'}")
        if smote:
            print("\nSMOTE + under-sampling, then XGBoost, on the same chronological 80 %, tested on the last 20 %:")
            for x in smote:
                same = "" if x["same"] is None else f"; rows {'identical to' if x['same'] else 'DIFFER from'} imbalanced-learn's"
                print(f"  {x['name']:16s} {x['search']:16s}: resample {x['smote_seconds']:7.1f}s, peak "
                      f"+{mib(x['peak_kb'])} = {x['peak_kb'] * 1024 / x['part_bytes']:.2f}x the part; fit "
                      f"{x['fit_seconds']:6.1f}s on {x['rows']:,} rows; test f1 {x['test_f1']:.4f}, roc_auc "
                      f"{x['test_roc_auc']:.4f}, pr_auc {x['test_pr_auc']:.4f}{same}")
            library, exact, blocked = smote
            print(f"RATIO resample time imbalanced-learn / ours blocked: "
                  f"{library['smote_seconds'] / blocked['smote_seconds']:.2f}x (ours exact: "
                  f"{library['smote_seconds'] / exact['smote_seconds']:.2f}x); peak memory "
                  f"{library['peak_kb'] / max(blocked['peak_kb'], 1):.2f}x; ROC-AUC blocked - exact "
                  f"{blocked['test_roc_auc'] - library['test_roc_auc']:+.4f}, PR-AUC "
                  f"{blocked['test_pr_auc'] - library['test_pr_auc']:+.4f}")
        if matrix_bytes:
            print(f"feature matrix {matrix_bytes / 2**20:,.0f} MiB; RATIO peak RSS / feature matrix = "
                  f"{peak_pipeline * 1024 / matrix_bytes:.2f}")
        if args.json_out:
            summary = {
                "rows_target": args.rows, "rows_loaded": rows_loaded, "model_type": args.model_type,
                "stages": {row["stage"].split(" ")[0]: round(row["seconds"], 2) for row in rec.rows
                           if row["group"] in ("prep", "train")},
                "load_rows_per_s": rows_loaded / load_s, "peak_rss_kb": peak_pipeline,
                "rss_before_pipeline_kb": rss_before_pipeline, "matrix_bytes": matrix_bytes,
                "fitting_seconds": result.fitting_seconds if result is not None else None,
                "timings": result.timings if result is not None else None,
                "non_fitting_seconds": (prep + fit_stage_s - result.fitting_seconds) if result is not None else None,
                "probes": probes,
            }
            with open(args.json_out, "w") as fh:
                json.dump(summary, fh, indent=1)
        if args.keep_db:
            print(f"\ndatabase kept running: {dsn} (stop: pg_ctl -D {server.data_dir} stop)")
    finally:
        sampler.stop()
        if not args.keep_db:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
