import dagster as dg
import pandas as pd

from pump_orchestration.defs.shared.io_managers import ParquetIOManager
from pump_orchestration.defs.shared.partitions import training_days


def _frame(start: str, end: str, freq: str = "10min") -> pd.DataFrame:
    ts = pd.date_range(start, end, freq=freq, tz="UTC", inclusive="left")
    df = pd.DataFrame({"mint": ["a", "b"] * (len(ts) // 2) + ["a"] * (len(ts) % 2), "timestamp": ts,
                       "price_close": range(len(ts))})
    df.attrs = {"lookback_minutes": 60}
    return df


def _contexts(keys: list[str]):
    key_range = dg.PartitionKeyRange(keys[0], keys[-1])
    out = dg.build_output_context(asset_key=dg.AssetKey("coin_metrics_slice"), partition_key=None,
                                  asset_partitions_def=training_days, asset_partition_key_range=key_range)
    into = dg.build_input_context(asset_key=dg.AssetKey("coin_metrics_slice"), asset_partitions_def=training_days,
                                  asset_partition_key_range=key_range)
    return out, into


def test_slices_are_split_per_day_with_their_lookback_and_reassembled_exactly(tmp_path):
    manager = ParquetIOManager(base_dir=str(tmp_path), split_by_day=True)
    df = _frame("2025-09-01T23:00", "2025-09-04")  # look-back hour before day 1, then three days
    out, into = _contexts(["2025-09-02", "2025-09-03"])
    manager.handle_output(out, df[df["timestamp"] < "2025-09-04"])

    day3 = pd.read_parquet(tmp_path / "coin_metrics_slice" / "2025-09-03.parquet")
    assert day3["timestamp"].min() == pd.Timestamp("2025-09-02T23:00", tz="UTC")  # its own look-back hour
    loaded = manager.load_input(into)
    expected = df[df["timestamp"] < "2025-09-04"].sort_values(["timestamp", "mint"]).reset_index(drop=True)
    pd.testing.assert_frame_equal(loaded, expected)
    assert loaded.attrs["lookback_minutes"] == 60

    # One cached day serves a window that is only that day.
    _, single = _contexts(["2025-09-03"])
    assert manager.load_input(single)["timestamp"].min() == pd.Timestamp("2025-09-02T23:00", tz="UTC")


def test_missing_partition_names_the_day(tmp_path):
    manager = ParquetIOManager(base_dir=str(tmp_path), split_by_day=True)
    _, into = _contexts(["2025-09-05"])
    try:
        manager.load_input(into)
    except FileNotFoundError as exc:
        assert "partition 2025-09-05 is not materialized" in str(exc)
    else:
        raise AssertionError("expected FileNotFoundError")


def test_range_files_keep_attrs(tmp_path):
    manager = ParquetIOManager(base_dir=str(tmp_path))
    df = _frame("2025-09-02", "2025-09-03")
    df.attrs = {"request_fingerprint": "abc", "stage_seconds": {"load": 1.5}}
    out, into = _contexts(["2025-09-02"])
    manager.handle_output(out, df)
    loaded = manager.load_input(into)
    pd.testing.assert_frame_equal(loaded, df)
    assert loaded.attrs == df.attrs


def test_caches_are_written_and_read_in_row_groups(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    from pump_orchestration.defs.shared import io_managers

    monkeypatch.setattr(io_managers, "ROW_GROUP_ROWS", 7)
    manager = ParquetIOManager(base_dir=str(tmp_path), split_by_day=True)
    df = _frame("2025-09-01T23:00", "2025-09-05", freq="7min")
    df["is_koth"] = pd.array([True, None, False] * (len(df) // 3) + [True] * (len(df) % 3), dtype="boolean")
    out, into = _contexts(["2025-09-02", "2025-09-04"])
    manager.handle_output(out, df)
    day = tmp_path / "coin_metrics_slice" / "2025-09-03.parquet"
    assert pq.ParquetFile(day).num_row_groups == -(-len(pd.read_parquet(day)) // 7) > 1
    pd.testing.assert_frame_equal(manager.load_input(into), df.reset_index(drop=True))

    ranged = ParquetIOManager(base_dir=str(tmp_path / "range"))
    ranged.handle_output(out, df)
    pd.testing.assert_frame_equal(ranged.load_input(into), df)


def test_unsorted_slice_is_refused_before_anything_is_written(tmp_path):
    manager = ParquetIOManager(base_dir=str(tmp_path), split_by_day=True)
    df = _frame("2025-09-01T23:00", "2025-09-03").iloc[::-1]
    out, _ = _contexts(["2025-09-02"])
    try:
        manager.handle_output(out, df)
    except ValueError as exc:
        assert "sorted by timestamp" in str(exc)
    else:
        raise AssertionError("expected ValueError")
    assert not (tmp_path / "coin_metrics_slice").exists()
