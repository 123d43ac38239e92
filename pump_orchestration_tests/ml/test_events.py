"""Event-level detection figures: agreement with plain loop references, row-order invariance,
the boundary cases of every rule, empty inputs and one-line errors."""
from __future__ import annotations

import json
import math
import statistics

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pump_orchestration.ml.events import detection_report, event_f1, events_from_table, extract_events

BASE = pd.Timestamp("2024-05-01 12:00", tz="UTC")
NAN = float("nan")
# Coarse gaps so that merge gaps, leads and cooldowns land exactly on row spacings.
GAPS = st.sampled_from([1, 5, 5, 10, 10, 30, 60, 90, 300])
SPANS = st.sampled_from([0, 5, 10, 30, 60, 120]).map(lambda s: pd.Timedelta(seconds=s))
COINS = ["bonk", "apex", "moon", "zeta"]


def at(seconds: float) -> pd.Timestamp:
    return BASE + pd.Timedelta(seconds=seconds)


@st.composite
def row_frames(draw, max_rows=18):
    """Rows of 0-4 coins at irregular times, random labels (with NaN), alerts and tied values,
    in random order with an odd index."""
    records = []
    for coin in draw(st.lists(st.sampled_from(COINS), max_size=4, unique=True)):
        t = draw(st.integers(0, 300))
        for _ in range(draw(st.integers(1, max_rows))):
            records.append((coin, at(t), draw(st.sampled_from([0.0, 0.0, 1.0, 1.0, NAN])),
                            draw(st.sampled_from([0, 0, 1])), draw(st.sampled_from([1.0, 2.0, 3.0, NAN]))))
            t += draw(GAPS)
    df = pd.DataFrame(records, columns=["mint", "timestamp", "label", "alert", "price"])
    df["timestamp"] = pd.to_datetime(df["timestamp"], utc=True)
    df = df.iloc[draw(st.permutations(range(len(df))))]
    df.index = np.arange(len(df))[::-1] * 3
    return df


@st.composite
def event_tables(draw):
    """Known-event tables: overlapping events, a coin without rows, optional peaks after the end."""
    records = []
    for _ in range(draw(st.integers(0, 6))):
        start = draw(st.integers(0, 1500))
        records.append({"coin": draw(st.sampled_from(COINS + ["ghost"])), "start": at(start),
                        "end": at(start + draw(st.sampled_from([0, 5, 30, 120]))),
                        "peak": at(start + draw(st.sampled_from([0, 10, 60, 200])))})
    table = pd.DataFrame(records, columns=["coin", "start", "end", "peak"])
    return table if draw(st.booleans()) else table.drop(columns="peak")


def rows_of(df):
    return list(zip(df["mint"], df["timestamp"], df["label"], df["alert"], df["price"]))


def reference_events(df, merge_gap, lookahead=None):
    """The event rule, literally: walk each coin's positive rows in time order."""
    events = []
    for coin in sorted(set(df["mint"])):
        own = sorted(((t, y, v) for m, t, y, _, v in rows_of(df) if m == coin), key=lambda r: r[0])
        groups = []
        for t in (t for t, y, _ in own if y == 1):
            if groups and t - groups[-1][-1] <= merge_gap:
                groups[-1].append(t)
            else:
                groups.append([t])
        for g in groups:
            event = {"coin": coin, "start": g[0], "end": g[-1], "rows": len(g)}
            if lookahead is not None:
                inside = [(t, v) for t, _, v in own if g[0] <= t <= g[-1] + lookahead and not math.isnan(v)]
                best = max((v for _, v in inside), default=None)
                event["peak"] = min(t for t, v in inside if v == best) if inside else g[-1]
            events.append(event)
    return events


def reference_report(events, df, lead, cooldown, coin_days=None):
    """Every figure of detection_report, by loops over events and alerts."""
    events = sorted(events, key=lambda e: (e["coin"], e["start"], e["end"], e.get("peak", e["end"])))
    alerts = sorted((m, t) for m, t, _, a, _ in rows_of(df) if a == 1)
    windows = [(e["coin"], e["start"] - lead, max(e["end"], e.get("peak", e["end"]))) for e in events]

    per_event = []
    for e in events:
        peak = e.get("peak", e["end"])
        hits = [t for m, t in alerts if m == e["coin"] and e["start"] - lead <= t <= peak]
        first = min(hits) if hits else None
        per_event.append({
            "coin": e["coin"], "start": e["start"].isoformat(), "end": e["end"].isoformat(),
            "peak": peak.isoformat(), "detected": first is not None,
            "first_alert": first.isoformat() if first else None,
            "delay_s": (first - e["start"]).total_seconds() if first else None,
            "lead_to_peak_s": (peak - first).total_seconds() if first else None,
        })

    def episodes(items):
        merged = []
        for m, t in items:
            if merged and merged[-1][0] == m and t - merged[-1][2] <= cooldown:
                merged[-1][2] = t
            else:
                merged.append([m, t, t])
        return merged

    false = [(m, t) for m, t in alerts if not any(m == c and lo <= t <= hi for c, lo, hi in windows)]
    false_episodes = len(episodes(false))
    all_episodes = episodes(alerts)
    hits = sum(any(m == c and lo <= last and first <= hi for c, lo, hi in windows)
               for m, first, last in all_episodes)
    given = coin_days is not None
    if not given:
        coin_days = 0.0
        for coin in set(df["mint"]):
            times = [t for m, t, *_ in rows_of(df) if m == coin]
            coin_days += max(max(times) - min(times), pd.Timedelta(minutes=1)) / pd.Timedelta(days=1)
    detected = [p for p in per_event if p["detected"]]
    delays = [p["delay_s"] for p in detected]
    to_peak = [p["lead_to_peak_s"] for p in detected]
    return {
        "events": len(events),
        "detected": len(detected),
        "detection_rate": len(detected) / len(events) if events else None,
        "detected_before_peak": sum(p["lead_to_peak_s"] > 0 for p in detected),
        "median_delay_s": statistics.median(delays) if delays else None,
        "mean_delay_s": statistics.mean(delays) if delays else None,
        "median_lead_to_peak_s": statistics.median(to_peak) if to_peak else None,
        "mean_lead_to_peak_s": statistics.mean(to_peak) if to_peak else None,
        "alerts": len(alerts),
        "false_alerts": len(false),
        "false_alert_episodes": false_episodes,
        "false_alerts_per_coin_day": false_episodes / coin_days if coin_days else None,
        "alert_episodes": len(all_episodes),
        "episode_hits": hits,
        "episode_precision": hits / len(all_episodes) if all_episodes else None,
        "coin_days": coin_days,
        "per_event": per_event,
        "parameters": {"lead_s": lead.total_seconds(), "cooldown_s": cooldown.total_seconds(),
                       "coin_days_given": given},
    }


def assert_same_report(actual, expected):
    assert actual.keys() == expected.keys()
    for key, value in expected.items():
        if isinstance(value, float):
            assert actual[key] == pytest.approx(value, rel=1e-12, abs=1e-9), key
        else:
            assert actual[key] == value, key
    json.dumps(actual)


def report(df, events, lead, cooldown, **kwargs):
    return detection_report(events, df["mint"], df["timestamp"], df["alert"].to_numpy(),
                            lead=lead, cooldown=cooldown, **kwargs)


def events_of(df, merge_gap, lookahead=None):
    if lookahead is None:
        return extract_events(df["mint"], df["timestamp"], df["label"], merge_gap=merge_gap)
    return extract_events(df["mint"], df["timestamp"], df["label"], merge_gap=merge_gap,
                          values=df["price"], peak_lookahead=lookahead)


def as_records(events):
    return [{k: v for k, v in e.items() if k != "rows"} for e in events.to_dict("records")]


# ---------------------------------------------------------------- properties


@settings(max_examples=60, deadline=None)
@given(df=row_frames(), merge_gap=SPANS, lookahead=st.none() | SPANS)
def test_extract_events_matches_reference(df, merge_gap, lookahead):
    events = events_of(df, merge_gap, lookahead)
    expected = reference_events(df, merge_gap, lookahead)
    assert list(events.columns) == ["coin", "start", "end", "rows"] + ([] if lookahead is None else ["peak"])
    assert events.to_dict("records") == expected


@settings(max_examples=60, deadline=None)
@given(df=row_frames(), merge_gap=SPANS, lookahead=st.none() | SPANS, lead=SPANS, cooldown=SPANS,
       coin_days=st.none() | st.sampled_from([0.5, 3.0]))
def test_report_on_extracted_events_matches_reference(df, merge_gap, lookahead, lead, cooldown, coin_days):
    events = events_of(df, merge_gap, lookahead)
    expected = reference_report(reference_events(df, merge_gap, lookahead), df, lead, cooldown, coin_days)
    assert_same_report(report(df, events, lead, cooldown, coin_days=coin_days), expected)


@settings(max_examples=60, deadline=None)
@given(df=row_frames(), table=event_tables(), lead=SPANS, cooldown=SPANS)
def test_report_on_known_event_tables_matches_reference(df, table, lead, cooldown):
    expected = reference_report(table.to_dict("records"), df, lead, cooldown)
    assert_same_report(report(df, table, lead, cooldown), expected)


@settings(max_examples=60, deadline=None)
@given(df=row_frames(), table=event_tables(), merge_gap=SPANS, lead=SPANS, cooldown=SPANS,
       seed=st.integers(0, 10**6))
def test_row_order_does_not_matter(df, table, merge_gap, lead, cooldown, seed):
    shuffled = df.sample(frac=1, random_state=seed)
    shuffled.index = [f"r{i}" for i in range(len(shuffled))]
    events = events_of(df, merge_gap, pd.Timedelta(seconds=30))
    pd.testing.assert_frame_equal(events_of(shuffled, merge_gap, pd.Timedelta(seconds=30)), events)
    assert report(shuffled, events, lead, cooldown) == report(df, events, lead, cooldown)
    reversed_table = table.iloc[::-1]
    assert report(shuffled, reversed_table, lead, cooldown) == report(df, table, lead, cooldown)


# ---------------------------------------------------------------- hand-made examples


def frame(rows):
    """rows: (mint, seconds, label, alert[, price])."""
    df = pd.DataFrame([(*r, 1.0)[:5] for r in rows], columns=["mint", "seconds", "label", "alert", "price"])
    df["timestamp"] = BASE + pd.to_timedelta(df.pop("seconds"), unit="s")
    return df


def table(*events):
    """events: (coin, start s, end s[, peak s])."""
    records = [{"coin": e[0], "start": at(e[1]), "end": at(e[2]), **({"peak": at(e[3])} if len(e) > 3 else {})}
               for e in events]
    return pd.DataFrame(records, columns=["coin", "start", "end"] + (["peak"] if any(len(e) > 3 for e in events)
                                                                      else []))


def test_short_gap_merges_and_long_gap_splits():
    df = frame([("a", 0, 1, 0), ("a", 10, 1, 0), ("a", 20, 0, 0), ("a", 25, NAN, 0), ("a", 30, 1, 0),
                ("b", 12, 1, 0)])
    one = events_of(df, pd.Timedelta(seconds=20))  # 10 s -> 30 s is exactly 20 s: merged
    assert one[["coin", "rows"]].values.tolist() == [["a", 3], ["b", 1]]
    assert (one["start"].iloc[0], one["end"].iloc[0]) == (at(0), at(30))
    two = events_of(df, pd.Timedelta(seconds=19))
    assert two[["coin", "start", "end", "rows"]].values.tolist() == [
        ["a", at(0), at(10), 2], ["a", at(30), at(30), 1], ["b", at(12), at(12), 1]]


def test_peak_is_the_earliest_highest_value_up_to_the_look_ahead():
    df = frame([("a", 0, 1, 0, 1.0), ("a", 10, 1, 0, 5.0), ("a", 20, 0, 0, 9.0), ("a", 30, 0, 0, 9.0),
                ("a", 40, 0, 0, 50.0), ("b", 0, 1, 0, NAN)])
    assert events_of(df, pd.Timedelta(seconds=10), pd.Timedelta(0))["peak"].tolist() == [at(10), at(0)]
    # The look-ahead reaches the 20 s and 30 s rows (tie: the earlier wins), not the 40 s one.
    assert events_of(df, pd.Timedelta(seconds=10), pd.Timedelta(seconds=20))["peak"].tolist() == [at(20), at(0)]
    assert events_of(df, pd.Timedelta(seconds=10), pd.Timedelta(seconds=30))["peak"].tolist() == [at(40), at(0)]


def test_an_alert_just_inside_lead_detects_and_just_outside_is_false():
    events = table(("a", 100, 160))
    lead = pd.Timedelta(seconds=60)
    inside = report(frame([("a", 40, 0, 1)]), events, lead, pd.Timedelta(0))
    assert (inside["detected"], inside["false_alerts"], inside["median_delay_s"]) == (1, 0, -60.0)
    assert inside["per_event"][0]["lead_to_peak_s"] == 120.0
    outside = report(frame([("a", 39, 0, 1)]), events, lead, pd.Timedelta(0))
    assert (outside["detected"], outside["false_alerts"], outside["median_delay_s"]) == (0, 1, None)
    assert outside["per_event"][0] | {"start": None, "end": None, "peak": None} == {
        "coin": "a", "start": None, "end": None, "peak": None, "detected": False, "first_alert": None,
        "delay_s": None, "lead_to_peak_s": None}


def test_alerts_after_the_peak_are_not_before_peak_detections():
    events = table(("a", 0, 60, 30))
    lead, cooldown = pd.Timedelta(0), pd.Timedelta(0)
    late = report(frame([("a", 45, 0, 1)]), events, lead, cooldown)
    # After the peak but inside the event: no detection, and no false alert either.
    assert (late["detected"], late["detected_before_peak"], late["false_alerts"]) == (0, 0, 0)
    assert late["episode_precision"] == 1.0
    at_peak = report(frame([("a", 30, 0, 1)]), events, lead, cooldown)
    assert (at_peak["detected"], at_peak["detected_before_peak"], at_peak["median_lead_to_peak_s"]) == (1, 0, 0.0)
    early = report(frame([("a", 29, 0, 1), ("a", 45, 0, 1)]), events, lead, cooldown)
    assert (early["detected"], early["detected_before_peak"], early["median_lead_to_peak_s"]) == (1, 1, 1.0)


def test_a_noisy_minute_is_one_false_alarm_episode():
    noisy = [("a", 1000 + 10 * k, 0, 1) for k in range(6)]
    out = report(frame([("a", 0, 1, 1), *noisy]), table(("a", 0, 0)), pd.Timedelta(0), pd.Timedelta(seconds=30))
    assert (out["false_alerts"], out["false_alert_episodes"]) == (6, 1)
    assert (out["alert_episodes"], out["episode_hits"], out["episode_precision"]) == (2, 1, 0.5)


def test_a_gap_of_exactly_the_cooldown_merges():
    events = table(("b", 0, 0))
    merged = report(frame([("a", 0, 0, 1), ("a", 30, 0, 1)]), events, pd.Timedelta(0), pd.Timedelta(seconds=30))
    split = report(frame([("a", 0, 0, 1), ("a", 31, 0, 1)]), events, pd.Timedelta(0), pd.Timedelta(seconds=30))
    assert (merged["false_alert_episodes"], merged["alert_episodes"]) == (1, 1)
    assert (split["false_alert_episodes"], split["alert_episodes"]) == (2, 2)
    # Same moment, other coins: never one episode.
    coins = report(frame([("a", 0, 0, 1), ("c", 0, 0, 1)]), events, pd.Timedelta(0), pd.Timedelta(hours=1))
    assert coins["false_alert_episodes"] == 2


def test_an_alert_episode_spanning_an_event_window_is_a_hit():
    out = report(frame([("a", 0, 0, 1), ("a", 20, 0, 1)]), table(("a", 5, 10)), pd.Timedelta(0),
                 pd.Timedelta(seconds=20))
    assert (out["alert_episodes"], out["episode_precision"], out["false_alerts"], out["detected"]) == (1, 1.0, 2, 0)


def test_an_alert_inside_a_long_event_that_a_short_nested_one_ends_before_is_not_false():
    out = report(frame([("a", 100, 0, 1)]), table(("a", 0, 200), ("a", 10, 20)), pd.Timedelta(0), pd.Timedelta(0))
    assert (out["false_alerts"], out["episode_precision"], out["detected"]) == (0, 1.0, 1)


def test_coin_days_sum_each_coins_span_with_a_one_minute_floor():
    df = frame([("a", 0, 0, 1), ("a", 2 * 86400, 0, 0), ("b", 500, 0, 0), ("c", 0, 0, 0), ("c", 30, 0, 0)])
    out = report(df, table(), pd.Timedelta(0), pd.Timedelta(0))
    assert out["coin_days"] == pytest.approx(2 + 2 / 1440)
    assert out["false_alerts_per_coin_day"] == pytest.approx(1 / (2 + 2 / 1440))
    given = report(df, table(), pd.Timedelta(0), pd.Timedelta(0), coin_days=4)
    assert (given["coin_days"], given["false_alerts_per_coin_day"], given["parameters"]["coin_days_given"]) == (
        4.0, 0.25, True)


def test_empty_inputs_give_zeros_and_none():
    empty = frame([])
    events = events_of(empty, pd.Timedelta(seconds=10), pd.Timedelta(0))
    assert events.empty and list(events.columns) == ["coin", "start", "end", "rows", "peak"]
    nothing = report(empty, events, pd.Timedelta(0), pd.Timedelta(0))
    assert nothing == reference_report([], empty, pd.Timedelta(0), pd.Timedelta(0))
    assert (nothing["events"], nothing["alerts"], nothing["coin_days"], nothing["false_alerts_per_coin_day"],
            nothing["detection_rate"], nothing["episode_precision"]) == (0, 0, 0.0, None, None, None)

    quiet = frame([("a", 0, 0, 0), ("a", 60, 1, 0)])
    out = report(quiet, events_of(quiet, pd.Timedelta(0)), pd.Timedelta(0), pd.Timedelta(0))
    assert (out["events"], out["detected"], out["detection_rate"], out["median_delay_s"]) == (1, 0, 0.0, None)
    assert (out["alert_episodes"], out["episode_precision"], out["false_alerts_per_coin_day"]) == (0, None, 0.0)


def test_event_tables_accept_durations_naive_times_and_extra_columns():
    raw = pd.DataFrame({"coin": ["b", "a"], "start": ["2024-05-01 12:10", "2024-05-01T12:00:00Z"],
                        "duration": ["15min", pd.Timedelta(seconds=30)], "peak": [None, "2024-05-01 12:00:10"],
                        "channel": ["tg1", "tg2"]})
    events = events_from_table(raw)
    assert list(events.columns) == ["coin", "start", "end", "peak", "channel"]
    assert events.to_dict("records") == [
        {"coin": "a", "start": at(0), "end": at(30), "peak": at(10), "channel": "tg2"},
        {"coin": "b", "start": at(600), "end": at(1500), "peak": at(1500), "channel": "tg1"},
    ]


GOOD = {"coin": ["a"], "start": ["2024-05-01 12:00"], "end": ["2024-05-01 12:05"]}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"coin": None}, r"'coin' not in the data"),
        ({"start": None}, r"'start' not in the data"),
        ({"end": None}, r"one of the columns 'end' or 'duration'"),
        ({"duration": ["5min"]}, r"one of the columns 'end' or 'duration'"),
        ({"coin": [None]}, r"column 'coin' has 1 missing"),
        ({"start": ["soon"]}, r"column 'start' has 1 values that are not timestamps, e.g. 'soon'"),
        ({"start": [None]}, r"column 'start' has 1 missing"),
        ({"start": [1714564800]}, r"column 'start' holds numbers"),
        ({"end": ["2024-05-01 11:59"]}, r"column 'end' is before 'start' in 1 rows"),
        ({"end": [None]}, r"column 'end' has 1 missing"),
        ({"end": None, "duration": [300]}, r"column 'duration' holds bare numbers"),
        ({"end": None, "duration": ["-5min"]}, r"column 'end' is before 'start'"),
        ({"end": None, "duration": ["long"]}, r"column 'duration' has 1 values that are not time spans"),
        ({"peak": ["2024-05-01 11:00"]}, r"column 'peak' is before 'start'"),
    ],
)
def test_bad_tables_raise_one_line_errors_naming_the_column(change, message):
    columns = {**GOOD, **change}
    raw = pd.DataFrame({k: v for k, v in columns.items() if v is not None})
    with pytest.raises(ValueError, match=message) as excinfo:
        events_from_table(raw)
    assert "\n" not in str(excinfo.value)
    with pytest.raises(ValueError, match=message):
        detection_report(raw, [], pd.Series([], dtype="datetime64[ns, UTC]"), [], lead="1min", cooldown="1min")


def test_a_table_must_be_a_dataframe():
    with pytest.raises(ValueError, match="events must be a DataFrame, got list"):
        events_from_table([GOOD])


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda df: events_of(df, pd.Timedelta(seconds=-1)), r"merge_gap must be a non-negative"),
        (lambda df: events_of(df, 60), r"merge_gap must be a time span .* not 60"),
        (lambda df: events_of(df, "a while"), r"merge_gap: 'a while' is not a time span"),
        (lambda df: events_of(df, pd.Timedelta(0), pd.NaT), r"peak_lookahead must be a non-negative"),
        (lambda df: extract_events(df["mint"], df["timestamp"], [0, 2], merge_gap="1s"), r"labels must be 0/1 or "
                                                                                         r"NaN; got 2.0"),
        (lambda df: extract_events(df["mint"], df["timestamp"], [1], merge_gap="1s"), r"labels has 1 values for 2"),
        (lambda df: extract_events(["a"], df["timestamp"], [1, 1], merge_gap="1s"), r"mints has 1 values for 2"),
        (lambda df: extract_events([None, "a"], df["timestamp"], [1, 1], merge_gap="1s"), r"mints has 1 missing"),
        (lambda df: extract_events(df["mint"], df["timestamp"].dt.tz_localize(None), [1, 1], merge_gap="1s"),
         r"timezone-aware"),
        (lambda df: extract_events(df["mint"], [at(0), pd.NaT], [1, 1], merge_gap="1s"), r"1 missing values"),
        (lambda df: extract_events(df["mint"], df["timestamp"], [1, 1], merge_gap="1s", values=[1.0]),
         r"values has 1 values for 2"),
        (lambda df: report(df.assign(alert=[1, NAN]), table(), "1s", "1s"), r"alerts must be 0/1; got nan"),
        (lambda df: report(df.assign(alert=[0.7, 0]), table(), "1s", "1s"), r"alerts must be 0/1; got 0.7"),
        (lambda df: report(df, table(), "-1s", "1s"), r"lead must be a non-negative"),
        (lambda df: report(df, table(), "1s", 30), r"cooldown must be a time span"),
        (lambda df: report(df, table(), "1s", "1s", coin_days=0), r"coin_days must be a positive number"),
        (lambda df: report(df, table(), "1s", "1s", coin_days=float("inf")), r"coin_days must be a positive"),
    ],
)
def test_bad_arguments_raise_one_line_errors(call, message):
    with pytest.raises(ValueError, match=message) as excinfo:
        call(frame([("a", 0, 1, 0), ("a", 5, 0, 1)]))
    assert "\n" not in str(excinfo.value)


def test_event_f1_does_not_reward_an_alarm_that_is_always_on():
    # One coin, a row a minute for 10 h, three 5-minute pumps.
    ts = pd.date_range("2025-09-01", periods=600, freq="1min", tz="UTC")
    starts = [60, 300, 500]
    events = pd.DataFrame({"coin": "m", "start": ts[starts], "end": ts[[s + 5 for s in starts]]})
    mints = np.full(len(ts), "m")
    sharp = np.zeros(len(ts), dtype=int)
    sharp[starts] = 1
    always = np.ones(len(ts), dtype=int)
    kwargs = {"lead": pd.Timedelta(minutes=2), "cooldown": pd.Timedelta(minutes=5)}
    sharp_report = detection_report(events, mints, ts, sharp, **kwargs)
    always_report = detection_report(events, mints, ts, always, **kwargs)
    assert always_report["episode_precision"] == 1.0  # one episode that meets an event: why event F1 avoids it
    assert always_report["false_alert_episodes"] == 4  # before, between (x2) and after the pumps
    assert event_f1(sharp_report) == 1.0
    assert event_f1(always_report) == pytest.approx(2 * 1 * (1 / 5) / (1 + 1 / 5))
