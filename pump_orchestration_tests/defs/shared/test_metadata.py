"""Metadata as shown in the UI: rounded numbers, and a description on every asset check."""
import dagster as dg
import pytest

from pump_orchestration.definitions import defs
from pump_orchestration.defs.shared.metadata import SHOWN_DECIMALS, check_specs, number, rounded


def test_numbers_are_rounded_for_display_and_none_stays_null():
    assert number(0.123456789).value == 0.1235
    assert number(None) == dg.MetadataValue.null()
    assert rounded({"f1": 0.6666666666666666, "cv": [0.1111111, 2], "name": "m", "n": 3}) == {
        "f1": 0.6667, "cv": [0.1111, 2], "name": "m", "n": 3}
    assert SHOWN_DECIMALS == 4
    # A tiny p-value keeps its magnitude rather than showing as 0.
    assert rounded({"mcnemar_p": 1.234567e-12, "zero": 0.0}) == {"mcnemar_p": 1.23e-12, "zero": 0.0}


def test_every_asset_check_of_the_code_location_says_what_failing_means_and_what_to_do():
    specs = [spec for assets_def in defs.assets if isinstance(assets_def, dg.AssetsDefinition)
             for spec in assets_def.check_specs]
    assert {spec.name for spec in specs} >= {"beats_majority_baseline", "no_severe_overfitting", "enough_positives",
                                            "test_window_disjoint", "not_overfitted"}
    for spec in specs:
        assert spec.description and "Failing means" in spec.description, spec.name


def test_a_check_without_a_description_cannot_be_declared():
    with pytest.raises(KeyError):
        check_specs("fitted_model", {"undescribed_gate": False})


def test_sparklines_are_short_enough_to_show_inline_and_scale_to_each_series():
    from pump_orchestration.defs.shared.metadata import sparklines

    rows = [{"f1": i / 40, "roc_auc": None if i == 3 else 0.7 + i / 400, "recall": 0.0} for i in range(40)]
    table = sparklines(rows, ["f1", "roc_auc", "recall", "precision"])
    assert len(table) < 1000  # the UI shows Markdown below 1,000 characters inline
    lines = table.splitlines()
    bars = "▁▂▃▄▅▆▇█"
    f1 = lines[2].split("`")[1]
    assert len(f1) == 40 and f1[0] == "▁" and f1[-1] == "█" and set(f1) == set(bars)
    assert [bars.index(c) for c in f1] == sorted(bars.index(c) for c in f1)  # a rising series rises
    assert lines[2].endswith("| 0.000 | 0.975 | 0.975 |")
    assert lines[3].split("`")[1][3] == "·" and lines[3].split("`")[1][-1] == "█"
    assert lines[4] == f"| recall | `{'▅' * 40}` | 0.000 | 0.000 | 0.000 |"
    assert lines[5] == f"| precision | `{'·' * 40}` | – | – | – |"


def test_calibration_metadata_shows_the_stored_models_reliability_inline():
    import numpy as np

    from pump_orchestration.defs.shared.metadata import calibration_metadata
    from pump_orchestration.ml.training import calibration_report

    rng = np.random.default_rng(0)
    raw = rng.random(5000)
    labels = (rng.random(5000) < raw / 3).astype(int)  # raw probabilities three times the real rate
    calibrated = calibration_metadata({"method": "isotonic", **calibration_report(labels, raw, raw / 3)})
    assert calibrated["oof_brier"].value < calibration_metadata(
        {"method": "none", **calibration_report(labels, raw)})["oof_brier"].value
    uncalibrated = calibrated["reliability_uncalibrated"].value
    assert len(uncalibrated) < 1000 and uncalibrated.count("\n") == 11  # header, rule and ten bins
    assert calibrated["reliability"].value.count("\n") == 5  # raw / 3 fills the four bins below 0.4
    assert "reliability_uncalibrated" not in calibration_metadata({"method": "none", **calibration_report(labels, raw)})
