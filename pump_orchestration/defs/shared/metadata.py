"""Turning core results into Dagster metadata and asset-check results (shared by every capability)."""
import dagster as dg

from pump_orchestration.ml.quality import BASELINE_ROC_AUC, MAX_OVERFITTING_GAP, QualityCheck


def with_stage(attrs: dict, stage: str, seconds: float) -> dict:
    """A frame's ``attrs`` with the seconds one stage took added under ``stage_seconds``."""
    return {**attrs, "stage_seconds": {**attrs.get("stage_seconds", {}), stage: round(seconds, 3)}}


#: Decimals shown in metadata; stored rows (ml_models, ml_test_results, ...) keep full precision.
SHOWN_DECIMALS = 4

#: What each asset check means for the user, what failing it does and what to try: the check's description in the UI.
CHECK_DESCRIPTIONS = {
    "beats_majority_baseline": (
        f"Blocking. The model's ROC-AUC on rows it did not train on must beat {BASELINE_ROC_AUC}, the score of "
        "always predicting "
        "the majority class. Failing means it ranks pumps no better than chance: the run fails and the model is "
        "stored FAILED (its name is free again). Try label_mode: within, more days of data or other features."),
    "no_severe_overfitting": (
        f"Warning only. Mean cross-validation train accuracy minus validation accuracy must stay within "
        f"{MAX_OVERFITTING_GAP}. "
        "Failing means the model fits its training folds much better than unseen rows, so its scores are "
        "optimistic; it stays READY and usable. Try fewer/shallower trees (params: max_depth, n_estimators), "
        "more data, or fewer features, and judge it by a test report on later days."),
    "beats_rule_baseline": (
        "Warning, enforced at activation. The model must beat a simple volume/price rule on the same "
        "out-of-fold rows. Failing means the rule would alert as well: the model stays READY for tests and "
        "comparisons, but activation refuses it unless forced (force: true)."),
    "enough_positives": (
        "Warning only. The test window must hold at least min_positives pump rows. Failing means precision and "
        "recall rest on a handful of rows and say little. Select more days, or lower min_positives knowingly."),
    "test_window_disjoint": (
        "Warning only. The test window must not overlap the model's training window. Failing means the scores "
        "are inflated by rows the model has seen. Test on days after the model's train_end."),
    "not_overfitted": (
        f"Warning only. Training accuracy minus test accuracy must stay within {MAX_OVERFITTING_GAP}. Failing "
        "means the model "
        "does markedly worse on these days than in training (overfitting or a changed market). Retrain on "
        "more recent days or with simpler params."),
}


def _shown(value: float) -> float:
    # Tiny values (p-values, say) keep 3 significant digits instead of rounding to a misleading 0.
    if value != value or value == 0 or abs(value) >= 10 ** -(SHOWN_DECIMALS - 1):
        return round(value, SHOWN_DECIMALS)
    return float(f"{value:.3g}")


def rounded(value):
    """``value`` with every float rounded for display (``_shown``), through dicts and lists (for JSON metadata)."""
    if isinstance(value, float):
        return _shown(value)
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [rounded(item) for item in value]
    return value


def number(value) -> dg.MetadataValue:
    """A float metadata value rounded for display, or null when the metric is undefined (e.g. ROC-AUC, one class)."""
    return dg.MetadataValue.null() if value is None else dg.MetadataValue.float(_shown(float(value)))


def metric_values(metrics: dict, keys=("accuracy", "f1", "precision", "recall", "roc_auc", "mcc",
                                       "simulated_profit_pct")) -> dict:
    """Selected metrics as top-level numeric metadata (the UI plots these across partitions)."""
    return {key: number(metrics.get(key)) for key in keys}


def event_metadata(events: dict | None) -> dict:
    """The event-level figures of a test (``ml.events.detection_report``) as metadata; empty without them."""
    if not events:
        return {}
    return {
        "pump_events": events["events"],
        "pumps_detected_before_peak": events["detected_before_peak"],
        "pump_detection_rate": number(events["detection_rate"]),
        "median_lead_to_peak_s": number(events["median_lead_to_peak_s"]),
        "false_alert_episodes_per_coin_day": number(events["false_alerts_per_coin_day"]),
        "alert_episode_precision": number(events["episode_precision"]),
    }


def calibration_metadata(calibration: dict) -> dict:
    """Brier/PR-AUC of the out-of-fold probabilities and their reliability table (``ml.training.calibration_report``).

    ``reliability`` is for the probabilities the stored model gives (calibrated when asked); each
    table stays far below the 1,000 characters the UI renders inline.
    """
    calibrated = calibration["after"] is not None
    scores = calibration["after"] if calibrated else calibration["before"]
    columns = ["bin", "count", "mean_predicted", "observed_rate"]
    out = {
        "calibration": dg.MetadataValue.json(
            rounded({k: calibration[k] for k in ("method", "rows", "before", "after")})),
        "oof_brier": number(scores["brier"]),
        "oof_pr_auc": number(scores["pr_auc"]),
        "reliability": dg.MetadataValue.md(metrics_table(
            calibration["reliability_after" if calibrated else "reliability_before"], columns)),
    }
    if calibrated:
        out["reliability_uncalibrated"] = dg.MetadataValue.md(metrics_table(calibration["reliability_before"], columns))
    return out


def check_specs(asset_key: str, names_and_blocking: dict[str, bool]) -> list[dg.AssetCheckSpec]:
    """Check specs for an asset from {check name: blocking}, each described (``KeyError`` for an undescribed one)."""
    return [dg.AssetCheckSpec(name, asset=asset_key, blocking=blocking, description=CHECK_DESCRIPTIONS[name])
            for name, blocking in names_and_blocking.items()]


def check_results(checks: list[QualityCheck]) -> list[dg.AssetCheckResult]:
    """Asset-check results from the core's quality gates; blocking gates fail with ERROR severity."""
    return [
        dg.AssetCheckResult(
            check_name=c.name, passed=c.passed,
            severity=dg.AssetCheckSeverity.ERROR if c.blocking else dg.AssetCheckSeverity.WARN,
            description=c.description,
            metadata={k: v if not isinstance(v, float) else number(v) for k, v in c.metadata.items() if v is not None},
        )
        for c in checks
    ]


def checks_record(checks: list[QualityCheck]) -> dict:
    """The gates as stored with a model or report (live scoring reads the blocking ones)."""
    return {c.name: {"passed": c.passed, "blocking": c.blocking, "description": c.description} for c in checks}


def metrics_table(rows: list[dict], columns: list[str]) -> str:
    """A Markdown table of ``rows`` (numbers to 3 decimals)."""
    def cell(value) -> str:
        return f"{value:.3f}" if isinstance(value, float) else ("–" if value is None else str(value))

    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines)


_BARS = "▁▂▃▄▅▆▇█"


def sparklines(rows: list[dict], series: list[str]) -> str:
    """A Markdown table with one text sparkline per series (one bar per row, scaled to the series' own
    min–max, · = undefined), with its min, max and last value.

    The asset page shows Markdown shorter than 1,000 characters inline; an embedded PNG never is, so this
    is the chart seen at a glance (the PNG of ``metrics_chart`` has the axes and exact values).
    """
    lines = ["| metric | trend, oldest → newest | min | max | last |", "|---|---|---|---|---|"]
    for name in series:
        values = [row.get(name) for row in rows]
        defined = [float(v) for v in values if v is not None and v == v]  # v == v: not NaN
        if not defined:
            lines.append(f"| {name} | `{'·' * len(values)}` | – | – | – |")
            continue
        low, high = min(defined), max(defined)

        def bar(value) -> str:
            if value is None or value != value:
                return "·"
            if high == low:
                return _BARS[len(_BARS) // 2]
            return _BARS[round((float(value) - low) / (high - low) * (len(_BARS) - 1))]

        lines.append(f"| {name} | `{''.join(bar(v) for v in values)}` | {low:.3f} | {high:.3f} | {defined[-1]:.3f} |")
    return "\n".join(lines)


def metrics_chart(rows: list[dict], x: str, series: list[str], path) -> str:
    """Plot ``series`` of ``rows`` against ``x`` to a PNG at ``path``; returns Markdown embedding it inline."""
    import base64
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.5), dpi=100)
    xs = [row[x] for row in rows]
    for name in series:
        ax.plot(xs, [row.get(name) if row.get(name) is not None else float("nan") for row in rows],
                marker="o", label=name)
    ax.set_ylim(0, 1)
    ax.set_xlabel(x)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    fig.autofmt_xdate()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png")
    plt.close(fig)
    return f"![{', '.join(series)} per window](data:image/png;base64,{base64.b64encode(path.read_bytes()).decode()})"
