"""The rule baseline reproduces a hand-computed alert sequence and reads only each coin's past."""
import numpy as np
import pandas as pd

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
