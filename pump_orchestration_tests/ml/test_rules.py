"""The rule baseline reproduces a hand-computed alert sequence and reads only each coin's past."""
import numpy as np
import pandas as pd
import pytest

from pump_orchestration.ml.rules import VolumePriceRule, fit_rule

T0 = pd.Timestamp("2025-09-01T00:00:00Z")


def _frame(rows):
    return pd.DataFrame([{"mint": m, "timestamp": T0 + pd.Timedelta(seconds=s), "volume_sol": v,
                          "price_close": c} for m, s, v, c in rows])


def test_hand_computed_alerts():
    frame = _frame([
        ("a", 0, 1.0, 1.00), ("a", 30, 1.0, 1.00), ("a", 60, 1.0, 1.01),
        ("a", 90, 10.0, 1.10),   # volume 10 / mean(1,1,1) = 10; close 1.10 vs close at t-75 s (row 0 s: 1.00) = +10 %
        ("a", 120, 3.0, 1.12),   # 3 / mean(1,1,1,10) = 0.92: no
        ("b", 90, 50.0, 2.0),    # another coin's first row: no past, no alert
    ])
    rule = VolumePriceRule(k=5.0, p=5.0)
    signals = rule.signals(frame)
    assert signals.loc[3, "volume_ratio"] == 10.0 and abs(signals.loc[3, "price_rise_pct"] - 10.0) < 1e-9
    assert np.isnan(signals.loc[5, "volume_ratio"]) and np.isnan(signals.loc[5, "price_rise_pct"])
    assert rule.alerts(frame).tolist() == [False, False, False, True, False, False]
    assert VolumePriceRule(k=5.0, p=11.0).alerts(frame).tolist() == [False] * 6


def test_signals_use_only_the_past_and_ignore_row_order():
    rng = np.random.default_rng(0)
    rows = [(m, s, float(rng.exponential()), float(1 + rng.random())) for m in "xyz" for s in range(0, 3600, 25)]
    frame = _frame(rows)
    full = VolumePriceRule(k=3, p=2).signals(frame)
    cut = frame[frame["timestamp"] < T0 + pd.Timedelta(minutes=30)]
    pd.testing.assert_frame_equal(VolumePriceRule(k=3, p=2).signals(cut), full.loc[cut.index])
    shuffled = frame.sample(frac=1, random_state=1)
    pd.testing.assert_frame_equal(VolumePriceRule(k=3, p=2).signals(shuffled).loc[frame.index], full)


def test_fit_rule_picks_the_grid_point_with_the_best_score():
    frame = _frame([("a", s, 1.0 if s != 600 else 40.0, 1.0 if s < 600 else 1.3) for s in range(0, 1200, 30)])
    target = frame["timestamp"] == T0 + pd.Timedelta(seconds=600)

    def score(alerts):  # hits minus false alerts
        a = alerts[0]
        return (int((a & target).sum()) - int((a & ~target).sum()),)

    rule, value = fit_rule([frame], score, k_grid=(2, 10, 50), p_grid=(5, 20, 40))
    assert value == (1,) and (rule.k, rule.p) == (2, 5)


def test_rule_baseline_classifier_reproduces_a_hand_computed_alert_sequence():
    from pump_orchestration.ml.rules import RuleBaselineClassifier

    X = pd.DataFrame({
        "volume_ratio_5": [9.0, 9.0, 9.0, 9.0, 9.0, 9.0],
        "volume_ratio_15": [1.0, 6.0, 12.0, 4.0, 25.0, 30.0],   # the widest window: the rule's volume
        "price_change_5": [0.0, 1.0, 3.5, 6.0, 2.0, 8.0],       # the narrowest window: the rule's price
        "price_change_15": [0.0, 9.0, 9.0, 9.0, 9.0, 9.0],
    })
    y = np.array([0, 0, 1, 0, 0, 1])
    rule = RuleBaselineClassifier(k_grid=(5.0, 10.0), p_grid=(1.0, 3.0)).fit(X, y)
    # Grid by hand (strictly above both bars): (5, 1) alerts rows 2, 4, 5 (row 1's rise is exactly 1; F1 0.8);
    # (5, 3) rows 2, 5 (F1 1, the first best); (10, 1) rows 2, 4, 5; (10, 3) rows 2, 5.
    assert rule.columns_ == ("volume_ratio_15", "price_change_5") and (rule.k_, rule.p_) == (5.0, 3.0)
    assert rule.predict(X).tolist() == [0, 0, 1, 0, 0, 1]
    proba = rule.predict_proba(X)[:, 1]
    # strength min(v / 5, p / 3): row 2 min(2.4, 1.17) = 7/6 -> 7/13; row 3 min(0.8, 2) -> 0.8 / 1.8.
    assert proba[2] == pytest.approx((7 / 6) / (1 + 7 / 6)) and proba[3] == pytest.approx(0.8 / 1.8)
    assert ((proba > 0.5) == rule.predict(X).astype(bool)).all() and proba[0] == 0.0
    boundary = pd.DataFrame({"volume_ratio_15": [5.0], "price_change_5": [3.0]})  # exactly at both bars
    assert rule.predict(boundary).tolist() == [0] and rule.predict_proba(boundary)[0, 1] == 0.5
    assert rule.feature_importances_.tolist() == [0.0, 0.5, 0.5, 0.0]


def test_rule_baseline_classifier_refuses_inputs_it_cannot_read():
    from pump_orchestration.ml.rules import RuleBaselineClassifier

    y = np.array([0, 1])
    with pytest.raises(ValueError, match=r"needs a volume_ratio_\{w\} feature"):
        RuleBaselineClassifier().fit(pd.DataFrame({"price_change_5": [0.0, 1.0]}), y)
    with pytest.raises(ValueError, match="p_grid of rule_baseline must list positive numbers"):
        RuleBaselineClassifier(p_grid=(0.0,)).fit(pd.DataFrame({"volume_ratio_5": [1, 2], "price_change_5": [0, 1]}), y)


def test_with_coins_and_times_the_rule_is_fitted_for_pumps_caught_not_for_rows():
    from pump_orchestration.ml.events import PumpDefinition, label_event_judge
    from pump_orchestration.ml.rules import RuleBaselineClassifier

    # One coin, a row a minute. A time-based label marks the two quiet rows BEFORE each jump; the jump row
    # itself (volume 30x, +20 %) is labelled 0 because it already contains the rise.
    n = 200
    X = pd.DataFrame({"volume_ratio_15": np.ones(n), "price_change_5": np.zeros(n)})
    y = np.zeros(n, dtype=int)
    X.loc[::7, ["volume_ratio_15", "price_change_5"]] = [3.0, 1.5]  # frequent small wiggles, never a pump
    for jump in range(20, n, 40):
        y[jump - 2:jump] = 1
        X.loc[jump, ["volume_ratio_15", "price_change_5"]] = [30.0, 20.0]
    stamps = pd.date_range("2025-09-01", periods=n, freq="1min", tz="UTC")
    mints, horizon = np.array(["a"] * n), pd.Timedelta("2min")

    by_rows = RuleBaselineClassifier().fit(X, y)
    by_events = RuleBaselineClassifier().fit(X, y, mints=mints, timestamps=stamps, pumps=PumpDefinition(horizon))
    score = label_event_judge(mints, stamps, y, horizon).f1
    # Row F1 cannot tell the rules apart (no rule ever fires on a positive row) and keeps the first grid point,
    # which also fires on every wiggle; the event fit flags exactly the five jumps (inside each pump's window).
    assert (by_rows.k_, by_rows.p_) == (2.0, 0.5)
    assert by_events.predict(X).sum() == 5 and score(by_events.predict(X)) == 1.0
    assert score(by_rows.predict(X)) < 0.5
