"""The classifier catalogue: model types, default hyper-parameters and estimator construction.

The model types and their defaults are ``vocabulary.DEFAULT_MODEL_PARAMS`` (also seeded into
``ref_model_types``); request params override them. Parameter names are the estimator's own
(``get_params()``) plus the aliases in ``PARAM_ALIASES`` (``hidden_layers`` for the MLP, as in the
original service).
"""
from __future__ import annotations

import numbers
import os
from pathlib import Path
from typing import Any

from pump_orchestration.vocabulary import DEFAULT_MODEL_PARAMS, MODEL_TYPES

#: Product-facing parameter name -> the estimator's own name, per model type.
PARAM_ALIASES: dict[str, dict[str, str]] = {
    "neural_network": {"hidden_layers": "hidden_layer_sizes"},
}

#: cgroup v2 CPU limit of this process's container ("<quota> <period>" or "max <period>").
CGROUP_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")


def available_cores() -> int:
    """Cores this process may really use: its CPU affinity, capped by a cgroup CPU quota.

    ``os.cpu_count()`` and OpenMP count the machine's cores; on a shared or limited machine
    threads beyond the allowed cores only contend (measured: XGBoost ~5x slower on 2 shared cores).
    A fractional quota rounds down (1.5 cores -> 1 thread), never below 1.
    """
    cores = len(os.sched_getaffinity(0))
    try:
        quota, period = CGROUP_CPU_MAX.read_text().split()
        if quota != "max":
            cores = min(cores, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2 limit readable: affinity alone
    return cores


#: Upper bound on the rows each RandomForest tree sees (see ``build_estimator``).
RF_BOOTSTRAP_ROWS = 200_000

# Bounds checked here because the estimator does not: XGBClassifier (and XGBRFClassifier) validate
# nothing until fit (and then deep inside their C++ core), and GradientBoostingClassifier
# accepts learning_rate=0, which never learns.
# name -> (lower bound, lower bound inclusive, upper bound or None, integer only).
_XGB_BOUNDS: dict[str, tuple[float, bool, float | None, bool]] = {
    "n_estimators": (1, True, None, True),
    "max_depth": (0, True, None, True),
    "learning_rate": (0, False, None, False),
    "min_child_weight": (0, True, None, False),
    "gamma": (0, True, None, False),
    "subsample": (0, False, 1, False),
    "colsample_bytree": (0, False, 1, False),
    "colsample_bylevel": (0, False, 1, False),
    "colsample_bynode": (0, False, 1, False),
    "reg_alpha": (0, True, None, False),
    "reg_lambda": (0, True, None, False),
    "scale_pos_weight": (0, False, None, False),
}
#: Model types built on XGBoost's scikit-learn API (their own parameter checks, hist trees, nthread).
_XGBOOST_TYPES = ("xgboost", "random_forest_hist")
_EXTRA_BOUNDS: dict[str, dict[str, tuple[float, bool, float | None, bool]]] = {
    **{t: _XGB_BOUNDS for t in _XGBOOST_TYPES},
    "gradient_boosting": {"learning_rate": (0, False, None, False)},
}


def _classifier_class(model_type: str):
    if model_type == "random_forest":
        from sklearn.ensemble import RandomForestClassifier
        return RandomForestClassifier
    if model_type == "xgboost":
        from xgboost import XGBClassifier
        return XGBClassifier
    if model_type == "random_forest_hist":
        from xgboost import XGBRFClassifier
        return XGBRFClassifier
    if model_type == "gradient_boosting":
        from sklearn.ensemble import GradientBoostingClassifier
        return GradientBoostingClassifier
    if model_type == "logistic_regression":
        from sklearn.linear_model import LogisticRegression
        return LogisticRegression
    if model_type == "rule_baseline":
        from pump_orchestration.ml.rules import RuleBaselineClassifier
        return RuleBaselineClassifier
    from sklearn.neural_network import MLPClassifier
    return MLPClassifier


def accepted_params(model_type: str) -> list[str]:
    """Sorted parameter names a request may set for ``model_type`` (estimator names plus aliases)."""
    _check_model_type(model_type)
    names = set(_classifier_class(model_type)().get_params(deep=False)) | set(PARAM_ALIASES.get(model_type, {}))
    return sorted(names)


def _check_model_type(model_type: str) -> None:
    if model_type not in MODEL_TYPES:
        raise ValueError(f"model_type: unknown value {model_type!r}; allowed: {', '.join(MODEL_TYPES)}")


def _parse_hidden_layers(value: Any) -> list[int]:
    """``[100, 50]``, ``(100, 50)``, ``"100,50"`` or ``100`` -> ``[100, 50]`` / ``[100]``."""
    if isinstance(value, str):
        parts = [p.strip() for p in value.split(",") if p.strip()]
    elif isinstance(value, numbers.Integral) and not isinstance(value, bool):
        parts = [value]
    elif isinstance(value, (list, tuple)):
        parts = list(value)
    else:
        parts = []
    try:
        sizes = [int(p) for p in parts]
    except (TypeError, ValueError):
        sizes = []
    if not sizes or any(s < 1 for s in sizes) or any(isinstance(p, (bool, float)) for p in parts):
        raise ValueError(
            f"hidden_layers: expected positive layer sizes such as [100, 50] or '100,50', got {value!r}"
        )
    return sizes


def _merge_params(model_type: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """Defaults overridden by ``params``, with aliases canonicalised to the product-facing name."""
    _check_model_type(model_type)
    params = dict(params or {})
    allowed = accepted_params(model_type)
    unknown = sorted(k for k in params if k not in allowed)
    if unknown:
        raise ValueError(
            f"params: unknown parameter(s) {', '.join(map(repr, unknown))} for model_type {model_type!r}; "
            f"accepted: {', '.join(allowed)}"
        )
    for alias, own in PARAM_ALIASES.get(model_type, {}).items():
        if own in params:
            if alias in params:
                raise ValueError(f"params: give either {alias!r} or {own!r}, not both")
            params[alias] = params.pop(own)
    merged = {**DEFAULT_MODEL_PARAMS[model_type], **params}
    if model_type == "neural_network":
        merged["hidden_layers"] = _parse_hidden_layers(merged["hidden_layers"])
    return merged


def _check_bounds(model_type: str, params: dict[str, Any]) -> None:
    for name, (low, low_inclusive, high, integer) in _EXTRA_BOUNDS.get(model_type, {}).items():
        if name not in params or params[name] is None:
            continue
        value = params[name]
        kind = numbers.Integral if integer else numbers.Real
        ok = isinstance(value, kind) and not isinstance(value, bool)
        ok = ok and (value >= low if low_inclusive else value > low) and (high is None or value <= high)
        if not ok:
            bound = f"{'>=' if low_inclusive else '>'} {low}" + (f" and <= {high}" if high is not None else "")
            raise ValueError(
                f"params: {name!r} of {model_type} must be {'an integer' if integer else 'a number'} {bound}, "
                f"got {value!r}"
            )


def _build(model_type: str, params: dict[str, Any] | None, random_state: int, n_jobs: int | None,
           n_samples: int | None):
    merged = _merge_params(model_type, params)
    _check_bounds(model_type, merged)
    user_params = params or {}
    kwargs = dict(merged)
    if model_type != "rule_baseline":  # the rule is deterministic: no seed to take
        kwargs.setdefault("random_state", random_state)
    if model_type == "random_forest":
        # Cost bound for ~1 M training rows: sklearn's default bootstrap draws n rows
        # per tree, so 100 trees of depth 10 take many minutes on 2 cores. We keep
        # the default n_estimators/max_depth but (a) use every available core unless told otherwise and
        # (b) let each tree see a bootstrap sample of at most RF_BOOTSTRAP_ROWS rows
        # (max_samples as a fraction of the rows being fitted). With ~40 features,
        # 200 k rows per tree still give stable splits; the user may set max_samples.
        kwargs.setdefault("n_jobs", available_cores() if n_jobs is None else n_jobs)
        if ("max_samples" not in user_params and kwargs.get("bootstrap", True)
                and n_samples is not None and n_samples > RF_BOOTSTRAP_ROWS):
            kwargs["max_samples"] = RF_BOOTSTRAP_ROWS / n_samples
    elif model_type in _XGBOOST_TYPES:
        kwargs.setdefault("n_jobs", available_cores() if n_jobs is None else n_jobs)
        kwargs.setdefault("tree_method", "hist")
        kwargs.setdefault("eval_metric", "logloss")
    elif model_type == "neural_network":
        kwargs["hidden_layer_sizes"] = tuple(kwargs.pop("hidden_layers"))

    classifier = _classifier_class(model_type)(**kwargs)
    if model_type not in _XGBOOST_TYPES:
        try:
            # sklearn's own constraint check (private API, stable since 1.2); fit would run it too.
            classifier._validate_params()
        except ValueError as exc:
            raise ValueError(f"params: {exc}") from exc

    if model_type in ("logistic_regression", "neural_network"):
        from sklearn.pipeline import Pipeline
        from sklearn.preprocessing import StandardScaler
        # Both are scale-sensitive; the scaler travels inside the artifact so scoring scales identically.
        return Pipeline([("scale", StandardScaler()), ("clf", classifier)]), merged
    return classifier, merged


def build_estimator(model_type: str, params: dict[str, Any] | None = None, random_state: int = 42,
                    n_jobs: int | None = None, n_samples: int | None = None):
    """An unfitted classifier for ``model_type`` with ``DEFAULT_MODEL_PARAMS`` overridden by ``params``.

    ``random_state``/``n_jobs`` apply unless ``params`` sets them; ``n_jobs=None`` means
    ``available_cores()`` threads for random_forest, random_forest_hist and xgboost (the other types
    run single-threaded).
    ``n_samples`` is the number of rows the estimator will be fitted on; for
    random_forest above ``RF_BOOTSTRAP_ROWS`` it bounds each tree's bootstrap sample.
    logistic_regression and neural_network come wrapped in
    ``Pipeline(StandardScaler, classifier)``.

    Raises ``ValueError`` naming the field for an unknown model_type, an unknown
    parameter (listing the accepted ones) or an invalid value.
    """
    return _build(model_type, params, random_state, n_jobs, n_samples)[0]


def validate_params(model_type: str, params: dict[str, Any] | None) -> dict[str, Any]:
    """The final merged hyper-parameters for ``model_type`` (defaults overridden by ``params``).

    Builds (does not fit) the estimator so every check of ``build_estimator`` runs;
    raises ``ValueError`` on the first problem. ``hidden_layers`` is normalised to a list of ints.
    """
    return _build(model_type, params, 42, None, None)[1]
