"""Import the real pump.fun trades in ../shared/realdata and train on them through Dagster, end to end."""
import pytest

from pump_orchestration.data.ingest import ingest_trades
from pump_orchestration.ml.model_store import ModelStore
from pump_orchestration.testing.dagster_servers import REPO
from pump_orchestration.testing.locations import failure_text
from pump_orchestration.warehouse import repository

TRADES_CSV = REPO.parent / "shared" / "realdata" / "pumpfun_trades" / "trades_data.csv"


@pytest.mark.realdata
def test_import_real_trades_and_train(location, warehouse_engine, tmp_path):
    if not TRADES_CSV.exists():
        pytest.skip(f"real trades absent: {TRADES_CSV} (../shared/realdata is not shipped with the project)")
    summary = ingest_trades(warehouse_engine, TRADES_CSV, interval_seconds=5)
    assert summary["coins"] == 5 and summary["rows_written"] == summary["rows"] > 10_000

    request = {"name": "real_rf", "model_type": "random_forest", "target_var": "price_close",
               "future_minutes": 5, "min_percent_change": 10.0, "direction": "up", "label_mode": "within",
               "cv_splits": 3, "params": {"n_estimators": 50}}
    result = location.train(request, partition=None, tags={"dagster/asset_partition_range_start": "2025-09-13",
                                                           "dagster/asset_partition_range_end": "2025-09-15"})
    assert result.success, failure_text(result)
    with warehouse_engine.connect() as conn:
        row = repository.get_model(conn, name="real_rf")
    balance = row["params"]["_training"]["label_balance"]
    assert balance["n_positive"] > 0 and balance["n_negative"] > 0
    # The importer has no whale split or king-of-the-hill ranking for five coins: those features still work.
    assert row["status"] == "READY" and len(row["features"]) > 40
    loaded = ModelStore(tmp_path / "data" / "models").load(row["model_file_path"], row["model_sha256"])
    assert loaded.feature_names == row["features"]
