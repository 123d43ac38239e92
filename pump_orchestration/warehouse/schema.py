"""The warehouse tables, defined once for PostgreSQL (production) and SQLite (embedded default).

Two ``MetaData`` objects keep ownership explicit:

* ``metadata`` holds every table this product owns (``ref_*``, ``ml_*``, ``prediction_*``).
* ``coin_metrics_metadata`` holds ``coin_metrics``, which the tracker owns in production; it is
  only created for the embedded SQLite warehouse and for demo/test databases.

``sql/schema.sql`` and ``sql/coin_metrics.sql`` are the hand-written PostgreSQL equivalents; a
test asserts that both paths produce the same catalogue.
"""
from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from pump_orchestration.vocabulary import (
    BASE_COLUMNS,
    DEFAULT_MODEL_PARAMS,
    DEFAULT_PHASES,
    DIRECTIONS,
    JOB_STATUSES,
    JOB_TYPES,
    MODEL_STATUSES,
    MODEL_TYPE_DESCRIPTIONS,
    MODEL_TYPES,
    OPERATORS,
    WEBHOOK_STATUSES,
    to_utc,
)


class UtcDateTime(sa.TypeDecorator):
    """``TIMESTAMPTZ`` on PostgreSQL, text on SQLite; always binds and returns tz-aware UTC.

    SQLite has no time zone type and SQLAlchemy's SQLite ``DATETIME`` silently drops tzinfo, so
    values are converted to UTC before binding (naive values are taken as UTC) and results get
    ``tzinfo=UTC`` back. Storing one canonical UTC text form keeps SQLite range comparisons right.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    @staticmethod
    def _as_utc(value):
        return None if value is None else to_utc(value).to_pydatetime()

    def process_bind_param(self, value, dialect):
        """Normalise a datetime to aware UTC (naive = UTC)."""
        return self._as_utc(value)

    def process_result_value(self, value, dialect):
        """Return aware UTC whatever the driver handed back."""
        return self._as_utc(value)


# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets BIGSERIAL.
BigIntPK = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
# none_as_null: Python None must become SQL NULL, not the JSON literal 'null'.
JsonType = sa.JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")

# Deterministic names for the constraints we do not name by hand; they equal PostgreSQL's own
# defaults so hand-written DDL with inline PRIMARY KEY/REFERENCES/UNIQUE matches.
NAMING_CONVENTION = {
    "pk": "%(table_name)s_pkey",
    "fk": "%(table_name)s_%(column_0_name)s_fkey",
    "uq": "%(table_name)s_%(column_0_name)s_key",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)
coin_metrics_metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)


def _in(column: str, values: tuple[str, ...], nullable: bool = False) -> str:
    """SQL text for ``column IN (...)``, optionally allowing NULL."""
    listed = ", ".join(f"'{v}'" for v in values)
    clause = f"{column} IN ({listed})"
    return f"{column} IS NULL OR {clause}" if nullable else clause


def _id() -> sa.Column:
    return sa.Column("id", BigIntPK, primary_key=True, autoincrement=True)


def _created_at() -> sa.Column:
    return sa.Column("created_at", UtcDateTime(), nullable=False, server_default=sa.func.now())


def _updated_at() -> sa.Column:
    return sa.Column(
        "updated_at", UtcDateTime(), nullable=False, server_default=sa.func.now(), onupdate=sa.func.now()
    )


# ---------------------------------------------------------------- source (tracker-owned)

_COIN_METRICS_TYPES: dict[str, sa.types.TypeEngine] = {
    "phase_id_at_time": sa.Integer(),
    "num_buys": sa.Integer(),
    "num_sells": sa.Integer(),
    "unique_wallets": sa.Integer(),
    "is_koth": sa.Boolean(),
}

coin_metrics = sa.Table(
    "coin_metrics",
    coin_metrics_metadata,
    sa.Column("mint", sa.Text(), primary_key=True),
    sa.Column("timestamp", UtcDateTime(), primary_key=True),
    *(sa.Column(name, _COIN_METRICS_TYPES.get(name, sa.Float())) for name in BASE_COLUMNS),
    sa.Index("idx_coin_metrics_timestamp", "timestamp"),
)

# ---------------------------------------------------------------- reference tables

ref_coin_phases = sa.Table(
    "ref_coin_phases",
    metadata,
    sa.Column("phase_id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(50), nullable=False),
    sa.Column("interval_seconds", sa.Integer(), nullable=False),
    sa.CheckConstraint("interval_seconds > 0", name="chk_phases_interval_positive"),
)

ref_model_types = sa.Table(
    "ref_model_types",
    metadata,
    sa.Column("id", sa.Integer(), primary_key=True, autoincrement=False),
    sa.Column("name", sa.String(50), nullable=False, unique=True),
    sa.Column("description", sa.Text()),
    sa.Column("default_params", JsonType, nullable=False),
)

# ---------------------------------------------------------------- training service

ml_models = sa.Table(
    "ml_models",
    metadata,
    _id(),
    sa.Column("name", sa.String(255), nullable=False, unique=True),
    sa.Column("model_type", sa.String(50), nullable=False),
    sa.Column("status", sa.String(50), nullable=False, server_default="TRAINING"),
    sa.Column("target_variable", sa.String(100), nullable=False),
    sa.Column("target_operator", sa.String(10)),
    sa.Column("target_value", sa.Float()),
    sa.Column("future_minutes", sa.Integer()),
    sa.Column("price_change_percent", sa.Float()),
    sa.Column("target_direction", sa.String(10)),
    sa.Column("label_mode", sa.String(20)),
    sa.Column("train_start", UtcDateTime(), nullable=False),
    sa.Column("train_end", UtcDateTime(), nullable=False),
    sa.Column("features", JsonType, nullable=False),
    sa.Column("phases", JsonType),
    sa.Column("params", JsonType),
    sa.Column("training_accuracy", sa.Float()),
    sa.Column("training_f1", sa.Float()),
    sa.Column("training_precision", sa.Float()),
    sa.Column("training_recall", sa.Float()),
    sa.Column("roc_auc", sa.Float()),
    sa.Column("mcc", sa.Float()),
    sa.Column("fpr", sa.Float()),
    sa.Column("fnr", sa.Float()),
    sa.Column("confusion_matrix", JsonType),
    sa.Column("simulated_profit_pct", sa.Float()),
    sa.Column("cv_scores", JsonType),
    sa.Column("cv_overfitting_gap", sa.Float()),
    sa.Column("feature_importance", JsonType),
    # The operating point chosen on out-of-fold predictions (ml.metrics.choose_threshold); NULL for older models.
    sa.Column("alert_threshold", sa.Float()),
    sa.Column("model_file_path", sa.Text()),
    sa.Column("model_sha256", sa.String(64)),
    sa.Column("error_msg", sa.Text()),
    sa.Column("description", sa.Text()),
    sa.Column("is_deleted", sa.Boolean(), nullable=False, server_default=sa.false()),
    sa.Column("deleted_at", UtcDateTime()),
    _created_at(),
    _updated_at(),
    sa.CheckConstraint(_in("status", MODEL_STATUSES), name="chk_models_status"),
    sa.CheckConstraint(_in("model_type", MODEL_TYPES), name="chk_models_model_type"),
    sa.CheckConstraint(_in("target_operator", OPERATORS, nullable=True), name="chk_models_target_operator"),
    sa.CheckConstraint(_in("target_direction", DIRECTIONS, nullable=True), name="chk_models_target_direction"),
    sa.CheckConstraint("future_minutes IS NULL OR future_minutes > 0", name="chk_models_future_minutes"),
    sa.CheckConstraint("train_start < train_end", name="chk_models_train_window"),
    sa.Index("idx_models_status", "status"),
    sa.Index("idx_models_created", sa.text("created_at DESC")),
)

ml_test_results = sa.Table(
    "ml_test_results",
    metadata,
    _id(),
    sa.Column("model_id", sa.BigInteger(), sa.ForeignKey("ml_models.id", ondelete="CASCADE"), nullable=False),
    sa.Column("test_start", UtcDateTime(), nullable=False),
    sa.Column("test_end", UtcDateTime(), nullable=False),
    sa.Column("accuracy", sa.Float()),
    sa.Column("f1_score", sa.Float()),
    sa.Column("precision_score", sa.Float()),
    sa.Column("recall", sa.Float()),
    sa.Column("roc_auc", sa.Float()),
    sa.Column("mcc", sa.Float()),
    sa.Column("fpr", sa.Float()),
    sa.Column("fnr", sa.Float()),
    sa.Column("simulated_profit_pct", sa.Float()),
    sa.Column("confusion_matrix", JsonType),
    sa.Column("tp", sa.Integer()),
    sa.Column("tn", sa.Integer()),
    sa.Column("fp", sa.Integer()),
    sa.Column("fn", sa.Integer()),
    sa.Column("num_samples", sa.Integer()),
    sa.Column("num_positive", sa.Integer()),
    sa.Column("num_negative", sa.Integer()),
    sa.Column("has_overlap", sa.Boolean()),
    sa.Column("overlap_note", sa.Text()),
    sa.Column("train_accuracy", sa.Float()),
    sa.Column("train_f1", sa.Float()),
    sa.Column("train_precision", sa.Float()),
    sa.Column("train_recall", sa.Float()),
    sa.Column("accuracy_degradation", sa.Float()),
    sa.Column("f1_degradation", sa.Float()),
    sa.Column("is_overfitted", sa.Boolean()),
    sa.Column("test_duration_days", sa.Float()),
    # Pumps detected before the peak, delays, false-alert episodes per coin-day (ml.events); NULL for threshold targets.
    sa.Column("event_metrics", JsonType),
    # The alert threshold the class and event figures were computed at (the model's, or the one asked for).
    sa.Column("alert_threshold", sa.Float()),
    _created_at(),
    sa.CheckConstraint("test_start < test_end", name="chk_test_results_window"),
    sa.Index("idx_test_results_model", "model_id"),
    sa.Index("idx_test_results_created", sa.text("created_at DESC")),
)

_COMPARISON_METRICS = (
    "accuracy", "f1", "precision", "recall", "roc_auc", "mcc", "fpr", "fnr", "simulated_profit_pct",
)

ml_comparisons = sa.Table(
    "ml_comparisons",
    metadata,
    _id(),
    sa.Column("model_a_id", sa.BigInteger(), sa.ForeignKey("ml_models.id", ondelete="CASCADE"), nullable=False),
    sa.Column("model_b_id", sa.BigInteger(), sa.ForeignKey("ml_models.id", ondelete="CASCADE"), nullable=False),
    sa.Column("test_start", UtcDateTime(), nullable=False),
    sa.Column("test_end", UtcDateTime(), nullable=False),
    sa.Column("num_samples", sa.Integer()),
    *(sa.Column(f"a_{m}", sa.Float()) for m in _COMPARISON_METRICS),
    *(sa.Column(f"b_{m}", sa.Float()) for m in _COMPARISON_METRICS),
    sa.Column("test_a_id", sa.BigInteger(), sa.ForeignKey("ml_test_results.id", ondelete="SET NULL")),
    sa.Column("test_b_id", sa.BigInteger(), sa.ForeignKey("ml_test_results.id", ondelete="SET NULL")),
    # NULL on a tie.
    sa.Column("winner_id", sa.BigInteger(), sa.ForeignKey("ml_models.id", ondelete="SET NULL")),
    sa.Column("significance", JsonType),
    _created_at(),
    sa.CheckConstraint("model_a_id <> model_b_id", name="chk_comparisons_distinct_models"),
    sa.CheckConstraint("test_start < test_end", name="chk_comparisons_window"),
    sa.Index("idx_comparisons_models", "model_a_id", "model_b_id"),
)

# Known pump events (e.g. Telegram pump signals), imported with ``pump-orchestration import-events``; a
# request with ``label_source: known_events`` labels the rows inside them. One event per (mint, start_time):
# re-importing a file replaces its events instead of doubling them.
ml_known_events = sa.Table(
    "ml_known_events",
    metadata,
    _id(),
    sa.Column("mint", sa.Text(), nullable=False),
    sa.Column("symbol", sa.Text()),
    sa.Column("start_time", UtcDateTime(), nullable=False),
    sa.Column("end_time", UtcDateTime(), nullable=False),
    sa.Column("source", sa.Text(), nullable=False),
    sa.Column("note", sa.Text()),
    _created_at(),
    sa.UniqueConstraint("mint", "start_time", name="uq_known_events_mint_start"),
    sa.CheckConstraint("end_time >= start_time", name="chk_known_events_window"),
    sa.Index("idx_known_events_start", "start_time"),
)


def _job_fk(column: str, target: str) -> sa.Column:
    # Jobs are history: removing a model or result must not delete the record of the run.
    return sa.Column(column, sa.BigInteger(), sa.ForeignKey(target, ondelete="SET NULL"))


ml_jobs = sa.Table(
    "ml_jobs",
    metadata,
    _id(),
    sa.Column("job_type", sa.String(20), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, server_default="PENDING"),
    sa.Column("priority", sa.Integer(), nullable=False, server_default=sa.text("5")),
    sa.Column("progress", sa.Float(), nullable=False, server_default=sa.text("0")),
    sa.Column("progress_msg", sa.Text()),
    sa.Column("error_msg", sa.Text()),
    sa.Column("dagster_run_id", sa.String(64), unique=True),
    # The original service parked the requested name in progress_msg; it gets its own column here.
    sa.Column("train_model_name", sa.String(255)),
    sa.Column("train_model_type", sa.String(50)),
    sa.Column("train_target_var", sa.String(100)),
    sa.Column("train_operator", sa.String(10)),
    sa.Column("train_value", sa.Float()),
    sa.Column("train_start", UtcDateTime()),
    sa.Column("train_end", UtcDateTime()),
    sa.Column("train_features", JsonType),
    sa.Column("train_phases", JsonType),
    sa.Column("train_params", JsonType),
    sa.Column("train_future_minutes", sa.Integer()),
    sa.Column("train_price_change_percent", sa.Float()),
    sa.Column("train_target_direction", sa.String(10)),
    _job_fk("test_model_id", "ml_models.id"),
    sa.Column("test_start", UtcDateTime()),
    sa.Column("test_end", UtcDateTime()),
    _job_fk("compare_model_a_id", "ml_models.id"),
    _job_fk("compare_model_b_id", "ml_models.id"),
    sa.Column("compare_start", UtcDateTime()),
    sa.Column("compare_end", UtcDateTime()),
    _job_fk("result_model_id", "ml_models.id"),
    _job_fk("result_test_id", "ml_test_results.id"),
    _job_fk("result_comparison_id", "ml_comparisons.id"),
    _created_at(),
    sa.Column("started_at", UtcDateTime()),
    sa.Column("completed_at", UtcDateTime()),
    _updated_at(),
    sa.CheckConstraint(_in("job_type", JOB_TYPES), name="chk_jobs_job_type"),
    sa.CheckConstraint(_in("status", JOB_STATUSES), name="chk_jobs_status"),
    sa.CheckConstraint("progress >= 0 AND progress <= 1", name="chk_jobs_progress"),
    sa.CheckConstraint("priority BETWEEN 1 AND 10", name="chk_jobs_priority"),
    sa.Index("idx_jobs_status", "status", "priority", "created_at"),
)

# ---------------------------------------------------------------- prediction service

prediction_active_models = sa.Table(
    "prediction_active_models",
    metadata,
    _id(),
    # No FK: an active model may be imported from another training deployment, whose ids differ.
    sa.Column("model_id", sa.BigInteger(), nullable=False, unique=True),
    sa.Column("model_name", sa.String(255), nullable=False),
    sa.Column("model_type", sa.String(50), nullable=False),
    sa.Column("target_variable", sa.String(100), nullable=False),
    sa.Column("target_operator", sa.String(10)),
    sa.Column("target_value", sa.Float()),
    sa.Column("future_minutes", sa.Integer()),
    sa.Column("price_change_percent", sa.Float()),
    sa.Column("target_direction", sa.String(10)),
    sa.Column("features", JsonType, nullable=False),
    sa.Column("phases", JsonType),
    sa.Column("params", JsonType),
    sa.Column("local_model_path", sa.Text(), nullable=False),
    sa.Column("model_file_url", sa.Text()),
    sa.Column("is_active", sa.Boolean(), nullable=False, server_default=sa.true()),
    sa.Column("alert_threshold", sa.Float(), nullable=False, server_default=sa.text("0.7")),
    sa.Column("custom_name", sa.String(255)),
    sa.Column("last_prediction_at", UtcDateTime()),
    sa.Column("total_predictions", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    sa.Column("downloaded_at", UtcDateTime(), server_default=sa.func.now()),
    sa.Column("activated_at", UtcDateTime()),
    _created_at(),
    _updated_at(),
    sa.CheckConstraint(_in("model_type", MODEL_TYPES), name="chk_model_type"),
    sa.CheckConstraint(_in("target_operator", OPERATORS, nullable=True), name="chk_operator"),
    sa.CheckConstraint(_in("target_direction", DIRECTIONS, nullable=True), name="chk_direction"),
    sa.CheckConstraint("alert_threshold >= 0 AND alert_threshold <= 1", name="chk_alert_threshold"),
    sa.Index(
        "idx_active_models_active", "is_active",
        postgresql_where=sa.text("is_active = true"), sqlite_where=sa.text("is_active = 1"),
    ),
    sa.Index("idx_active_models_model_id", "model_id"),
    sa.Index(
        "idx_active_models_custom_name", "custom_name",
        postgresql_where=sa.text("custom_name IS NOT NULL"), sqlite_where=sa.text("custom_name IS NOT NULL"),
    ),
)

predictions = sa.Table(
    "predictions",
    metadata,
    _id(),
    sa.Column("coin_id", sa.String(255), nullable=False),
    sa.Column("data_timestamp", UtcDateTime(), nullable=False),
    sa.Column("model_id", sa.BigInteger(), nullable=False),
    sa.Column(
        "active_model_id", sa.BigInteger(),
        sa.ForeignKey("prediction_active_models.id", ondelete="SET NULL"),
    ),
    sa.Column("prediction", sa.Integer(), nullable=False),
    sa.Column("probability", sa.Float(), nullable=False),
    sa.Column("phase_id_at_time", sa.Integer()),
    sa.Column("features", JsonType),
    sa.Column("prediction_duration_ms", sa.Integer()),
    _created_at(),
    # One prediction per model, coin and data timestamp: a repeated run or a re-requested batch writes nothing twice.
    sa.UniqueConstraint("model_id", "coin_id", "data_timestamp", name="uq_predictions_model_coin_ts"),
    sa.CheckConstraint("prediction IN (0, 1)", name="predictions_prediction_check"),
    sa.CheckConstraint("probability >= 0 AND probability <= 1", name="predictions_probability_check"),
    sa.Index("idx_predictions_coin_timestamp", "coin_id", sa.text("data_timestamp DESC")),
    sa.Index("idx_predictions_model", "model_id", sa.text("created_at DESC")),
    sa.Index("idx_predictions_active_model", "active_model_id", sa.text("created_at DESC")),
    sa.Index("idx_predictions_created", sa.text("created_at DESC")),
)

prediction_webhook_log = sa.Table(
    "prediction_webhook_log",
    metadata,
    _id(),
    sa.Column("coin_id", sa.String(255), nullable=False),
    sa.Column("data_timestamp", UtcDateTime(), nullable=False),
    sa.Column("webhook_url", sa.Text(), nullable=False),
    sa.Column("payload", JsonType, nullable=False),
    sa.Column("response_status", sa.Integer()),
    sa.Column("response_body", sa.Text()),
    sa.Column("error_message", sa.Text()),
    # Which delivery (prediction_webhooks) this attempt belongs to, and its number within it.
    sa.Column("idempotency_key", sa.String(64)),
    sa.Column("attempt", sa.Integer()),
    sa.Column("duration_ms", sa.Integer()),
    _created_at(),
    sa.Index("idx_webhook_log_created", sa.text("created_at DESC")),
    sa.Index("idx_webhook_log_key", "idempotency_key"),
    sa.Index(
        "idx_webhook_log_status", "response_status",
        postgresql_where=sa.text("response_status IS NOT NULL"),
        sqlite_where=sa.text("response_status IS NOT NULL"),
    ),
)

prediction_webhooks = sa.Table(
    "prediction_webhooks",
    metadata,
    _id(),
    # One webhook per coin and data timestamp, carrying every model's prediction; the key is sent as the
    # Idempotency-Key header and the payload's idempotency_key field, so a receiver can drop repeats.
    sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
    sa.Column("coin_id", sa.String(255), nullable=False),
    sa.Column("data_timestamp", UtcDateTime(), nullable=False),
    sa.Column("payload", JsonType, nullable=False),
    sa.Column("status", sa.String(20), nullable=False, server_default=sa.text("'PENDING'")),
    sa.Column("attempts", sa.Integer(), nullable=False, server_default=sa.text("0")),
    sa.Column("last_error", sa.Text()),
    # A delivery round leases a row before posting it, so two processes never post the same payload at once.
    sa.Column("lease_until", UtcDateTime()),
    sa.Column("delivered_at", UtcDateTime()),
    _created_at(),
    _updated_at(),
    sa.CheckConstraint(_in("status", WEBHOOK_STATUSES), name="chk_webhooks_status"),
    sa.Index("idx_webhooks_pending", "created_at",
             postgresql_where=sa.text("status = 'PENDING'"), sqlite_where=sa.text("status = 'PENDING'")),
)

coin_metrics_outbox = sa.Table(
    "coin_metrics_outbox",
    metadata,
    # Filled by an AFTER INSERT trigger on coin_metrics (``warehouse/outbox.py``, ``sql/coin_metrics_outbox.sql``):
    # one row per inserted (mint, timestamp), so new rows are noticed without a key in the tracker's table.
    _id(),
    sa.Column("mint", sa.Text(), nullable=False),
    sa.Column("timestamp", UtcDateTime(), nullable=False),
    sa.Column("queued_at", UtcDateTime(), nullable=False, server_default=sa.func.now()),
    # Set when the coin_metrics_sensor puts the row into a prediction run's batch, then when that run scored it.
    sa.Column("batch_key", sa.String(64)),
    sa.Column("scored_at", UtcDateTime()),
    sa.Index("idx_outbox_unbatched", "id",
             postgresql_where=sa.text("batch_key IS NULL"), sqlite_where=sa.text("batch_key IS NULL")),
    sa.Index("idx_outbox_batch", "batch_key"),
)

#: Seed rows inserted by ``init_schema`` (and by ``sql/schema.sql``) when missing.
SEED_ROWS: dict[sa.Table, list[dict]] = {
    ref_coin_phases: [
        {"phase_id": pid, "name": name, "interval_seconds": secs} for pid, name, secs in DEFAULT_PHASES
    ],
    ref_model_types: [
        {
            "id": i,
            "name": name,
            "description": MODEL_TYPE_DESCRIPTIONS[name],
            "default_params": DEFAULT_MODEL_PARAMS[name],
        }
        for i, name in enumerate(MODEL_TYPES, start=1)
    ],
}
