"""A fitted model with everything needed to write its ``ml_models`` row (no Dagster, no database)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from pump_orchestration.ml.request import TrainingRequest


@dataclass
class TrainedModel:
    """What the fitted-model asset hands to its IO manager."""

    request: TrainingRequest
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    result: Any  # pump_orchestration.ml.training.TrainingResult
    dataset_stats: dict = field(default_factory=dict)
    skipped_features: dict = field(default_factory=dict)
    stage_seconds: dict = field(default_factory=dict)
    quality_checks: dict = field(default_factory=dict)

    def artifact_metadata(self) -> dict:
        """What the artifact carries besides the estimator: enough to rebuild its inputs and labels."""
        return {
            "label_spec": asdict(self.request.label_spec),
            "feature_spec": asdict(self.request.feature_spec),
            "phases": list(self.request.phases),
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
        }

    def failed_gates(self) -> list[str]:
        """Descriptions of the blocking quality gates this model failed (empty = usable)."""
        return [f"{name}: {check['description']}" for name, check in self.quality_checks.items()
                if check["blocking"] and not check["passed"]]

    def ml_models_values(self, model_file_path: str, model_sha256: str) -> dict:
        """Column values of the ``ml_models`` row: READY, or FAILED with the reason when a blocking gate failed."""
        req, res = self.request, self.result
        failed = self.failed_gates()
        label = req.label_spec
        metrics = res.metrics
        params = {
            **res.params,
            "_request": {
                "use_engineered_features": req.use_engineered_features,
                "feature_engineering_windows": list(req.feature_engineering_windows),
                "base_features": list(req.feature_spec.base_features),
                "imbalance": req.imbalance_method,
                "calibration": req.calibration,
                "use_timeseries_split": req.use_timeseries_split,
                "cv_splits": req.cv_splits,
                "random_state": req.random_state,
                "fee_pct": req.fee_pct,
                "label_mode": label.mode if label.time_based else None,
                "threshold_objective": req.threshold_objective,
                "max_false_alarms_per_coin_day": req.max_false_alarms_per_coin_day,
                "label_source": req.label_source,
                "lead_minutes": req.lead_minutes,
            },
            "_training": {
                "label_balance": res.label_balance,
                "resampling": res.resampling,
                "split": res.split,
                "rule_baseline": res.rule_baseline,
                "operating_point": res.operating_point,
                "calibration": {key: res.calibration.get(key) for key in ("rows", "before", "after")},
                "dataset": self.dataset_stats,
                "skipped_features": self.skipped_features,
                "stage_seconds": self.stage_seconds,
            },
            "_checks": self.quality_checks,
        }
        return {
            "name": req.name,
            "model_type": req.model_type,
            "status": "FAILED" if failed else "READY",
            "error_msg": ("blocking quality check failed: " + "; ".join(failed)) if failed else None,
            "target_variable": label.target_var,
            "target_operator": label.operator,
            "target_value": label.value,
            "future_minutes": label.future_minutes,
            "price_change_percent": label.min_percent_change,
            "target_direction": label.direction if label.time_based else None,
            "label_mode": label.mode if label.time_based else None,
            "train_start": self.train_start.to_pydatetime(),
            "train_end": self.train_end.to_pydatetime(),
            "features": list(res.feature_names),
            "phases": list(req.phases) or None,
            "params": params,
            "training_accuracy": metrics["accuracy"],
            "training_f1": metrics["f1"],
            "training_precision": metrics["precision"],
            "training_recall": metrics["recall"],
            "roc_auc": metrics["roc_auc"],
            "mcc": metrics["mcc"],
            "fpr": metrics["fpr"],
            "fnr": metrics["fnr"],
            "confusion_matrix": metrics["confusion_matrix"],
            "simulated_profit_pct": metrics["simulated_profit_pct"],
            "cv_scores": res.cv_scores,
            "cv_overfitting_gap": res.cv_overfitting_gap,
            "feature_importance": res.feature_importance,
            "alert_threshold": res.operating_point["threshold"],
            "model_file_path": model_file_path,
            "model_sha256": model_sha256,
            "description": req.description,
        }


@dataclass
class ComparisonOutcome:
    """What the comparison asset hands to its IO manager: the result and the two models' ids."""

    result: Any  # pump_orchestration.ml.evaluation.ComparisonResult
    model_a_id: int
    model_b_id: int
