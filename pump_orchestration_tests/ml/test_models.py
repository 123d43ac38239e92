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
    assert build_estimator("xgboost", n_jobs=3).n_jobs == 3
    assert build_estimator("xgboost", {"n_jobs": 2}, n_jobs=3).n_jobs == 2  # the request's params win
