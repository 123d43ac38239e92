"""Predictions and their webhooks in the warehouse: written once, delivered at least once, never lost.

* ``write_scores`` inserts a batch's predictions (unique per model, coin and data timestamp: a repeated
  run inserts nothing twice), one ``prediction_webhooks`` row per coin and data timestamp (unique
  idempotency key), the active models' counters, and marks the outbox batch scored — one transaction.
* Delivery rounds lease pending webhooks (``claim_webhooks``), post them, and record every attempt in
  ``prediction_webhook_log`` and the outcome on the webhook row (``record_delivery``). A lease expires,
  so a round that dies mid-way leaves its rows to the next one. Rows still undelivered after the
  give-up age are marked GIVEN_UP with the reason (``give_up_stale``).
"""
from __future__ import annotations

import datetime as dt
import io
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from pump_orchestration.vocabulary import to_utc
from pump_orchestration.warehouse import outbox
from pump_orchestration.warehouse.schema import (
    UtcDateTime,
    ml_models,
    prediction_active_models,
    prediction_webhook_log,
    prediction_webhooks,
    predictions,
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def _insert(conn: sa.Connection, table: sa.Table):
    return (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(table)


def active_model_rows(conn: sa.Connection, refs: Sequence[str] | None = None) -> list[dict]:
    """Active models with their ml_models checksum (``model_sha256``, None for an imported model).

    ``refs`` narrows to model ids or names (model_name or custom_name); an unknown ref raises ``LookupError``.
    """
    query = (sa.select(prediction_active_models, ml_models.c.model_sha256)
             .select_from(prediction_active_models.outerjoin(
                 ml_models, ml_models.c.id == prediction_active_models.c.model_id))
             .where(prediction_active_models.c.is_active.is_(True))
             .order_by(prediction_active_models.c.id))
    rows = [dict(r) for r in conn.execute(query).mappings()]
    if not refs:
        return rows
    chosen = []
    for ref in refs:
        ref = str(ref).strip()
        match = [r for r in rows if str(r["model_id"]) == ref or ref in (r["model_name"], r["custom_name"])]
        if not match:
            raise LookupError(f"models: {ref!r} is not an active model (see `pump-orchestration models list`)")
        chosen += [m for m in match if m not in chosen]
    return chosen


def write_scores(conn: sa.Connection, scores: pd.DataFrame, payloads: dict[tuple[str, Any], dict],
                 batch_key: str | None) -> dict[str, int]:
    """Insert predictions and webhook rows, bump the active models' counters, close the outbox batch.

    ``scores`` has ``ml.scoring.PREDICTION_COLUMNS``; ``payloads`` maps (coin, data timestamp) to the
    webhook body (empty when webhooks are off). Returns counts of what was newly written.
    """
    per_model: dict[int, tuple[int, dt.datetime]] = {}  # active model id -> (rows newly inserted, newest timestamp)
    if len(scores):
        insert_rows = _insert_predictions_postgres if conn.dialect.name == "postgresql" else _insert_predictions
        per_model = insert_rows(conn, scores)
    inserted = sum(n for n, _ in per_model.values())
    last = prediction_active_models.c.last_prediction_at
    for active_id, (count, newest_ts) in per_model.items():
        newest = sa.literal(newest_ts, UtcDateTime())
        conn.execute(prediction_active_models.update().where(prediction_active_models.c.id == active_id).values(
            total_predictions=prediction_active_models.c.total_predictions + count,
            last_prediction_at=sa.case((sa.or_(last.is_(None), last < newest), newest), else_=last),
        ))
    webhooks = 0
    if payloads:
        rows = [{"idempotency_key": p["idempotency_key"], "coin_id": coin,
                 "data_timestamp": pd.Timestamp(ts).to_pydatetime(), "payload": p}
                for (coin, ts), p in payloads.items()]
        result = conn.execute(_insert(conn, prediction_webhooks)
                              .on_conflict_do_nothing(index_elements=["idempotency_key"])
                              .returning(prediction_webhooks.c.id), rows)
        webhooks = len(result.all())
    closed = outbox.mark_scored(conn, batch_key) if batch_key else 0
    return {"predictions_written": inserted, "predictions_already_stored": len(scores) - inserted,
            "webhooks_queued": webhooks, "outbox_rows_closed": closed}


_PREDICTION_VALUES = ["coin_id", "data_timestamp", "model_id", "active_model_id", "prediction", "probability",
                      "phase_id_at_time"]


def _count_per_model(inserted: Iterable[tuple[Any, dt.datetime]]) -> dict[int, tuple[int, dt.datetime]]:
    per_model: dict[int, tuple[int, dt.datetime]] = {}
    for active_id, ts in inserted:
        count, newest = per_model.get(int(active_id), (0, ts))
        per_model[int(active_id)] = (count + 1, max(newest, ts))
    return per_model


def _insert_predictions(conn: sa.Connection, scores: pd.DataFrame) -> dict[int, tuple[int, dt.datetime]]:
    """INSERT ... ON CONFLICT DO NOTHING of every row (SQLite); the newly inserted rows counted per active model."""
    values = [{
        "coin_id": r.coin_id, "data_timestamp": r.data_timestamp.to_pydatetime(), "model_id": int(r.model_id),
        "active_model_id": int(r.active_model_id), "prediction": int(r.prediction),
        "probability": float(r.probability),
        "phase_id_at_time": None if pd.isna(r.phase_id_at_time) else int(r.phase_id_at_time),
    } for r in scores.itertuples(index=False)]
    statement = (_insert(conn, predictions)
                 .on_conflict_do_nothing(index_elements=["model_id", "coin_id", "data_timestamp"])
                 .returning(predictions.c.active_model_id, predictions.c.data_timestamp))
    return _count_per_model(conn.execute(statement, values).all())


def _insert_predictions_postgres(conn: sa.Connection, scores: pd.DataFrame) -> dict[int, tuple[int, dt.datetime]]:
    """The same rows and conflict rule on PostgreSQL, in bulk: COPY into a temporary table, then one
    ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` that counts what it inserted per active model.

    Binding parameters row by row cost ~50 µs a row in Python (100,000 predictions: 4.9 s; this: 1.7 s).
    """
    phase = pd.to_numeric(scores["phase_id_at_time"])
    frame = pd.DataFrame({
        "coin_id": scores["coin_id"].to_numpy(),
        # Microseconds, as the database stores them (and as datetime.to_pydatetime() truncates).
        "data_timestamp": pd.to_datetime(scores["data_timestamp"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S.%f+00"),
        "model_id": scores["model_id"].astype("int64").to_numpy(),
        "active_model_id": scores["active_model_id"].astype("int64").to_numpy(),
        "prediction": scores["prediction"].astype("int64").to_numpy(),
        "probability": scores["probability"].astype("float64").to_numpy(),  # repr round-trips exactly
        "phase_id_at_time": np.trunc(phase).astype("Int64"),  # int(); NaN/None -> empty field = NULL
    }, columns=_PREDICTION_VALUES)
    columns = ", ".join(_PREDICTION_VALUES)
    conn.exec_driver_sql("DROP TABLE IF EXISTS pg_temp._predictions_stage")  # only ever our temporary table
    conn.exec_driver_sql(
        "CREATE TEMP TABLE _predictions_stage (coin_id TEXT, data_timestamp TIMESTAMPTZ, model_id BIGINT, "
        "active_model_id BIGINT, prediction INTEGER, probability DOUBLE PRECISION, phase_id_at_time INTEGER) "
        "ON COMMIT DROP")
    buffer = io.StringIO()
    frame.to_csv(buffer, index=False, header=False, na_rep="")  # empty unquoted field = NULL for COPY
    buffer.seek(0)
    cursor = conn.connection.driver_connection.cursor()
    try:
        cursor.copy_expert(f"COPY _predictions_stage ({columns}) FROM STDIN WITH (FORMAT csv)", buffer)
    finally:
        cursor.close()
    counted = conn.exec_driver_sql(
        f"WITH inserted AS (INSERT INTO predictions ({columns}) SELECT {columns} FROM _predictions_stage "
        "ON CONFLICT (model_id, coin_id, data_timestamp) DO NOTHING RETURNING active_model_id, data_timestamp) "
        "SELECT active_model_id, count(*), max(data_timestamp) FROM inserted GROUP BY active_model_id").all()
    return {int(active_id): (int(count), to_utc(newest).to_pydatetime()) for active_id, count, newest in counted}


def claim_webhooks(conn: sa.Connection, *, limit: int, lease_seconds: float,
                   keys: Iterable[str] | None = None) -> list[dict]:
    """Lease up to ``limit`` PENDING webhooks (oldest first; only ``keys`` when given) for one delivery round."""
    now = _now()
    query = (sa.select(prediction_webhooks)
             .where(prediction_webhooks.c.status == "PENDING",
                    sa.or_(prediction_webhooks.c.lease_until.is_(None), prediction_webhooks.c.lease_until < now))
             .order_by(prediction_webhooks.c.id).limit(limit))
    if keys is not None:
        query = query.where(prediction_webhooks.c.idempotency_key.in_(list(keys)))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = [dict(r) for r in conn.execute(query).mappings()]
    if rows:
        conn.execute(prediction_webhooks.update()
                     .where(prediction_webhooks.c.id.in_([r["id"] for r in rows]))
                     .values(lease_until=now + dt.timedelta(seconds=lease_seconds)))
    return rows


# One attempt's log row; coin, timestamp, key and payload are copied from the webhook row in the database (the
# payload that was posted) instead of being serialised and sent again: ~13 kB of JSON a row with 10 models.
_w = prediction_webhooks.c
_LOG_ATTEMPT = prediction_webhook_log.insert().from_select(
    ["coin_id", "data_timestamp", "webhook_url", "payload", "response_status", "response_body", "error_message",
     "idempotency_key", "attempt", "duration_ms"],
    sa.select(_w.coin_id, _w.data_timestamp, sa.bindparam("url", type_=sa.Text()), _w.payload,
              sa.bindparam("status", type_=sa.Integer()), sa.bindparam("body", type_=sa.Text()),
              sa.bindparam("error", type_=sa.Text()), _w.idempotency_key, sa.bindparam("attempt", type_=sa.Integer()),
              sa.bindparam("duration_ms", type_=sa.Integer()))
    .where(_w.id == sa.bindparam("webhook_id", type_=sa.BigInteger())))


def record_delivery(conn: sa.Connection, webhook: dict, url: str, attempts: Sequence, delivered: bool,
                    last_error: str | None) -> None:
    """Log every attempt of a round and store its outcome on the webhook row (releasing the lease)."""
    base = webhook["attempts"]
    if attempts:
        conn.execute(_LOG_ATTEMPT, [{
            "webhook_id": webhook["id"], "url": url, "status": a.status, "body": a.body, "error": a.error,
            "attempt": base + a.number, "duration_ms": a.duration_ms,
        } for a in attempts])
    values: dict[str, Any] = {"attempts": base + len(attempts), "lease_until": None}
    if delivered:
        values.update(status="DELIVERED", delivered_at=_now(), last_error=None)
    else:
        values.update(last_error=last_error)
    conn.execute(prediction_webhooks.update().where(prediction_webhooks.c.id == webhook["id"]).values(**values))


def give_up_stale(conn: sa.Connection, older_than: dt.timedelta) -> int:
    """Mark PENDING webhooks created before now − ``older_than`` GIVEN_UP, keeping their last error."""
    cutoff = _now() - older_than
    hours = older_than.total_seconds() / 3600
    return conn.execute(
        prediction_webhooks.update()
        .where(prediction_webhooks.c.status == "PENDING", prediction_webhooks.c.created_at < cutoff)
        .values(status="GIVEN_UP", lease_until=None,
                last_error=sa.func.coalesce(prediction_webhooks.c.last_error, "no attempt succeeded")
                + f" (given up: undelivered after {hours:g} h)")
    ).rowcount


def pending_webhooks(conn: sa.Connection) -> int:
    """Webhooks not delivered yet."""
    return int(conn.execute(sa.select(sa.func.count()).select_from(prediction_webhooks)
                            .where(prediction_webhooks.c.status == "PENDING")).scalar_one())


def receiver_failing(conn: sa.Connection, older_than: dt.timedelta) -> bool:
    """Whether a webhook older than ``older_than`` is still pending after an attempt: the receiver is in trouble."""
    return conn.execute(sa.select(prediction_webhooks.c.id).where(
        prediction_webhooks.c.status == "PENDING", prediction_webhooks.c.attempts > 0,
        prediction_webhooks.c.created_at < _now() - older_than).limit(1)).first() is not None
