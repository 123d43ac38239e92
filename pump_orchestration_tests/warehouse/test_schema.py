"""Schema: the hand-written SQL equals init_schema, seeds, idempotence, CHECK constraints."""
from __future__ import annotations

import datetime as dt
import re
import threading
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa

from pump_orchestration.vocabulary import DEFAULT_PHASES
from pump_orchestration.warehouse import schema
from pump_orchestration.warehouse.db import init_schema, is_postgres, make_engine
from pump_orchestration.warehouse.repository import insert_model

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"

# The product's published defaults, written out on purpose, not imported from the code under test.
PUBLISHED_DEFAULTS = {
    "random_forest": {"n_estimators": 100, "max_depth": 10, "min_samples_split": 2},
    "xgboost": {"n_estimators": 100, "max_depth": 6, "learning_rate": 0.1},
    "gradient_boosting": {"n_estimators": 100, "max_depth": 3, "learning_rate": 0.1},
    "logistic_regression": {"C": 1.0, "max_iter": 100},
    "neural_network": {"hidden_layers": [100, 50], "activation": "relu", "max_iter": 200},
    "rule_baseline": {"volume_feature": None, "price_feature": None},
    "random_forest_hist": {"n_estimators": 100, "max_depth": 8, "subsample": 0.8, "colsample_bynode": 0.5},
}

T0 = dt.datetime(2025, 9, 1, tzinfo=dt.timezone.utc)


def _norm(text: str | None) -> str | None:
    return None if text is None else re.sub(r"\s+", " ", text).strip()


def _catalogue(url: str) -> dict:
    """Tables, columns, constraints and indexes of the public schema, in comparable form."""
    conn = psycopg2.connect(url.replace("postgresql+psycopg2://", "postgresql://"))
    try:
        with conn.cursor() as cur:
            cur.execute("""
                SELECT table_name, column_name, data_type, character_maximum_length,
                       is_nullable, column_default
                FROM information_schema.columns WHERE table_schema = 'public'
                ORDER BY table_name, ordinal_position""")
            columns = cur.fetchall()
            cur.execute("""
                SELECT conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid)
                FROM pg_constraint WHERE connamespace = 'public'::regnamespace
                ORDER BY 1, 2""")
            constraints = [(t, n, c, _norm(d)) for t, n, c, d in cur.fetchall()]
            cur.execute("""
                SELECT tablename, indexname, indexdef FROM pg_indexes
                WHERE schemaname = 'public' ORDER BY 1, 2""")
            indexes = [(t, n, _norm(d)) for t, n, d in cur.fetchall()]
            cur.execute("SELECT tgrelid::regclass::text, tgname FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1, 2")
            triggers = cur.fetchall()
            cur.execute("SELECT phase_id, name, interval_seconds FROM ref_coin_phases ORDER BY 1")
            phases = cur.fetchall()
            cur.execute("SELECT id, name, description, default_params FROM ref_model_types ORDER BY 1")
            model_types = cur.fetchall()
    finally:
        conn.close()
    return {
        "tables": sorted({c[0] for c in columns}),
        "columns": columns,
        "constraints": constraints,
        "indexes": indexes,
        "triggers": triggers,
        "phases": phases,
        "model_types": model_types,
    }


def test_sql_files_equal_init_schema(postgres_server):
    by_sql = postgres_server.create_database()
    by_code = postgres_server.create_database()
    try:
        conn = psycopg2.connect(postgres_server.url(by_sql, driver="postgresql"))
        conn.autocommit = True
        with conn.cursor() as cur:
            for name in ("schema.sql", "coin_metrics.sql", "coin_metrics_outbox.sql",
                         "schema.sql", "coin_metrics_outbox.sql"):  # twice: must be idempotent
                cur.execute((SQL_DIR / name).read_text())
        conn.close()
        engine = make_engine(postgres_server.url(by_code))
        init_schema(engine, create_coin_metrics=True)
        engine.dispose()

        expected = _catalogue(postgres_server.url(by_code))
        actual = _catalogue(postgres_server.url(by_sql))
    finally:
        postgres_server.drop_database(by_sql)
        postgres_server.drop_database(by_code)
    assert set(expected["tables"]) == set(schema.metadata.tables) | {"coin_metrics"}
    assert actual["tables"] == expected["tables"]
    assert expected["triggers"] == [("coin_metrics", "trg_coin_metrics_outbox")]
    for key in ("columns", "constraints", "indexes", "triggers", "phases", "model_types"):
        assert actual[key] == expected[key], key


def test_outbox_trigger_file_is_the_code_s_trigger():
    from pump_orchestration.warehouse.outbox import POSTGRES_TRIGGER_SQL

    text = (SQL_DIR / "coin_metrics_outbox.sql").read_text()
    assert "\n".join(line for line in text.splitlines() if not line.startswith("--")).strip() == \
        POSTGRES_TRIGGER_SQL.strip()


def test_named_constraints_and_indexes_exist(warehouse_engine):
    inspector = sa.inspect(warehouse_engine)
    checks = {c["name"] for c in inspector.get_check_constraints("ml_models")}
    assert {"chk_models_status", "chk_models_future_minutes", "chk_models_train_window"} <= checks
    assert {i["name"] for i in inspector.get_indexes("coin_metrics")} == {"idx_coin_metrics_timestamp"}
    assert "idx_jobs_status" in {i["name"] for i in inspector.get_indexes("ml_jobs")}


def _seeds(engine) -> tuple[list, dict]:
    with engine.connect() as conn:
        phases = [tuple(r) for r in conn.execute(sa.select(schema.ref_coin_phases).order_by("phase_id"))]
        types = dict(conn.execute(sa.select(schema.ref_model_types.c.name, schema.ref_model_types.c.default_params)).all())
    return phases, types


def test_seeds_equal_spec_and_init_is_idempotent(warehouse_engine):
    init_schema(warehouse_engine, create_coin_metrics=True)
    init_schema(warehouse_engine, create_coin_metrics=True)
    phases, types = _seeds(warehouse_engine)
    assert phases == list(DEFAULT_PHASES)
    assert types == PUBLISHED_DEFAULTS


def test_init_adds_columns_a_newer_version_added(warehouse_engine):
    """A warehouse created before ml_models.alert_threshold and ml_test_results.event_metrics existed."""
    with warehouse_engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE ml_models DROP COLUMN alert_threshold"))
        conn.execute(sa.text("ALTER TABLE ml_test_results DROP COLUMN event_metrics"))
    init_schema(warehouse_engine)
    inspector = sa.inspect(warehouse_engine)
    assert "alert_threshold" in {c["name"] for c in inspector.get_columns("ml_models")}
    assert "event_metrics" in {c["name"] for c in inspector.get_columns("ml_test_results")}


def test_init_keeps_edited_seed_rows(warehouse_engine):
    with warehouse_engine.begin() as conn:
        conn.execute(sa.update(schema.ref_coin_phases).where(schema.ref_coin_phases.c.phase_id == 2).values(interval_seconds=15))
    init_schema(warehouse_engine)
    phases, _ = _seeds(warehouse_engine)
    assert phases[1] == (2, "active", 15)


def test_concurrent_init_on_postgres(pg_dsn):
    engines = [make_engine(pg_dsn) for _ in range(2)]
    errors: list[BaseException] = []

    def run(engine):
        try:
            init_schema(engine)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(e,)) for e in engines]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for e in engines:
        e.dispose()
    assert errors == []
    check = make_engine(pg_dsn)
    phases, types = _seeds(check)
    check.dispose()
    assert len(phases) == len(DEFAULT_PHASES) and len(types) == len(PUBLISHED_DEFAULTS)


def test_coin_metrics_created_only_where_we_own_it(pg_dsn, sqlite_dsn):
    pg, lite = make_engine(pg_dsn), make_engine(sqlite_dsn)
    init_schema(pg)
    init_schema(lite)
    assert not sa.inspect(pg).has_table("coin_metrics")
    assert sa.inspect(lite).has_table("coin_metrics")
    assert is_postgres(pg) and not is_postgres(lite)
    pg.dispose()
    lite.dispose()


def test_make_engine_defaults_to_embedded_sqlite(tmp_path, monkeypatch):
    monkeypatch.delenv("DB_DSN", raising=False)
    monkeypatch.delenv("PUMP_DEPLOYMENT", raising=False)
    monkeypatch.setenv("PUMP_DATA_DIR", str(tmp_path / "not" / "yet"))
    engine = make_engine()
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
    assert (tmp_path / "not" / "yet" / "warehouse.sqlite").exists()
    engine.dispose()


def _model(**overrides) -> dict:
    values = {
        "name": "m", "model_type": "random_forest", "target_variable": "price_close",
        "train_start": T0, "train_end": T0 + dt.timedelta(days=1), "features": ["price_close"],
    }
    return {**values, **overrides}


@pytest.mark.parametrize(
    "overrides",
    [
        {"status": "BOGUS"},
        {"future_minutes": 0},
        {"model_type": "svm"},
        {"target_operator": "!="},
        {"target_direction": "sideways"},
        {"train_end": T0},
    ],
    ids=lambda o: next(iter(o)),
)
def test_ml_models_checks_reject(warehouse_engine, overrides):
    with pytest.raises(sa.exc.IntegrityError), warehouse_engine.begin() as conn:
        insert_model(conn, _model(**overrides))


def test_other_checks_reject(warehouse_engine):
    with warehouse_engine.begin() as conn:
        model_id = insert_model(conn, _model())
    bad_rows = [
        (schema.ml_comparisons, {"model_a_id": model_id, "model_b_id": model_id, "test_start": T0,
                                 "test_end": T0 + dt.timedelta(hours=1)}),
        (schema.ml_jobs, {"job_type": "TRAIN", "progress": 1.5}),
        (schema.ml_jobs, {"job_type": "TRAIN", "status": "DONE"}),
        (schema.predictions, {"coin_id": "x", "data_timestamp": T0, "model_id": model_id,
                              "prediction": 2, "probability": 0.5}),
        (schema.predictions, {"coin_id": "x", "data_timestamp": T0, "model_id": model_id,
                              "prediction": 1, "probability": 1.5}),
        (schema.ref_coin_phases, {"phase_id": 9, "name": "x", "interval_seconds": 0}),
    ]
    for table, row in bad_rows:
        with pytest.raises(sa.exc.IntegrityError), warehouse_engine.begin() as conn:
            conn.execute(table.insert().values(**row))


def test_foreign_keys_enforced(warehouse_engine):
    with pytest.raises(sa.exc.IntegrityError), warehouse_engine.begin() as conn:
        conn.execute(schema.ml_test_results.insert().values(
            model_id=12345, test_start=T0, test_end=T0 + dt.timedelta(hours=1)))


def test_active_model_defaults(warehouse_engine):
    with warehouse_engine.begin() as conn:
        conn.execute(schema.prediction_active_models.insert().values(
            model_id=1, model_name="m", model_type="xgboost", target_variable="price_close",
            features=["a"], local_model_path="/tmp/m.joblib"))
        row = conn.execute(sa.select(schema.prediction_active_models)).mappings().one()
        assert row["alert_threshold"] == pytest.approx(0.7)
        assert row["is_active"] is True and row["total_predictions"] == 0
        assert row["created_at"].tzinfo is not None
        with pytest.raises(sa.exc.IntegrityError), conn.begin_nested():
            conn.execute(schema.prediction_active_models.insert().values(
                model_id=1, model_name="again", model_type="xgboost", target_variable="price_close",
                features=["a"], local_model_path="/tmp/m.joblib"))
