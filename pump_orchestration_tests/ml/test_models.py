import numpy as np
import pandas as pd
import pytest

from pump_orchestration.ml import models
from pump_orchestration.ml.models import (
    RF_BOOTSTRAP_ROWS,
    accepted_params,
    available_cores,
    build_estimator,
    validate_params,
)
from pump_orchestration.vocabulary import DEFAULT_MODEL_PARAMS, MODEL_TYPES

SMALL = {
    "random_forest": {"n_estimators": 5},
    "xgboost": {"n_estimators": 5},
    "gradient_boosting": {"n_estimators": 5},
    "logistic_regression": {},
    "neural_network": {"hidden_layers": [8], "max_iter": 300},
    "rule_baseline": {"p_grid": [0.01, 1.0]},
    "random_forest_hist": {"n_estimators": 5},
}


@pytest.fixture(scope="module")
def tiny():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3))
    X[:, 1] = 5 + np.abs(X[:, 1])  # a volume ratio the rule's smallest k (2) always passes
    y = (X[:, 0] > 0).astype(int)
    # Named like engineered features, which the rule baseline reads by name.
    return pd.DataFrame(X, columns=["price_change_5", "volume_ratio_15", "other"]), y


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("model_type", MODEL_TYPES)
def test_every_type_builds_and_fits(model_type, tiny):
    X, y = tiny
    model = build_estimator(model_type, SMALL[model_type], n_jobs=1).fit(X, y)
    proba = model.predict_proba(X)
    assert proba.shape == (80, 2)
    assert (model.predict(X) == y).mean() > 0.8


def test_defaults_are_merged_and_overridden():
    assert validate_params("random_forest", None) == DEFAULT_MODEL_PARAMS["random_forest"]
    merged = validate_params("random_forest", {"max_depth": 3, "min_samples_leaf": 4})
    assert merged == {"n_estimators": 100, "max_depth": 3, "min_samples_split": 2, "min_samples_leaf": 4}
    model = build_estimator("random_forest", {"max_depth": 3})
    assert (model.n_estimators, model.max_depth, model.random_state, model.n_jobs) == (100, 3, 42, available_cores())


def test_model_specific_construction():
    xgb = build_estimator("xgboost", {"learning_rate": 0.3})
    assert (xgb.tree_method, xgb.eval_metric, xgb.learning_rate, xgb.max_depth) == ("hist", "logloss", 0.3, 6)
    logistic = build_estimator("logistic_regression", {"C": 0.5})
    assert [name for name, _ in logistic.steps] == ["scale", "clf"]
    assert (logistic[-1].C, logistic[-1].max_iter) == (0.5, 100)
    mlp = build_estimator("neural_network")
    assert mlp[-1].hidden_layer_sizes == (100, 50)
    assert (mlp[-1].activation, mlp[-1].max_iter) == ("relu", 200)


def test_random_forest_hist_is_xgboost_random_forest_mode(tiny):
    from xgboost import XGBRFClassifier

    forest = build_estimator("random_forest_hist", {"max_depth": 4})
    assert isinstance(forest, XGBRFClassifier)
    assert (forest.tree_method, forest.n_jobs, forest.random_state) == ("hist", available_cores(), 42)
    assert (forest.n_estimators, forest.max_depth, forest.subsample, forest.colsample_bynode) == (100, 4, 0.8, 0.5)
    # Random-forest mode: all n_estimators trees are grown in ONE round (parallel trees), not boosted.
    X, y = tiny
    booster = build_estimator("random_forest_hist", {"n_estimators": 7}, n_jobs=1).fit(X, y).get_booster()
    assert booster.num_boosted_rounds() == 1
    assert len(booster.get_dump()) == 7


@pytest.mark.parametrize("value", ["100, 50", (100, 50), [100, 50]])
def test_hidden_layers_accepts_list_or_string(value):
    assert validate_params("neural_network", {"hidden_layers": value})["hidden_layers"] == [100, 50]
    assert build_estimator("neural_network", {"hidden_layers": value})[-1].hidden_layer_sizes == (100, 50)


def test_estimator_name_of_alias_is_accepted_and_canonicalised():
    merged = validate_params("neural_network", {"hidden_layer_sizes": (20,)})
    assert merged["hidden_layers"] == [20] and "hidden_layer_sizes" not in merged
    with pytest.raises(ValueError, match="either 'hidden_layers' or 'hidden_layer_sizes'"):
        validate_params("neural_network", {"hidden_layers": [5], "hidden_layer_sizes": (5,)})


def test_unknown_model_type_names_field_and_allowed_values():
    with pytest.raises(ValueError) as info:
        build_estimator("svm")
    message = str(info.value)
    assert "model_type" in message and "'svm'" in message
    assert all(t in message for t in MODEL_TYPES)


def test_unknown_param_names_it_and_lists_accepted():
    with pytest.raises(ValueError) as info:
        validate_params("random_forest", {"n_trees": 10})
    message = str(info.value)
    assert "'n_trees'" in message and "random_forest" in message
    assert "n_estimators" in message and "max_depth" in message
    assert "hidden_layers" in accepted_params("neural_network")


@pytest.mark.parametrize("model_type, params, field", [
    ("random_forest", {"n_estimators": 0}, "n_estimators"),
    ("gradient_boosting", {"learning_rate": 0}, "learning_rate"),
    ("logistic_regression", {"C": -1.0}, "C"),
    ("xgboost", {"learning_rate": 0}, "learning_rate"),
    ("xgboost", {"n_estimators": 0}, "n_estimators"),
    ("xgboost", {"subsample": 1.5}, "subsample"),
    ("random_forest_hist", {"subsample": 0}, "subsample"),
    ("random_forest_hist", {"max_depth": 2.5}, "max_depth"),
    ("random_forest_hist", {"colsample_bynode": 1.2}, "colsample_bynode"),
    ("neural_network", {"hidden_layers": [0]}, "hidden_layers"),
    ("neural_network", {"activation": "sigmoid"}, "activation"),
])
def test_bad_values_name_the_param(model_type, params, field):
    with pytest.raises(ValueError, match=field):
        validate_params(model_type, params)


def test_random_forest_bootstrap_is_bounded_on_large_inputs():
    assert build_estimator("random_forest", n_samples=1_000).max_samples is None
    big = build_estimator("random_forest", n_samples=4 * RF_BOOTSTRAP_ROWS)
    assert big.max_samples == pytest.approx(0.25)
    assert build_estimator("random_forest", {"max_samples": 0.9}, n_samples=10**6).max_samples == 0.9
    assert build_estimator("random_forest", {"bootstrap": False}, n_samples=10**6).max_samples is None
    assert build_estimator("random_forest", n_jobs=2).n_jobs == 2


def test_thread_count_follows_affinity_and_cgroup_quota(monkeypatch, tmp_path):
    monkeypatch.setattr(models.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    monkeypatch.setattr(models, "CGROUP_CPU_MAX", tmp_path / "missing")
    assert available_cores() == 4
    quota = tmp_path / "cpu.max"
    monkeypatch.setattr(models, "CGROUP_CPU_MAX", quota)
    for text, cores in (("max 100000", 4), ("250000 100000", 2), ("50000 100000", 1), ("800000 100000", 4)):
        quota.write_text(text)
        assert available_cores() == cores
    quota.write_text("150000 100000")
    assert build_estimator("xgboost").n_jobs == 1 and build_estimator("random_forest").n_jobs == 1
    assert build_estimator("random_forest_hist").n_jobs == 1
    assert build_estimator("xgboost", n_jobs=3).n_jobs == 3
    assert build_estimator("xgboost", {"n_jobs": 2}, n_jobs=3).n_jobs == 2  # the request's params win


def test_random_forest_hist_trains_stores_and_scores_like_any_model(tmp_path):
    """End to end on a synthetic market: labels, features, purged CV + final fit, artifact round trip, test report."""
    from dataclasses import replace

    from sklearn.metrics import roc_auc_score

    from pump_orchestration.data.synthetic import generate_coin_metrics
    from pump_orchestration.ml.dataset import FUTURE_CHANGE, LABEL
    from pump_orchestration.ml.evaluation import ModelUnderTest, score_rows
    from pump_orchestration.ml.model_store import ModelStore
    from pump_orchestration.ml.pipeline import feature_frame, fit_request, label_frame
    from pump_orchestration.ml.request import TrainingRequest

    t0 = pd.Timestamp("2025-09-01T00:00:00Z")
    train_end, test_end = t0 + pd.Timedelta(hours=4), t0 + pd.Timedelta(hours=6)
    market, _ = generate_coin_metrics(n_coins=120, start=t0.isoformat(), hours=6, seed=3)
    market = market.sort_values(["timestamp", "mint"]).reset_index(drop=True)
    request = TrainingRequest(name="hist", model_type="random_forest_hist", label_mode="within", cv_splits=2,
                              params={"n_estimators": 30, "max_depth": 6}, n_jobs=1)
    # The training asset's own path: labels, features and selection, then the fit.
    frame, names, _, _ = feature_frame(label_frame(market, request, train_end), request, t0, train_end)
    trained = fit_request(frame[names], frame[LABEL], frame["timestamp"], frame[FUTURE_CHANGE], request,
                          params=request.params, train_start=t0, train_end=train_end, mints=frame["mint"])
    result = trained.result
    assert result.model_type == "random_forest_hist" and result.params["max_depth"] == 6
    assert result.params["subsample"] == DEFAULT_MODEL_PARAMS["random_forest_hist"]["subsample"]
    assert len(result.cv_scores["test_f1"]) == 2 and result.metrics["roc_auc"] > 0.6
    assert abs(sum(result.feature_importance.values()) - 1) < 1e-6

    store = ModelStore(tmp_path / "models")
    stored = store.save(result.estimator, name="hist", feature_names=result.feature_names,
                        metadata={"model_type": "random_forest_hist"})
    loaded = store.load(stored.path, stored.sha256)
    model = ModelUnderTest.from_trained(trained)
    report = score_rows(model, market, train_end, test_end)
    reloaded = score_rows(replace(model, estimator=loaded.estimator), market, train_end, test_end)
    assert len(report.y_true) > 1000 and np.array_equal(report.proba, reloaded.proba)
    assert roc_auc_score(report.y_true, report.proba) > 0.6  # later rows, never seen in training
