"""Quality gates for fitted models and test reports (plain functions; the assets turn them into asset checks).

A trivial classifier that always predicts the majority class ranks nothing, so its
ROC-AUC is 0.5: a model must beat that on data it did not train on.
"""
from __future__ import annotations

from dataclasses import dataclass, field

BASELINE_ROC_AUC = 0.5
MAX_OVERFITTING_GAP = 0.10
MIN_TEST_POSITIVES = 10
#: Non-blocking gates that live-scoring activation still refuses unless forced: failing them leaves the
#: model READY (it can be inspected, tested and compared) but keeps it from alerting anyone by default.
ACTIVATION_GATES = ("beats_rule_baseline",)


@dataclass(frozen=True)
class QualityCheck:
    """Outcome of one gate; ``blocking`` gates keep a model from being activated for scoring."""

    name: str
    passed: bool
    blocking: bool
    description: str
    metadata: dict = field(default_factory=dict)


def _beats_baseline(roc_auc: float | None, where: str) -> QualityCheck:
    passed = roc_auc is not None and roc_auc > BASELINE_ROC_AUC
    shown = "n/a (one class)" if roc_auc is None else f"{roc_auc:.3f}"
    return QualityCheck(
        "beats_majority_baseline", passed, True,
        f"ROC-AUC on {where} {shown} vs {BASELINE_ROC_AUC} for always predicting the majority class",
        {"roc_auc": roc_auc, "baseline_roc_auc": BASELINE_ROC_AUC},
    )


def rule_baseline_check(comparison: dict) -> QualityCheck:
    """``beats_rule_baseline`` from ``TrainingResult.rule_baseline`` (see ``ml.training``)."""
    meta = {k: comparison.get(k) for k in ("level", "score", "model_score", "rule_score", "rows")}
    if not comparison["applicable"]:
        return QualityCheck("beats_rule_baseline", True, False, f"not judged: {comparison['reason']}",
                            {"applicable": False})
    model, rule = comparison["model_score"], comparison["rule_score"]
    passed = model is not None and (rule is None or model > rule)
    where = f"{comparison['rows']} out-of-fold rows"
    return QualityCheck(
        "beats_rule_baseline", passed, False,
        f"{comparison['score']} on {where}: model {_shown(model)} vs volume/price rule {_shown(rule)} "
        "(rule thresholds fitted on the same training rows)",
        meta,
    )


def _shown(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def model_checks(metrics: dict, cv_overfitting_gap: float | None, rule_comparison: dict) -> list[QualityCheck]:
    """Gates for a fitted model: beats the majority baseline on its held-out part (blocking), no severe
    overfitting in CV, and beats the volume/price rule on the out-of-fold rows (refused by activation)."""
    gap_ok = cv_overfitting_gap is None or cv_overfitting_gap <= MAX_OVERFITTING_GAP
    return [
        _beats_baseline(metrics.get("roc_auc"), "the held-out last fold"),
        QualityCheck(
            "no_severe_overfitting", gap_ok, False,
            f"mean CV train − validation accuracy {cv_overfitting_gap} (limit {MAX_OVERFITTING_GAP})",
            {"cv_overfitting_gap": cv_overfitting_gap, "limit": MAX_OVERFITTING_GAP},
        ),
        rule_baseline_check(rule_comparison),
    ]


def test_report_checks(test: dict, min_positives: int = MIN_TEST_POSITIVES) -> list[QualityCheck]:
    """Gates for a test report: beats the baseline, enough positives to judge, disjoint from training, not overfitted."""
    return [
        _beats_baseline(test.get("roc_auc"), "the test window"),
        QualityCheck(
            "enough_positives", (test.get("num_positive") or 0) >= min_positives, False,
            f"{test.get('num_positive')} positive rows in the test window (need {min_positives})",
            {"num_positive": test.get("num_positive"), "min_positives": min_positives},
        ),
        QualityCheck(
            "test_window_disjoint", not test.get("has_overlap"), False,
            test.get("overlap_note") or "test window does not overlap the training window",
            {"has_overlap": bool(test.get("has_overlap"))},
        ),
        QualityCheck(
            "not_overfitted", not test.get("is_overfitted"), False,
            f"train − test accuracy {test.get('accuracy_degradation')} (limit {MAX_OVERFITTING_GAP})",
            {"accuracy_degradation": test.get("accuracy_degradation")},
        ),
    ]
