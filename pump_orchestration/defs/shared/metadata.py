"""Turning core results into Dagster metadata and asset-check results (shared by every capability)."""
import dagster as dg

from pump_orchestration.ml.quality import QualityCheck


def with_stage(attrs: dict, stage: str, seconds: float) -> dict:
    """A frame's ``attrs`` with the seconds one stage took added under ``stage_seconds``."""
    return {**attrs, "stage_seconds": {**attrs.get("stage_seconds", {}), stage: round(seconds, 3)}}


def number(value) -> dg.MetadataValue:
    """A float metadata value, or null when the metric is undefined (e.g. ROC-AUC with one class)."""
    return dg.MetadataValue.null() if value is None else dg.MetadataValue.float(float(value))


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


def check_specs(asset_key: str, names_and_blocking: dict[str, bool]) -> list[dg.AssetCheckSpec]:
    """Check specs for an asset from {check name: blocking}."""
    return [dg.AssetCheckSpec(name, asset=asset_key, blocking=blocking)
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
