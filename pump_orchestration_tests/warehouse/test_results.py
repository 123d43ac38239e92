"""Result writers run all or nothing: a failure after artifacts were saved deletes them and writes no row."""
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from pump_orchestration.ml.model_store import ModelStore
from pump_orchestration.warehouse import repository
from pump_orchestration.warehouse.results import write_atomically


def _trained(name: str):
    # What the writers read of a TrainedModel; the estimator can be any picklable object here.
    return SimpleNamespace(request=SimpleNamespace(name=name),
                           result=SimpleNamespace(estimator={"weights": [1, 2]}, feature_names=["volume_sol"]),
                           artifact_metadata=lambda: {"note": "test"})


def test_a_failing_writer_leaves_no_artifact_and_no_row(warehouse_engine, tmp_path):
    store = ModelStore(tmp_path / "models")

    def write(conn, save_model):
        save_model(_trained("a"))
        save_model(_trained("b"))
        repository.insert_test_result(conn, {"bogus_column": 1})  # fails after two artifacts exist

    with pytest.raises(ValueError, match="bogus_column"):
        write_atomically(warehouse_engine, store, write)
    assert list((tmp_path / "models").glob("*")) == []
    with warehouse_engine.connect() as conn:
        assert conn.execute(sa.text("select count(*) from ml_models")).scalar() == 0


def test_a_writer_that_succeeds_returns_its_ids_and_keeps_its_artifacts(warehouse_engine, tmp_path):
    store = ModelStore(tmp_path / "models")
    stored_paths = []

    def write(conn, save_model):
        stored_paths.append(save_model(_trained("kept")).path)
        return {"model": []}

    ids, stored = write_atomically(warehouse_engine, store, write)
    assert ids == {"model": []} and [s.path for s in stored] == stored_paths
    assert [p.name for p in (tmp_path / "models").glob("*.joblib")] == [stored_paths[0].rsplit("/", 1)[-1]]
