"""A warehouse with a market, two trained and activated models, and rows still to arrive."""
import pandas as pd
import pytest

from pump_orchestration.data.synthetic import generate_coin_metrics
from pump_orchestration.ml.model_store import ModelStore
from pump_orchestration.warehouse import active_models
from pump_orchestration.warehouse.coin_metrics import write_coin_metrics
from pump_orchestration.warehouse.schema import coin_metrics_outbox

DAY = "2025-09-01"
LIVE_FROM = pd.Timestamp(f"{DAY}T05:30:00Z")
REQUEST = {"model_type": "xgboost", "target_var": "price_close", "future_minutes": 10, "min_percent_change": 30.0,
           "label_mode": "within", "cv_splits": 3, "params": {"n_estimators": 20},
           "train_end": f"{DAY}T05:00:00Z"}


@pytest.fixture
def live_market(location):
    """History up to 05:30 in the warehouse (not queued for scoring); later rows returned to insert by hand."""
    metrics, _ = generate_coin_metrics(n_coins=90, start=f"{DAY}T00:00:00Z", hours=6, seed=11)
    write_coin_metrics(location.engine, metrics[metrics["timestamp"] < LIVE_FROM])
    with location.engine.begin() as conn:  # rows from before live scoring started are history, not news
        conn.execute(coin_metrics_outbox.delete())
    for name, model_type in (("live_xgb", "xgboost"), ("live_rf", "random_forest")):
        result = location.train({**REQUEST, "name": name, "model_type": model_type,
                                 "params": {"n_estimators": 20}})
        assert result.success
        # force: these tests are about scoring; whether a model beats the rule is test_activation's concern
        active_models.activate(location.engine, name, store=ModelStore(location.data_dir / "models"),
                               active_dir=location.data_dir / "active_models",
                               threshold=0.0 if name == "live_rf" else None, force=True)
    return metrics[metrics["timestamp"] >= LIVE_FROM].sort_values("timestamp").reset_index(drop=True)
