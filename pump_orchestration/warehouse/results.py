"""Writing results to the warehouse all or nothing: one writer per kind of result.

A writer takes the open transaction and a ``save_model`` callback (an artifact is written before
the ``ml_models`` row that carries its SHA-256) and returns the ids it inserted, by kind
(``model``, ``test``, ``comparison``). ``write_atomically`` runs one writer in one transaction and
deletes the artifacts it saved when anything fails, so a failed write leaves neither a
half-written table nor an orphan file.
"""
from __future__ import annotations

from typing import Any, Callable, Iterable

import sqlalchemy as sa

from pump_orchestration.ml.model_store import ModelStore, StoredArtifact
from pump_orchestration.ml.records import ComparisonOutcome, TrainedModel
from pump_orchestration.warehouse import repository

SaveModel = Callable[[TrainedModel], StoredArtifact]
Ids = dict[str, list[int]]
Writer = Callable[[sa.Connection, SaveModel], Ids]


def write_atomically(engine: sa.Engine, store: ModelStore, write: Writer) -> tuple[Ids, list[StoredArtifact]]:
    """Run ``write`` in one transaction; returns its ids and the artifacts it saved."""
    saved: list[StoredArtifact] = []

    def save_model(trained: TrainedModel) -> StoredArtifact:
        stored = store.save(trained.result.estimator, name=trained.request.name,
                            feature_names=list(trained.result.feature_names), metadata=trained.artifact_metadata())
        saved.append(stored)
        return stored

    try:
        with engine.begin() as conn:
            ids = write(conn, save_model)
    except BaseException:
        for stored in saved:
            store.delete(stored.path)
        raise
    return ids, saved


def _insert_model(conn: sa.Connection, save_model: SaveModel, trained: TrainedModel) -> int:
    stored = save_model(trained)
    return repository.insert_model(conn, trained.ml_models_values(str(stored.path), stored.sha256))


def write_model(conn: sa.Connection, save_model: SaveModel, trained: TrainedModel) -> Ids:
    """A fitted model: its artifact and its ``ml_models`` row."""
    return {"model": [_insert_model(conn, save_model, trained)]}


def write_test(conn: sa.Connection, save_model: SaveModel, test: dict[str, Any]) -> Ids:
    """A test report: one ``ml_test_results`` row."""
    return {"test": [repository.insert_test_result(conn, test)]}


def _comparison_rows(conn: sa.Connection, result, a_id: int, b_id: int) -> tuple[int, int, int]:
    test_a = repository.insert_test_result(conn, {**result.test_a, "model_id": a_id})
    test_b = repository.insert_test_result(conn, {**result.test_b, "model_id": b_id})
    winner = {"a": a_id, "b": b_id, None: None}[result.winner]
    comparison = repository.insert_comparison(conn, {**result.comparison, "model_a_id": a_id, "model_b_id": b_id,
                                                      "test_a_id": test_a, "test_b_id": test_b, "winner_id": winner})
    return test_a, test_b, comparison


def write_comparison(conn: sa.Connection, save_model: SaveModel, outcome: ComparisonOutcome) -> Ids:
    """A comparison: both models' test rows and the ``ml_comparisons`` row linking them."""
    test_a, test_b, comparison = _comparison_rows(conn, outcome.result, outcome.model_a_id, outcome.model_b_id)
    return {"test": [test_a, test_b], "comparison": [comparison]}


def write_walk_forward(conn: sa.Connection, save_model: SaveModel, outcomes: Iterable) -> Ids:
    """Walk-forward windows (``ml.pipeline.WindowOutcome``): per window its model, its test, and the
    comparison with the previous window's model."""
    ids: Ids = {"model": [], "test": [], "comparison": []}
    previous_id = None
    for outcome in outcomes:
        model_id = _insert_model(conn, save_model, outcome.trained)
        ids["model"].append(model_id)
        ids["test"].append(repository.insert_test_result(conn, {**outcome.test, "model_id": model_id}))
        if outcome.comparison is not None:
            ids["comparison"].append(_comparison_rows(conn, outcome.comparison, model_id, previous_id)[2])
        previous_id = model_id
    return ids
