"""IO managers: parquet caches for the partitioned datasets, and ``ml_models`` rows + artifacts for fitted models."""

import json
import os
from pathlib import Path
from typing import Optional

import dagster as dg
import pandas as pd
from pydantic import Field

from pump_orchestration import settings
from pump_orchestration.resources import ModelStoreResource, WarehouseResource


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


def _mirror_result(context: dg.OutputContext, warehouse: WarehouseResource, **result_ids: int) -> None:
    """Record result ids in the run's ``ml_jobs`` row; the mirror never fails a result already written."""
    from pump_orchestration.progress import is_mirrored
    from pump_orchestration.warehouse.jobs_mirror import record_result

    try:
        run = context.step_context.dagster_run
        if is_mirrored(run):
            record_result(warehouse.engine(), context.run_id, run.job_name, **result_ids)
    except Exception as exc:  # noqa: BLE001
        context.log.warning(f"ml_jobs result ids not recorded ({type(exc).__name__}: {exc})")


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


class MlModelsIOManager(dg.ConfigurableIOManager):
    """Writes a fitted model as an artifact in the model store plus its ``ml_models`` row, all or nothing.

    The artifact is written first and its SHA-256 goes into the row; if the row
    cannot be written (e.g. the name was taken meanwhile) the artifact is deleted,
    so a failed run leaves neither a half-written row nor an orphan file.
    """

    warehouse: dg.ResourceDependency[WarehouseResource]
    model_store: dg.ResourceDependency[ModelStoreResource]

    def handle_output(self, context: dg.OutputContext, obj) -> None:
        from pump_orchestration.warehouse import repository

        store = self.model_store.store()
        stored = store.save(
            obj.result.estimator,
            name=obj.request.name,
            feature_names=list(obj.result.feature_names),
            metadata=obj.artifact_metadata(),
        )
        try:
            with self.warehouse.engine().begin() as conn:
                model_id = repository.insert_model(conn, obj.ml_models_values(str(stored.path), stored.sha256))
        except Exception:
            store.delete(stored.path)
            raise
        _mirror_result(context, self.warehouse, result_model_id=model_id)
        context.add_output_metadata({
            "model_id": dg.MetadataValue.int(model_id),
            "model_file_path": dg.MetadataValue.path(str(stored.path)),
            "model_sha256": dg.MetadataValue.text(stored.sha256),
        })

    def load_input(self, context: dg.InputContext):
        """The newest READY model trained inside the upstream partition window, its artifact verified."""
        from pump_orchestration.ml.model_store import ModelStore
        from pump_orchestration.warehouse import repository

        window = context.asset_partitions_time_window
        start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
        with self.warehouse.engine().connect() as conn:
            candidates = [
                m for m in repository.list_models(conn, status="READY")
                if pd.Timestamp(m["train_start"]) >= start and pd.Timestamp(m["train_end"]) <= end
            ]
        if not candidates:
            raise LookupError(f"no READY model trained inside [{start.isoformat()}, {end.isoformat()})")
        model = max(candidates, key=lambda m: (m["created_at"], m["id"]))
        loaded = ModelStore(Path(model["model_file_path"]).parent).load(model["model_file_path"], model["model_sha256"])
        return {"row": model, "model": loaded}


class MlResultsIOManager(dg.ConfigurableIOManager):
    """Writes test reports, comparisons and walk-forward results to ``ml_*`` tables in one transaction.

    Walk-forward also creates models: their artifacts are written first and deleted again
    if the transaction fails, so a failed run leaves no rows and no orphan files.
    """

    warehouse: dg.ResourceDependency[WarehouseResource]
    model_store: dg.ResourceDependency[ModelStoreResource]

    def handle_output(self, context: dg.OutputContext, obj: dict) -> None:
        store = self.model_store.store()
        saved: list[str] = []
        try:
            with self.warehouse.engine().begin() as conn:
                ids = self._write(conn, store, obj, saved)
        except Exception:
            for path in saved:
                store.delete(path)
            raise
        context.add_output_metadata({key: dg.MetadataValue.json(value) if isinstance(value, list)
                                     else dg.MetadataValue.int(value) for key, value in ids.items()})
        # ml_jobs has one id per kind: the last one written (the newest window of a walk-forward).
        _mirror_result(context, self.warehouse, **{f"result_{kind[:-4]}_id": values[-1]
                                                  for kind, values in ids.items() if values})

    @staticmethod
    def _comparison(conn, result, a_id: int, b_id: int) -> tuple[int, int, int]:
        from pump_orchestration.warehouse import repository

        test_a = repository.insert_test_result(conn, {**result.test_a, "model_id": a_id})
        test_b = repository.insert_test_result(conn, {**result.test_b, "model_id": b_id})
        winner = {"a": a_id, "b": b_id, None: None}[result.winner]
        comparison = repository.insert_comparison(conn, {**result.comparison, "model_a_id": a_id, "model_b_id": b_id,
                                                          "test_a_id": test_a, "test_b_id": test_b,
                                                          "winner_id": winner})
        return test_a, test_b, comparison

    def _write(self, conn, store, obj: dict, saved: list[str]) -> dict:
        from pump_orchestration.warehouse import repository

        kind = obj["kind"]
        if kind == "test":
            return {"test_ids": [repository.insert_test_result(conn, obj["test"])]}
        if kind == "comparison":
            test_a, test_b, comparison = self._comparison(conn, obj["result"], obj["model_a_id"], obj["model_b_id"])
            return {"test_ids": [test_a, test_b], "comparison_ids": [comparison]}
        if kind == "walk_forward":
            ids: dict[str, list[int]] = {"model_ids": [], "test_ids": [], "comparison_ids": []}
            previous_id = None
            for outcome in obj["outcomes"]:
                trained = outcome.trained
                stored = store.save(trained.result.estimator, name=trained.request.name,
                                    feature_names=list(trained.result.feature_names),
                                    metadata=trained.artifact_metadata())
                saved.append(stored.path)
                model_id = repository.insert_model(conn, trained.ml_models_values(str(stored.path), stored.sha256))
                ids["model_ids"].append(model_id)
                ids["test_ids"].append(repository.insert_test_result(conn, {**outcome.test, "model_id": model_id}))
                if outcome.comparison is not None:
                    *_, comparison = self._comparison(conn, outcome.comparison, model_id, previous_id)
                    ids["comparison_ids"].append(comparison)
                previous_id = model_id
            return ids
        raise ValueError(f"unknown result kind {kind!r}")

    def load_input(self, context: dg.InputContext) -> list[dict]:
        """The ``ml_test_results`` rows whose test window lies inside the upstream partitions."""
        from pump_orchestration.warehouse import repository

        window = context.asset_partitions_time_window
        start, end = pd.Timestamp(window.start), pd.Timestamp(window.end)
        with self.warehouse.engine().connect() as conn:
            return [r for r in repository.list_test_results(conn)
                    if r["test_start"] >= start and r["test_end"] <= end]
