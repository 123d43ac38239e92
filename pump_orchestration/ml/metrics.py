"""Classification metrics, the simulated trading profit and feature importance.

Every value returned is a plain Python ``int``/``float``/``None`` so it can go
straight into JSON columns and Dagster metadata.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np

#: pump.fun charges 1 % per side, so a round trip (buy + sell) costs 2 %.
DEFAULT_FEE_PCT = 2.0

#: Rows used for permutation importance (models without built-in importances).
PERMUTATION_MAX_ROWS = 5_000


def _ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else numerator / denominator


def simulated_profit(y_pred, future_change_pct, direction: str = "up",
                     fee_pct: float = DEFAULT_FEE_PCT) -> tuple[float, int]:
    """``(mean net return per trade in %, number of trades)`` of the trading simulation.

    See ``classification_metrics`` for the definition.
    """
    if direction not in ("up", "down"):
        raise ValueError(f"direction: expected 'up' or 'down', got {direction!r}")
    y_pred = np.asarray(y_pred).ravel()
    change = np.asarray(future_change_pct, dtype=float).ravel()
    if change.shape != y_pred.shape:
        raise ValueError(f"future_change_pct has {change.size} values for {y_pred.size} predictions")
    trades = change[y_pred == 1]
    if trades.size == 0:
        return 0.0, 0
    if np.isnan(trades).any():
        raise ValueError(f"future_change_pct is missing for {int(np.isnan(trades).sum())} predicted-positive rows")
    gross = trades if direction == "up" else -trades
    return float(np.mean(gross - fee_pct)), int(trades.size)


def classification_metrics(y_true, y_pred, y_proba=None, future_change_pct=None, direction: str = "up",
                           fee_pct: float = DEFAULT_FEE_PCT) -> dict[str, Any]:
    """Every metric a model or test report stores, for binary labels/predictions (0/1).

    Keys: accuracy, f1, precision, recall (``zero_division=0``), roc_auc (from
    ``y_proba``, the probability of class 1; ``None`` without it or when ``y_true``
    holds one class), mcc, fpr = fp/(fp+tn), fnr = fn/(fn+tp) (``None`` on a zero
    denominator), confusion_matrix ``{"tp", "tn", "fp", "fn"}``, simulated_profit_pct,
    num_trades, num_samples, num_positive, num_negative (of ``y_true``).

    **Simulated profit** (time-based targets only): one equal stake is entered at
    every row predicted positive and exited ``future_minutes`` later at the value the
    label was computed from. ``future_change_pct`` is that row's change of the target
    in percent ((future - now) / now * 100). A trade's return is ``+change`` for
    direction ``"up"`` (long) and ``-change`` for ``"down"`` (short); its net return
    is that minus ``fee_pct``, the round-trip fee (default 2.0 % = pump.fun's 1 % per
    side; slippage is ignored). ``simulated_profit_pct`` is the MEAN net return per
    trade in percent (no compounding; overlapping trades are all counted) and
    ``num_trades`` the number of trades; no trade gives 0.0 and 0. For threshold
    targets (``future_change_pct=None``) both are ``None``.
    """
    from sklearn.metrics import (
        accuracy_score,
        confusion_matrix,
        f1_score,
        matthews_corrcoef,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    y_true = np.asarray(y_true).astype(int).ravel()
    y_pred = np.asarray(y_pred).astype(int).ravel()
    if y_true.size == 0:
        raise ValueError("no samples to score")
    if y_pred.shape != y_true.shape:
        raise ValueError(f"y_pred has {y_pred.size} values for {y_true.size} labels")
    tn, fp, fn, tp = (int(v) for v in confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel())

    roc_auc = None
    if y_proba is not None and np.unique(y_true).size == 2:
        roc_auc = float(roc_auc_score(y_true, np.asarray(y_proba, dtype=float).ravel()))

    profit, trades = (None, None)
    if future_change_pct is not None:
        profit, trades = simulated_profit(y_pred, future_change_pct, direction, fee_pct)

    with warnings.catch_warnings():
        # One class in a test window is legitimate (MCC is then 0); sklearn warns about it.
        warnings.filterwarnings("ignore", message="A single label was found", category=UserWarning)
        mcc = float(matthews_corrcoef(y_true, y_pred))
    n_positive = int(y_true.sum())
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "f1": float(f1_score(y_true, y_pred, zero_division=0)),
        "precision": float(precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(recall_score(y_true, y_pred, zero_division=0)),
        "roc_auc": roc_auc,
        "mcc": mcc,
        "fpr": _ratio(fp, fp + tn),
        "fnr": _ratio(fn, fn + tp),
        "confusion_matrix": {"tp": tp, "tn": tn, "fp": fp, "fn": fn},
        "simulated_profit_pct": profit,
        "num_trades": trades,
        "num_samples": int(y_true.size),
        "num_positive": n_positive,
        "num_negative": int(y_true.size) - n_positive,
    }


def feature_importance(estimator, feature_names, X=None, y=None, random_state: int = 0) -> dict[str, float]:
    """Importance per feature, normalised to sum 1 (all 0.0 if nothing is important), sorted descending.

    Trees and xgboost: ``feature_importances_``. Logistic regression (also inside a
    Pipeline, where the scaler makes coefficients comparable): ``|coef|``. Anything
    else (the MLP): permutation importance of the whole estimator on at most
    ``PERMUTATION_MAX_ROWS`` rows of ``X``/``y`` (required then), scored by balanced
    accuracy because pump labels are rare; negative drops count as 0.
    """
    names = [str(n) for n in feature_names]
    model = estimator.steps[-1][1] if hasattr(estimator, "steps") else estimator
    if hasattr(model, "feature_importances_"):
        raw = np.asarray(model.feature_importances_, dtype=float)
    elif hasattr(model, "coef_"):
        raw = np.abs(np.asarray(model.coef_, dtype=float)).ravel()
    else:
        if X is None or y is None:
            raise ValueError(
                f"{type(model).__name__} has no built-in importances; pass X and y for permutation importance"
            )
        from sklearn.inspection import permutation_importance

        y = np.asarray(y).ravel()
        if len(y) > PERMUTATION_MAX_ROWS:
            rows = np.sort(np.random.default_rng(random_state).choice(len(y), PERMUTATION_MAX_ROWS, replace=False))
            X = X.iloc[rows] if hasattr(X, "iloc") else np.asarray(X)[rows]
            y = y[rows]
        result = permutation_importance(estimator, X, y, scoring="balanced_accuracy", n_repeats=5,
                                        random_state=random_state)
        raw = np.clip(result.importances_mean, 0.0, None)
    if raw.size != len(names):
        raise ValueError(f"estimator has {raw.size} importances for {len(names)} feature names")
    total = raw.sum()
    shares = raw / total if total > 0 else np.zeros_like(raw)
    return {name: float(share) for name, share in sorted(zip(names, shares), key=lambda item: -item[1])}


#: Candidate alert thresholds of ``choose_threshold`` (an alert is probability > threshold).
THRESHOLD_GRID = tuple(round(0.05 * i, 2) for i in range(1, 20))
#: The threshold ``estimator.predict`` uses, and the one of objective ``none``.
DECISION_THRESHOLD = 0.5


def choose_threshold(proba, labels, *, objective: str, max_false_alarms_per_coin_day: float,
                     judge=None) -> dict[str, Any]:
    """The alert threshold (operating point) for ``objective`` on out-of-fold predictions, and why.

    ``proba``/``labels`` are the out-of-fold probabilities and 0/1 labels of the training window's
    evaluation rows; the threshold is taken from :data:`THRESHOLD_GRID` (an alert is ``proba > t``):

    * ``max_events_within_false_alarms``: most pump events caught before the peak
      (``judge``, an ``ml.events.EventJudge`` of these rows: their own labels' pumps or known events) among the
      thresholds with at most ``max_false_alarms_per_coin_day`` false-alert episodes per coin-day;
      ties go to fewer false alarms, then the higher threshold. If no threshold meets the limit, the
      one with the fewest false alarms (``constraint_met`` False). Without a ``judge`` (a classic target,
      or no coins given) it falls back to ``f1`` (``used`` says so).
    * ``f1``: best row F1; ties go to the higher threshold.
    * ``none``: :data:`DECISION_THRESHOLD`.

    Returns ``{"objective", "used", "threshold", "constraint_met", "at_threshold", "candidates"}``;
    ``at_threshold`` holds the figures at the chosen point, ``candidates`` one row per grid point.
    """
    from sklearn.metrics import f1_score

    proba = np.asarray(proba, dtype=float)
    labels = np.asarray(labels).astype(int)
    event_level = objective == "max_events_within_false_alarms" and judge is not None
    used = "max_events_within_false_alarms" if event_level else ("none" if objective == "none" else "f1")
    grid = (DECISION_THRESHOLD,) if used == "none" else THRESHOLD_GRID
    candidates = []
    for t in grid:
        alerts = (proba > t).astype(int)
        row = {"threshold": t, "alerts": int(alerts.sum()), "f1": float(f1_score(labels, alerts, zero_division=0))}
        if event_level:
            report = judge.report(alerts)
            row.update({key: report[key] for key in ("events", "detected_before_peak", "false_alert_episodes",
                                                     "false_alerts_per_coin_day", "episode_precision")})
        candidates.append(row)
    constraint_met = None
    if used == "max_events_within_false_alarms":
        allowed = [c for c in candidates if c["false_alerts_per_coin_day"] <= max_false_alarms_per_coin_day]
        constraint_met = bool(allowed)
        best = max(allowed, key=lambda c: (c["detected_before_peak"], -c["false_alert_episodes"], c["threshold"])) \
            if allowed else min(candidates, key=lambda c: (c["false_alert_episodes"], -c["threshold"]))
    else:
        best = max(candidates, key=lambda c: (c["f1"], c["threshold"]))
    return {"objective": objective, "used": used, "threshold": best["threshold"], "constraint_met": constraint_met,
            "max_false_alarms_per_coin_day": max_false_alarms_per_coin_day if event_level else None,
            "rows": int(labels.size), "at_threshold": best, "candidates": candidates}


#: Equal-width probability bins of :func:`reliability_table`.
RELIABILITY_BINS = 10


def probability_scores(labels, proba) -> dict[str, float | None]:
    """Threshold-free quality of class-1 probabilities: Brier score (lower is better) and PR-AUC.

    PR-AUC is sklearn's ``average_precision_score``; ``None`` when ``labels`` hold one class.
    """
    from sklearn.metrics import average_precision_score, brier_score_loss

    labels = np.asarray(labels).astype(int).ravel()
    proba = np.asarray(proba, dtype=float).ravel()
    both = np.unique(labels).size == 2
    return {"brier": float(brier_score_loss(labels, proba, pos_label=1)),
            "pr_auc": float(average_precision_score(labels, proba)) if both else None}


def reliability_table(labels, proba, bins: int = RELIABILITY_BINS) -> list[dict[str, Any]]:
    """Mean predicted probability vs observed positive rate per equal-width bin of ``proba`` (empty bins left out).

    Well-calibrated probabilities have ``mean_predicted`` close to ``observed_rate`` in every bin.
    Rows: ``{"bin": "0.1-0.2", "count", "mean_predicted", "observed_rate"}``; 1.0 falls in the last bin.
    """
    labels = np.asarray(labels).astype(int).ravel()
    proba = np.asarray(proba, dtype=float).ravel()
    which = np.minimum((proba * bins).astype(int), bins - 1)
    rows = []
    for b in range(bins):
        inside = which == b
        if inside.any():
            rows.append({"bin": f"{b / bins:.1f}-{(b + 1) / bins:.1f}", "count": int(inside.sum()),
                         "mean_predicted": float(proba[inside].mean()), "observed_rate": float(labels[inside].mean())})
    return rows
