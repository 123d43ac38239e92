"""IO managers: parquet caches for the partitioned frames, and the base of the ones that write warehouse rows."""

import json
import os
from pathlib import Path
from typing import Optional

import dagster as dg
import pandas as pd
from pydantic import Field

from pump_orchestration import settings
from pump_orchestration.defs.shared.progress import record_run_result
from pump_orchestration.defs.shared.resources import ModelStoreResource, WarehouseResource


def _atomic_write_parquet(df: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    df.to_parquet(tmp, index=False)
    tmp.with_suffix(".json.tmp").write_text(json.dumps(df.attrs, default=str))
    # Parquet first, then its attrs: a reader never sees attrs of another version of the data.
    os.replace(tmp, path)
    os.replace(tmp.with_suffix(".json.tmp"), path.with_suffix(".json"))


def _read_parquet(path: Path) -> pd.DataFrame:
    df = pd.read_parquet(path)
    meta = path.with_suffix(".json")
    df.attrs = json.loads(meta.read_text()) if meta.exists() else {}
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
        for key in keys:
            window = partitions_def.time_window_for_partition_key(key)
            start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
            day = obj[(obj["timestamp"] >= start - lookback) & (obj["timestamp"] < end)].copy()
            day.attrs = {**obj.attrs, "window_start": start.isoformat(), "window_end": end.isoformat(),
                         "rows": int(len(day))}
            _atomic_write_parquet(day, self._root(context.asset_key) / f"{key}.parquet")

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
        frames, attrs = [], {}
        for key in keys:
            path = self._root(asset_key) / f"{key}.parquet"
            if not path.exists():
                raise FileNotFoundError(
                    f"{asset_key.to_user_string()} partition {key} is not materialized ({path} missing)"
                )
            frame = _read_parquet(path)
            attrs = attrs or frame.attrs
            frames.append(frame)
        df = pd.concat(frames, ignore_index=True)
        # Consecutive days overlap by the look-back rows.
        df = df.drop_duplicates(["mint", "timestamp"]).sort_values(["timestamp", "mint"], kind="stable")
        df = df.reset_index(drop=True)
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
