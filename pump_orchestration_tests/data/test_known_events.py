"""Reading known pump events from a CSV: every problem named by column and line, nothing half-read."""
import pandas as pd
import pytest

from pump_orchestration.data.known_events import COLUMNS, KnownEventsError, read_known_events


def _write(tmp_path, text: str):
    path = tmp_path / "events.csv"
    path.write_text(text)
    return path


def test_end_or_duration_naive_times_as_utc_and_optional_columns(tmp_path):
    by_end = read_known_events(_write(tmp_path, "mint,start_time,end_time,source\n"
                                                "a,2025-09-01 16:00,2025-09-01T18:07:30+02:00,tg\n"
                                                "b, 2025-09-01T16:00:00Z ,2025-09-01T16:00:00Z,\n"))
    assert list(by_end.columns) == list(COLUMNS)
    assert by_end["start_time"].tolist() == [pd.Timestamp("2025-09-01 16:00", tz="UTC")] * 2
    assert by_end["end_time"].iloc[0] == pd.Timestamp("2025-09-01 16:07:30", tz="UTC")
    assert by_end["source"].tolist() == ["tg", "events.csv"] and by_end["symbol"].isna().all()
    by_duration = read_known_events(_write(tmp_path, "start_time,mint,duration_minutes\n2025-09-01T16:00Z,a,2.5\n"))
    assert by_duration["end_time"].iloc[0] == pd.Timestamp("2025-09-01 16:02:30", tz="UTC")


@pytest.mark.parametrize("text, message", [
    ("symbol,start_time,end_time\nX,2025-09-01,2025-09-01\n", "events.csv: column 'mint' is missing"),
    ("mint,start_time,end\na,2025-09-01,2025-09-01\n", "events.csv: unknown column 'end'; allowed: mint, start_time"),
    ("mint,start_time\na,2025-09-01\n", "needs exactly one of the columns 'end_time' or 'duration_minutes'"),
    ("mint,start_time,end_time,duration_minutes\na,2025-09-01,2025-09-01,3\n", "needs exactly one of"),
    ("mint,start_time,end_time\n", "events.csv: no events (only a header)"),
    ("mint,start_time,end_time\na,2025-09-01,2025-09-01\n,2025-09-01,2025-09-01\n", "events.csv, line 3: mint is empty"),
    ("mint,start_time,end_time\na,2025-09-01,\n", "events.csv, line 2: end_time is empty"),
    ("mint,start_time,end_time\na,2025-09-01T10:00Z,2025-09-01T09:00Z\n",
     "line 2: end_time '2025-09-01T09:00Z' is before start_time '2025-09-01T10:00Z'"),
    ("mint,start_time,duration_minutes\na,2025-09-01,0\n", "line 2: duration_minutes '0' must be a number of minutes > 0"),
    ("mint,start_time,duration_minutes\na,2025-09-01,ten\n", "line 2: duration_minutes 'ten' must be"),
    ("mint,start_time,duration_minutes\na,2025-09-01T10:00Z,5\na,2025-09-01 10:00,6\n",
     "line 3: a second event of mint 'a' starting at 2025-09-01T10:00:00+00:00"),
])
def test_bad_files_raise_one_line_naming_column_and_line(tmp_path, text, message):
    with pytest.raises(KnownEventsError) as info:
        read_known_events(_write(tmp_path, text))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_missing_file_is_named(tmp_path):
    with pytest.raises(KnownEventsError, match="no such file"):
        read_known_events(tmp_path / "nope.csv")
