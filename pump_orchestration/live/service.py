"""Scoring a batch of new coin_metrics rows, or one coin, with every active model.

``score_batch`` is what a prediction run does: read the batch's (mint, timestamp) rows from the outbox,
load the coins' history once, score with ``ml.scoring.score_live``, and write predictions, webhook rows
and the batch's closing in one transaction. Artifacts are verified (SHA-256) and loaded once per process
and kept in ``MODEL_CACHE``; a model whose artifact is missing or corrupt is reported and skipped while
the others score.
"""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Sequence

import pandas as pd
import sqlalchemy as sa

from pump_orchestration.delivery.webhooks import build_payload
from pump_orchestration.ml.evaluation import ModelUnderTest
from pump_orchestration.ml.features import FEATURE_GROUPS
from pump_orchestration.ml.model_store import ArtifactMissingError, ModelStore
from pump_orchestration.ml.scoring import LiveModel, LiveScores, history_start, payload_predictions, score_live
from pump_orchestration.warehouse import outbox, predictions
from pump_orchestration.warehouse.coin_metrics import available_columns, first_timestamps, load_coin_metrics

#: Verified, loaded artifacts of this process: (path, sha256, mtime, size) → LoadedModel. The file's stat is in
#: the key, so an artifact deleted or replaced since it was loaded is noticed at the next batch.
MODEL_CACHE: dict[tuple, object] = {}


def _expected_sha(row: dict) -> str:
    if row.get("model_sha256"):
        return row["model_sha256"]
    manifest = ModelStore.manifest_path(row["local_model_path"])  # an imported model: its manifest's hash
    return json.loads(Path(manifest).read_text())["sha256"]


def model_info(row: dict) -> dict:
    """The webhook payload's ``model`` block of an active model (the original service's fields)."""
    return {
        "id": int(row["model_id"]), "active_model_id": int(row["id"]), "name": row["model_name"],
        "custom_name": row.get("custom_name"), "model_type": row["model_type"],
        "target_variable": row["target_variable"], "target_operator": row.get("target_operator"),
        "target_value": row.get("target_value"), "future_minutes": row.get("future_minutes"),
        "price_change_percent": row.get("price_change_percent"), "target_direction": row.get("target_direction"),
        "features": row["features"], "phases": row.get("phases"),
        "total_predictions": int(row.get("total_predictions") or 0),
        "last_prediction_at": row["last_prediction_at"].isoformat() if row.get("last_prediction_at") else None,
    }


def load_live_models(rows: Sequence[dict]) -> tuple[list[LiveModel], list[dict]]:
    """Live models for active rows; a row whose artifact is missing, corrupt or unloadable is reported instead."""
    models, problems = [], []
    for row in rows:
        label = row.get("custom_name") or row["model_name"]
        try:
            path = Path(row["local_model_path"])
            if not path.is_file():
                raise ArtifactMissingError(f"artifact {path} is missing")
            stat = path.stat()
            key = (str(path), _expected_sha(row), stat.st_mtime_ns, stat.st_size)
            if key not in MODEL_CACHE:
                MODEL_CACHE[key] = ModelStore(path.parent).load(path, key[1])
            loaded = MODEL_CACHE[key]
            meta = loaded.metadata or {}
            model = ModelUnderTest.from_row({
                "id": row["model_id"], "name": label, "target_variable": row["target_variable"],
                "target_operator": row.get("target_operator"), "target_value": row.get("target_value"),
                "future_minutes": row.get("future_minutes"), "price_change_percent": row.get("price_change_percent"),
                "target_direction": row.get("target_direction"), "features": row["features"],
                "phases": row.get("phases"), "params": row.get("params") or {},
                "train_start": meta.get("train_start"), "train_end": meta.get("train_end"),
            }, loaded)
        except Exception as exc:  # noqa: BLE001 - reported per model; the others still score
            problems.append({"model": label, "model_id": row["model_id"], "reason": f"{type(exc).__name__}: {exc}"})
            continue
        models.append(LiveModel(active_model_id=int(row["id"]), model=model,
                                alert_threshold=float(row["alert_threshold"]), info=model_info(row)))
    return models, problems


def _history(engine: sa.Engine, targets: pd.DataFrame, models: list[LiveModel]) -> pd.DataFrame:
    start = history_start(models, targets["timestamp"].min())
    end = targets["timestamp"].max() + pd.Timedelta(microseconds=1)  # the loader's end is exclusive
    return load_coin_metrics(engine, start, end, columns=_history_columns(engine, models),
                             mints=sorted(targets["mint"].unique()))


def _history_columns(engine: sa.Engine, models: list[LiveModel]) -> list[str] | None:
    """The coin_metrics columns the models can read (table order), or None (= all) when a model names a column
    the table lacks, so that its error lists every column as before. Loading is the largest part of a big batch."""
    needed = {"phase_id_at_time"}
    for live in models:
        spec = live.model.feature_spec
        needed.update(spec.base_features)
        if spec.use_engineered:  # every engineered feature is built, whatever the model keeps
            needed.update(c for columns in FEATURE_GROUPS.values() for c in columns)
    available = available_columns(engine)
    if any(c not in available for live in models for c in live.model.feature_spec.base_features):
        return None
    return [c for c in available if c in needed]


def score_targets(engine: sa.Engine, targets: pd.DataFrame, models: list[LiveModel]) -> tuple[LiveScores, float]:
    """Scores of ``targets`` (mint, timestamp) with ``models``, and the seconds spent loading history."""
    t0 = time.perf_counter()
    history = _history(engine, targets, models)
    # The loaded history starts one largest window back; the coins' true first rows date them.
    first_rows = first_timestamps(engine, targets["mint"].unique())
    load_seconds = time.perf_counter() - t0
    return score_live(history, targets, models, first_rows=first_rows), load_seconds


def score_batch(engine: sa.Engine, batch_key: str, *, webhooks: bool) -> dict:
    """Score one outbox batch with every active model and write it; returns what happened, for the run's metadata."""
    t_start = time.perf_counter()
    with engine.connect() as conn:
        targets = outbox.batch_rows(conn, batch_key)
        rows = predictions.active_model_rows(conn)
    t0 = time.perf_counter()
    models, model_problems = load_live_models(rows)
    load_models = time.perf_counter() - t0
    summary = {"batch_key": batch_key, "rows": int(len(targets)), "coins": int(targets["mint"].nunique()),
               "active_models": len(rows), "models_unavailable": model_problems}
    if targets.empty or not models:
        with engine.begin() as conn:
            written = predictions.write_scores(conn, pd.DataFrame(), {}, batch_key)
        reason = "no rows in this batch" if targets.empty else "no active model could be loaded"
        return {**summary, **written, "predictions": 0, "skipped": [], "note": reason, "keys": [],
                "seconds": {"total": round(time.perf_counter() - t_start, 3)}}
    scores, load_history = score_targets(engine, targets, models)
    bodies = {}
    if webhooks:
        bodies = {key: build_payload(key[0], key[1], entries)
                  for key, entries in payload_predictions(scores.predictions, models).items()}
    t0 = time.perf_counter()
    with engine.begin() as conn:
        written = predictions.write_scores(conn, scores.predictions, bodies, batch_key)
    write_seconds = time.perf_counter() - t0
    per_model = scores.predictions.groupby("model_id").size() if len(scores.predictions) else pd.Series(dtype=int)
    names = {m.model_id: m.model.name for m in models}
    return {
        **summary, **written,
        "predictions": int(len(scores.predictions)),
        "coins_scored": int(scores.predictions["coin_id"].nunique()) if len(scores.predictions) else 0,
        "predictions_per_model": {names[int(k)]: int(v) for k, v in per_model.items()},
        "alerts": int(scores.predictions["is_alert"].sum()) if len(scores.predictions) else 0,
        "short_history": scores.short_history,
        "skipped": scores.skipped,
        "keys": [b["idempotency_key"] for b in bodies.values()],
        "seconds": {"load_models": round(load_models, 4), "load_history": round(load_history, 4),
                    **scores.seconds, "write": round(write_seconds, 4),
                    "total": round(time.perf_counter() - t_start, 4)},
    }


def score_coin(engine: sa.Engine, mint: str, *, model_refs: Sequence[str] | None = None,
               at=None) -> dict:
    """Manual scoring: the active models' predictions for ``mint`` at its row at or before ``at`` (default: newest).

    Nothing is stored and no webhook is sent. Raises ``LookupError`` for an unknown coin or model.
    """
    from pump_orchestration.vocabulary import to_utc
    from pump_orchestration.warehouse.schema import coin_metrics

    with engine.connect() as conn:
        rows = predictions.active_model_rows(conn, model_refs)
        query = sa.select(sa.func.max(coin_metrics.c.timestamp)).where(coin_metrics.c.mint == mint)
        if at is not None:
            query = query.where(coin_metrics.c.timestamp <= to_utc(at, "at").to_pydatetime())
        ts = conn.execute(query).scalar()
    if ts is None:
        raise LookupError(f"coin: no coin_metrics row for {mint!r}" + (f" at or before {at}" if at else ""))
    if not rows:
        raise LookupError("models: no active model; activate one with `pump-orchestration models activate MODEL`")
    models, problems = load_live_models(rows)
    targets = pd.DataFrame({"mint": [mint], "timestamp": [pd.Timestamp(ts)]})
    scores, _ = score_targets(engine, targets, models) if models else (None, 0)
    entries = payload_predictions(scores.predictions, models).get((mint, pd.Timestamp(ts)), []) if scores else []
    return {"coin_id": mint, "timestamp": pd.Timestamp(ts).isoformat(), "predictions": entries,
            "skipped": (scores.skipped if scores else []) + problems}
