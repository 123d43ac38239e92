"""IO managers: parquet caches for the partitioned frames, and the base of the ones that write warehouse rows."""

import json
import os
from pathlib import Path
from typing import Optional

import dagster as dg
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import Field

from pump_orchestration import settings
from pump_orchestration.defs.shared.progress import record_run_result
from pump_orchestration.defs.shared.resources import ModelStoreResource, WarehouseResource


#: Rows per parquet row group: caches are converted to and from Arrow this many rows at a time,
#: so writing never holds a second full copy of a frame (``DataFrame.to_parquet`` converts it whole).
ROW_GROUP_ROWS = 250_000


def _atomic_write_parquet(df: pd.DataFrame, path: Path, attrs: dict | None = None) -> None:
    """Write ``df`` (its attrs, or ``attrs``, to the JSON sidecar) one row group at a time, atomically."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    schema = pa.Schema.from_pandas(df, preserve_index=False)
    with pq.ParquetWriter(tmp, schema) as writer:
        for offset in range(0, len(df), ROW_GROUP_ROWS):
            writer.write_table(pa.Table.from_pandas(df.iloc[offset:offset + ROW_GROUP_ROWS], schema=schema,
                                                    preserve_index=False))
    tmp.with_suffix(".json.tmp").write_text(json.dumps(df.attrs if attrs is None else attrs, default=str))
    # Parquet first, then its attrs: a reader never sees attrs of another version of the data.
    os.replace(tmp, path)
    os.replace(tmp.with_suffix(".json.tmp"), path.with_suffix(".json"))


def _read_attrs(path: Path) -> dict:
    meta = path.with_suffix(".json")
    return json.loads(meta.read_text()) if meta.exists() else {}


def _read_batches(path: Path, since: pd.Timestamp | None = None) -> list[pa.RecordBatch]:
    """The file's rows as Arrow batches, one row group at a time; with ``since`` only rows at or after it."""
    batches = []
    for batch in pq.ParquetFile(path).iter_batches(batch_size=ROW_GROUP_ROWS):
        if since is not None:
            batch = batch.filter(pc.greater_equal(batch.column("timestamp"), pa.scalar(since)))
        batches.append(batch)
    return batches


def _to_frame(path: Path, batches: list[pa.RecordBatch]) -> pd.DataFrame:
    """One pandas frame from Arrow batches; each Arrow column is freed as soon as it is converted."""
    table = pa.Table.from_batches(batches, schema=pq.read_schema(path))
    batches.clear()
    return table.to_pandas(self_destruct=True, split_blocks=True)


def _read_parquet(path: Path) -> pd.DataFrame:
    df = _to_frame(path, _read_batches(path))
    df.attrs = _read_attrs(path)
    return df


class ParquetIOManager(dg.ConfigurableIOManager):
    """Stores partitioned DataFrames as parquet under ``$PUMP_DATA_DIR/cache/<asset>/``.

    With ``split_by_day`` (raw slices) each daily partition gets its own file holding
    its rows plus the look-back rows before it, so any window reuses cached days. Otherwise
    (request-dependent datasets) a run's whole partition range is one file.
    """

    base_dir: Optional[str] = Field(default=None, description="Cache directory; empty = $PUMP_DATA_DIR/cache.")
    split_by_day: bool = Field(default=False, description="One file per daily partition (raw slices).")

    def _root(self, asset_key: dg.AssetKey) -> Path:
        return Path(self.base_dir or settings.data_dir() / "cache").joinpath(*asset_key.path)

    def _range_path(self, asset_key: dg.AssetKey, keys: list[str]) -> Path:
        return self._root(asset_key) / f"{keys[0]}__{keys[-1]}.parquet"

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        keys = list(context.asset_partition_keys)
        if not self.split_by_day:
            _atomic_write_parquet(obj, self._range_path(context.asset_key, keys))
            return
        lookback = pd.Timedelta(minutes=int(obj.attrs.get("lookback_minutes", 0)))
        partitions_def = context.asset_partitions_def
        ts = obj["timestamp"]
        if not ts.is_monotonic_increasing:
            raise ValueError(f"{context.asset_key.to_user_string()}: rows must be sorted by timestamp "
                             "to be cached per day")
        for key in keys:
            window = partitions_def.time_window_for_partition_key(key)
            start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
            # The day is a contiguous block of the sorted frame: a view, written in row groups.
            lo, hi = ts.searchsorted(start - lookback), ts.searchsorted(end)
            day = obj.iloc[lo:hi]
            _atomic_write_parquet(day, self._root(context.asset_key) / f"{key}.parquet",
                                  attrs={**obj.attrs, "window_start": start.isoformat(),
                                         "window_end": end.isoformat(), "rows": int(hi - lo)})

    def load_input(self, context: dg.InputContext) -> pd.DataFrame:
        asset_key = context.asset_key
        keys = list(context.asset_partition_keys)
        if not self.split_by_day:
            path = self._range_path(asset_key, keys)
            if not path.exists():
                raise FileNotFoundError(
                    f"{asset_key.to_user_string()} for partitions {keys[0]}..{keys[-1]} is not materialized "
                    f"({path} missing); materialize it for the same partition range first"
                )
            return _read_parquet(path)
        paths = [self._root(asset_key) / f"{key}.parquet" for key in keys]
        for key, path in zip(keys, paths):
            if not path.exists():
                raise FileNotFoundError(
                    f"{asset_key.to_user_string()} partition {key} is not materialized ({path} missing)"
                )
        # Each day file is sorted by (timestamp, mint) and starts with the look-back rows that the
        # previous day already holds: skipping rows before the previous file's end leaves the range
        # sorted and without duplicates, so it is assembled batch by batch without a concat or sort.
        batches, attrs, previous_end = [], {}, None
        for path in paths:
            day_attrs = _read_attrs(path)
            attrs = attrs or day_attrs
            batches += _read_batches(path, since=previous_end)
            previous_end = pd.Timestamp(day_attrs["window_end"])
        df = _to_frame(paths[0], batches)
        df.attrs = {**attrs, "rows": int(len(df))}
        return df


class WarehouseWriterIOManager(dg.ConfigurableIOManager):
    """Stores an asset's result as warehouse rows (and model artifacts), all or nothing.

    A subclass names its writer (``warehouse.results``): the writer decides which rows a kind of
    result becomes; this class owns the transaction, the clean-up of artifacts when it fails, the
    output metadata (the ids written) and the run's ``ml_jobs`` result ids.
    """

    warehouse: dg.ResourceDependency[WarehouseResource]
    model_store: dg.ResourceDependency[ModelStoreResource]

    def write(self, conn, save_model, obj) -> dict[str, list[int]]:
        """Insert ``obj``'s rows in ``conn``'s transaction; return the ids by kind."""
        raise NotImplementedError

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        from pump_orchestration.warehouse.results import write_atomically

        ids, stored = write_atomically(self.warehouse.engine(), self.model_store.store(),
                                       lambda conn, save_model: self.write(conn, save_model, obj))
        metadata = {}
        for kind, values in ids.items():
            if len(values) == 1:
                metadata[f"{kind}_id"] = dg.MetadataValue.int(values[0])
            else:
                metadata[f"{kind}_ids"] = dg.MetadataValue.json(values)
        if len(stored) == 1:
            metadata["model_file_path"] = dg.MetadataValue.path(stored[0].path)
            metadata["model_sha256"] = dg.MetadataValue.text(stored[0].sha256)
        context.add_output_metadata(metadata)
        # ml_jobs has one id per kind: the last one written (the newest window of a walk-forward).
        record_run_result(context, self.warehouse, {f"result_{kind}_id": values[-1]
                                                   for kind, values in ids.items() if values})

    def load_input(self, context: dg.InputContext):
        raise TypeError(
            f"{context.asset_key.to_user_string()} is stored as warehouse rows, not as an input to load: "
            "read the rows by id (an asset that needs it declares it in deps=)"
        )
