"""The training chain run through Dagster on the embedded SQLite warehouse and on a real PostgreSQL."""
import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from pump_orchestration.data.synthetic import generate_coin_metrics
from pump_orchestration.ml.model_store import ModelStore
from pump_orchestration.testing.locations import failure_text
from pump_orchestration.warehouse import repository
from pump_orchestration.warehouse.coin_metrics import write_coin_metrics

DAY = "2025-09-01"
REQUEST = {
    "name": "m1", "model_type": "xgboost", "target_var": "price_close", "future_minutes": 10,
    "min_percent_change": 30.0, "direction": "up", "cv_splits": 3, "params": {"n_estimators": 30},
}


@pytest.fixture
def market(location):
    """A warehouse with 6 hours of synthetic coin_metrics."""
    metrics, pumps = generate_coin_metrics(n_coins=90, start=f"{DAY}T00:00:00Z", hours=6, seed=11)
    write_coin_metrics(location.engine, metrics)
    return location


def test_train_model_job_writes_model_row_and_verified_artifact(market, tmp_path):
    result = market.train(REQUEST)
    assert result.success, failure_text(result)

    [row] = market.models()
    assert row["name"] == "m1" and row["status"] == "READY" and row["model_type"] == "xgboost"
    assert row["train_start"] == pd.Timestamp(DAY, tz="UTC") and row["train_end"] == pd.Timestamp("2025-09-02", tz="UTC")
    assert row["params"]["n_estimators"] == 30 and row["params"]["max_depth"] == 6  # default from ref_model_types
    assert "price_close" not in row["features"] and "volume_ratio_5" in row["features"]
    assert set(row["confusion_matrix"]) == {"tp", "tn", "fp", "fn"}
    assert len(row["cv_scores"]["test_f1"]) == 3 and row["cv_overfitting_gap"] is not None
    assert abs(sum(row["feature_importance"].values()) - 1) < 1e-6

    loaded = ModelStore(tmp_path / "data" / "models").load(row["model_file_path"], row["model_sha256"])
    assert loaded.feature_names == row["features"]
    assert loaded.metadata["label_spec"]["future_minutes"] == 10

    meta = result.asset_materializations_for_node("fitted_model")[0].metadata
    for key in ("accuracy", "f1", "precision", "recall", "roc_auc", "cv_scores", "feature_importance",
                "label_balance", "rows_used", "stage_seconds", "model_id"):
        assert key in meta, key
    assert set(meta["stage_seconds"].value) == {"load", "labels", "features", "train"}
    assert meta["model_id"].value == row["id"]


def test_a_range_of_days_is_one_model_and_days_are_cached_separately(location, warehouse_engine, tmp_path, monkeypatch):
    metrics, _ = generate_coin_metrics(n_coins=120, start=f"{DAY}T20:00:00Z", hours=8, seed=11)
    write_coin_metrics(warehouse_engine, metrics)
    result = location.train(REQUEST, partition=None, tags={"dagster/asset_partition_range_start": DAY,
                                                  "dagster/asset_partition_range_end": "2025-09-02"})
    assert result.success, failure_text(result)
    [row] = location.models()
    assert row["train_end"] - row["train_start"] == pd.Timedelta(days=2)

    cache = tmp_path / "data" / "cache" / "coin_metrics_slice"
    assert sorted(p.name for p in cache.glob("*.parquet")) == ["2025-09-01.parquet", "2025-09-02.parquet"]
    # Each day holds its own rows plus the look-back before it; together they are exactly the window's rows.
    day2 = pd.read_parquet(cache / "2025-09-02.parquet")
    assert day2["timestamp"].min() >= pd.Timestamp("2025-09-02", tz="UTC") - pd.Timedelta(minutes=60)
    assert (day2["timestamp"] < pd.Timestamp("2025-09-02", tz="UTC")).any()
    meta = result.asset_materializations_for_node("coin_metrics_slice")[0].metadata
    assert meta["rows_loaded"].value == len(metrics)


def test_train_start_and_end_narrow_the_window(market):
    result = market.train({**REQUEST, "train_start": f"{DAY}T01:00:00Z", "train_end": f"{DAY}T05:00:00Z"})
    assert result.success, failure_text(result)
    [row] = market.models()
    assert (row["train_start"], row["train_end"]) == (pd.Timestamp(f"{DAY}T01:00", tz="UTC"),
                                                      pd.Timestamp(f"{DAY}T05:00", tz="UTC"))
    split = row["params"]["_training"]["split"]
    assert pd.Timestamp(split["test_end_ts"]) < pd.Timestamp(f"{DAY}T05:00", tz="UTC")


def test_invalid_request_fails_before_any_step(market):
    result = market.train({**REQUEST, "model_type": "svm", "future_minutes": 0, "features": ["price_close", "nope"]})
    assert not result.success
    text = failure_text(result)
    assert "model_type: 'svm' is unknown; allowed: random_forest" in text
    assert "future_minutes: must be > 0" in text and "column 'nope' is not in coin_metrics" in text
    assert result.get_step_success_events() == [] and not result.asset_materializations_for_node("coin_metrics_slice")
    assert market.models() == []


def test_duplicate_name_is_rejected_and_the_first_model_kept(market, tmp_path):
    assert market.train(REQUEST).success
    second = market.train(REQUEST)
    assert not second.success and "a model named 'm1' already exists" in failure_text(second)
    assert len(market.models()) == 1 and len(market.artifacts()) == 1


@pytest.mark.parametrize(
    "changes, partition, message",
    [
        ({}, "2025-09-05", "empty window: no coin_metrics rows"),
        ({"min_percent_change": 5000.0}, DAY, "class 0"),
        ({"cv_splits": 400}, DAY, "cv_splits"),
        ({"phases": [3], "train_end": f"{DAY}T00:20:00Z"}, DAY, "phases: no rows of phases [3]"),
    ],
)
def test_data_problems_fail_the_run_and_write_nothing(market, tmp_path, changes, partition, message):
    result = market.train({**REQUEST, **changes}, partition=partition)
    assert not result.success
    assert message in failure_text(result)
    assert market.models() == [] and market.artifacts() == []


def test_all_nan_feature_and_missing_optional_columns(location, warehouse_engine, tmp_path, monkeypatch):
    metrics, _ = generate_coin_metrics(n_coins=90, start=f"{DAY}T00:00:00Z", hours=6, seed=11)
    # The tracker never filled unique_wallets, and it does not write whale volumes at all.
    metrics["unique_wallets"] = None
    write_coin_metrics(warehouse_engine, metrics.drop(columns=["whale_buy_volume_sol", "whale_sell_volume_sol"]))

    result = location.train({**REQUEST, "features": ["volume_sol", "unique_wallets"]})
    assert not result.success
    assert "['unique_wallets'] are NaN on every labelled row" in failure_text(result)

    result = location.train({**REQUEST, "name": "m2", "features": ["volume_sol"], "use_smote": False})
    assert result.success, failure_text(result)
    skipped = result.asset_materializations_for_node("engineered_features")[0].metadata["skipped_features"].value
    assert any("whale" in name for name in skipped)
    assert skipped["wallet_ratio_5"] == "needs 'unique_wallets', NULL on every loaded row"
    [row] = location.models()
    assert not any("wallet" in f or "whale" in f for f in row["features"])


def test_failed_row_insert_removes_the_artifact(location, warehouse_engine, tmp_path, monkeypatch):
    """The IO manager writes the artifact first; if the row cannot be written the artifact goes too."""
    metrics, _ = generate_coin_metrics(n_coins=90, start=f"{DAY}T00:00:00Z", hours=6, seed=11)
    write_coin_metrics(warehouse_engine, metrics)
    # A trigger-free way to make the insert fail after validation: a row with the same name appears meanwhile.
    real_insert = repository.insert_model

    def racing_insert(conn, values):
        with warehouse_engine.begin() as other:
            real_insert(other, {**values, "model_file_path": "elsewhere", "model_sha256": "0" * 64})
        return real_insert(conn, values)

    monkeypatch.setattr(repository, "insert_model", racing_insert)
    result = location.train(REQUEST)
    assert not result.success
    assert isinstance(failure_text(result), str) and location.artifacts() == []
    [row] = location.models()
    assert row["model_file_path"] == "elsewhere"


def test_stale_intermediate_from_another_request_is_refused(market):
    assert market.train(REQUEST).success
    only_model = market.defs.resolve_job_def("train_model_job").get_subset(
        asset_selection={dg.AssetKey("fitted_model")}
    ).execute_in_process(
        run_config={"resources": {"training_request": {"config": {**REQUEST, "name": "m2", "future_minutes": 20}}}},
        partition_key=DAY, instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
    )
    assert not only_model.success
    assert "built for a different request" in failure_text(only_model)
    with market.engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from ml_models")).scalar() == 1


def test_failed_blocking_quality_check_fails_the_run_and_is_stored_with_the_model(market, monkeypatch):
    """A model that does not beat the majority baseline fails the run and is stored FAILED with the reason."""
    import pump_orchestration.ml.quality as quality

    monkeypatch.setattr(quality, "BASELINE_ROC_AUC", 0.999)
    result = market.train(REQUEST)
    assert not result.success and "fitted_model: beats_majority_baseline" in failure_text(result)
    checks = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert not checks["beats_majority_baseline"].passed
    assert checks["beats_majority_baseline"].severity == dg.AssetCheckSeverity.ERROR
    [row] = market.models()
    assert row["params"]["_checks"]["beats_majority_baseline"] == {
        "passed": False, "blocking": True, "description": checks["beats_majority_baseline"].description}
    # A failed run leaves the model FAILED with the reason, never READY.
    assert row["status"] == "FAILED"
    assert row["error_msg"].startswith("blocking quality check failed: beats_majority_baseline: ROC-AUC")
