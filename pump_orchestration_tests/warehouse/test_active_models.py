"""Model activation on both backends: every refusal is one exact line and writes nothing; the happy paths."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa

from pump_orchestration.ml.model_store import ModelStore, sha256_file
from pump_orchestration.vocabulary import DEFAULT_ALERT_THRESHOLD
from pump_orchestration.warehouse import active_models, repository
from pump_orchestration.warehouse.active_models import ActivationError
from pump_orchestration.warehouse.schema import prediction_active_models

T0 = dt.datetime(2025, 9, 1, tzinfo=dt.timezone.utc)
FEATURES = ["price_close", "volume_sol"]
PASSED_GATES = {
    "beats_majority_baseline": {"passed": True, "blocking": True, "description": "ROC-AUC 0.810 vs 0.5"},
    "no_severe_overfitting": {"passed": False, "blocking": False, "description": "gap 0.2 (limit 0.1)"},
}
FAILED_GATE = {"beats_majority_baseline": {"passed": False, "blocking": True, "description": "ROC-AUC 0.450 vs 0.5"}}
FAILED_RULE_GATE = {"beats_rule_baseline": {"passed": False, "blocking": False,
                                            "description": "event_f1: model 0.100 vs rule 0.300"}}


def insert_model_with_artifact(engine: sa.Engine, models_dir: Path, name: str = "m1", *, status: str = "READY",
                               checks: dict | None = None, is_deleted: bool = False,
                               alert_threshold: float | None = None) -> dict:
    """A tiny fitted LogisticRegression saved in ``models_dir`` and its ``ml_models`` row; returns the row."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, len(FEATURES)))
    estimator = LogisticRegression().fit(X, (X[:, 0] > 0).astype(int))
    stored = ModelStore(models_dir).save(estimator, name=name, feature_names=FEATURES, metadata={})
    with engine.begin() as conn:
        model_id = repository.insert_model(conn, {
            "name": name, "model_type": "logistic_regression", "status": status, "target_variable": "price_close",
            "future_minutes": 10, "price_change_percent": 30.0, "target_direction": "up",
            "train_start": T0, "train_end": T0 + dt.timedelta(days=1), "features": FEATURES, "phases": [1, 2],
            "params": {"C": 1.0, "_checks": PASSED_GATES if checks is None else checks},
            "model_file_path": stored.path, "model_sha256": stored.sha256, "is_deleted": is_deleted,
            "alert_threshold": alert_threshold,
        })
        return repository.get_model(conn, model_id=model_id)


@pytest.fixture
def store(tmp_path) -> ModelStore:
    return ModelStore(tmp_path / "models")


@pytest.fixture
def active_dir(tmp_path) -> Path:
    return tmp_path / "active"


def _activate(engine, ref, store, active_dir, **kwargs) -> dict:
    return active_models.activate(engine, ref, store=store, active_dir=active_dir, **kwargs)


def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []


def _row_count(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(prediction_active_models)).scalar()


def _refused(engine, active_dir, call, message: str) -> None:
    """``call`` raises exactly ``message`` (one line), and no row or file is left behind."""
    before_rows, before_files = _row_count(engine), _files(active_dir)
    with pytest.raises(ActivationError) as caught:
        call()
    assert str(caught.value) == message
    assert "\n" not in message
    assert (_row_count(engine), _files(active_dir)) == (before_rows, before_files)


# ---------------------------------------------------------------- activation


def test_activate_writes_the_row_and_a_verified_copy(warehouse_engine, tmp_path, store, active_dir):
    model = insert_model_with_artifact(warehouse_engine, tmp_path / "models")
    row = _activate(warehouse_engine, str(model["id"]), store, active_dir)

    for column in ("model_type", "target_variable", "target_operator", "target_value", "future_minutes",
                   "price_change_percent", "target_direction", "features", "phases", "params"):
        assert row[column] == model[column], column
    assert (row["model_id"], row["model_name"], row["custom_name"]) == (model["id"], "m1", None)
    assert row["is_active"] is True and row["alert_threshold"] == DEFAULT_ALERT_THRESHOLD
    assert row["total_predictions"] == 0 and row["activated_at"] is not None
    copy = Path(row["local_model_path"])
    assert copy.parent == active_dir and copy != Path(model["model_file_path"])
    assert sha256_file(copy) == model["model_sha256"]
    assert _files(active_dir) == sorted([copy.name, copy.with_suffix(".json").name])
    assert store.load(copy, model["model_sha256"]).feature_names == FEATURES
    assert active_models.get_active_model(warehouse_engine, "m1") == row
    assert active_models.list_active_models(warehouse_engine) == [row]


def test_activation_defaults_to_the_operating_point_chosen_at_training(warehouse_engine, tmp_path, store,
                                                                      active_dir):
    insert_model_with_artifact(warehouse_engine, tmp_path / "models", "chosen", alert_threshold=0.35)
    insert_model_with_artifact(warehouse_engine, tmp_path / "models", "asked", alert_threshold=0.35)
    assert _activate(warehouse_engine, "chosen", store, active_dir)["alert_threshold"] == 0.35
    assert _activate(warehouse_engine, "asked", store, active_dir, threshold=0.9)["alert_threshold"] == 0.9


def test_activate_by_name_with_threshold_and_custom_name(warehouse_engine, tmp_path, store, active_dir):
    insert_model_with_artifact(warehouse_engine, tmp_path / "models")
    row = _activate(warehouse_engine, "m1", store, active_dir, threshold=0.55, name="Pump alert")
    assert (row["alert_threshold"], row["custom_name"]) == (0.55, "Pump alert")
    assert active_models.get_active_model(warehouse_engine, "Pump alert")["id"] == row["id"]


def test_unknown_deleted_and_unfinished_models_are_refused(warehouse_engine, tmp_path, store, active_dir):
    insert_model_with_artifact(warehouse_engine, tmp_path / "models", "gone", is_deleted=True)
    insert_model_with_artifact(warehouse_engine, tmp_path / "models", "broken", status="FAILED")
    insert_model_with_artifact(warehouse_engine, tmp_path / "models", "busy", status="TRAINING")
    for ref in ("nope", "999"):
        _refused(warehouse_engine, active_dir, lambda: _activate(warehouse_engine, ref, store, active_dir),
                 f"model '{ref}': no model with id or name '{ref}'")
    _refused(warehouse_engine, active_dir, lambda: _activate(warehouse_engine, "gone", store, active_dir),
             "model 'gone': deleted (is_deleted), deleted models cannot be activated")
    _refused(warehouse_engine, active_dir, lambda: _activate(warehouse_engine, "broken", store, active_dir),
             "model 'broken': status FAILED, only READY models can be activated")
    _refused(warehouse_engine, active_dir, lambda: _activate(warehouse_engine, "busy", store, active_dir),
             "model 'busy': status TRAINING, only READY models can be activated")


@pytest.mark.parametrize("threshold", [-0.1, 1.5, float("nan")])
def test_a_threshold_outside_zero_one_is_refused(warehouse_engine, tmp_path, store, active_dir, threshold):
    insert_model_with_artifact(warehouse_engine, tmp_path / "models")
    _refused(warehouse_engine, active_dir,
             lambda: _activate(warehouse_engine, "m1", store, active_dir, threshold=threshold),
             f"model 'm1': alert threshold {threshold} is not within [0, 1]")


@pytest.mark.parametrize("checks, gate", [
    (FAILED_GATE, "beats_majority_baseline (ROC-AUC 0.450 vs 0.5)"),
    # Not blocking (the model stays READY), but an activation gate.
    ({**PASSED_GATES, **FAILED_RULE_GATE}, "beats_rule_baseline (event_f1: model 0.100 vs rule 0.300)"),
])
def test_a_failed_gate_is_refused_unless_forced(warehouse_engine, tmp_path, store, active_dir, checks, gate):
    insert_model_with_artifact(warehouse_engine, tmp_path / "models", checks=checks)
    _refused(warehouse_engine, active_dir, lambda: _activate(warehouse_engine, "m1", store, active_dir),
             f"model 'm1': failed quality gate {gate}; pass force to activate anyway")
    row = _activate(warehouse_engine, "m1", store, active_dir, force=True)
    assert row["is_active"] and _row_count(warehouse_engine) == 1


def test_a_second_activation_is_refused(warehouse_engine, tmp_path, store, active_dir):
    insert_model_with_artifact(warehouse_engine, tmp_path / "models")
    row = _activate(warehouse_engine, "m1", store, active_dir)
    _refused(warehouse_engine, active_dir, lambda: _activate(warehouse_engine, "m1", store, active_dir),
             f"model 'm1' is already active (active model id {row['id']})")


def test_a_corrupted_or_missing_artifact_is_refused(warehouse_engine, tmp_path, store, active_dir):
    corrupted = insert_model_with_artifact(warehouse_engine, tmp_path / "models", "corrupted")
    Path(corrupted["model_file_path"]).write_bytes(b"not a model")
    _refused(warehouse_engine, active_dir, lambda: _activate(warehouse_engine, "corrupted", store, active_dir),
             f"model 'corrupted': artifact {corrupted['model_file_path']} failed its integrity check: expected "
             f"sha256 {corrupted['model_sha256']}, file has {sha256_file(corrupted['model_file_path'])}; "
             "it was not loaded")
    missing = insert_model_with_artifact(warehouse_engine, tmp_path / "models", "missing")
    Path(missing["model_file_path"]).unlink()
    _refused(warehouse_engine, active_dir, lambda: _activate(warehouse_engine, "missing", store, active_dir),
             f"model 'missing': model artifact not found: {missing['model_file_path']}")


def test_a_failure_after_the_copy_removes_it(warehouse_engine, tmp_path, store, active_dir, monkeypatch):
    insert_model_with_artifact(warehouse_engine, tmp_path / "models")

    def failing_insert(conn, label, values):
        assert Path(values["local_model_path"]).is_file()  # the copy exists when the row is written
        raise RuntimeError("database went away")

    monkeypatch.setattr(active_models, "_insert_row", failing_insert)
    with pytest.raises(RuntimeError, match="database went away"):
        _activate(warehouse_engine, "m1", store, active_dir)
    assert _row_count(warehouse_engine) == 0 and _files(active_dir) == []


# ---------------------------------------------------------------- managing active rows


def test_deactivate_then_reactivate_keeps_the_row_id(warehouse_engine, tmp_path, store, active_dir):
    model = insert_model_with_artifact(warehouse_engine, tmp_path / "models")
    first = _activate(warehouse_engine, "m1", store, active_dir)
    off = active_models.deactivate(warehouse_engine, model["id"])
    assert off["id"] == first["id"] and off["is_active"] is False
    assert active_models.list_active_models(warehouse_engine, only_active=True) == []
    assert active_models.list_active_models(warehouse_engine) == [off]

    again = _activate(warehouse_engine, "m1", store, active_dir, threshold=0.9, name="back")
    assert again["id"] == first["id"] and again["is_active"] is True
    assert (again["alert_threshold"], again["custom_name"]) == (0.9, "back")
    assert again["activated_at"] >= first["activated_at"]
    # A fresh verified copy replaces the old one.
    copy = Path(again["local_model_path"])
    assert sha256_file(copy) == model["model_sha256"]
    assert _files(active_dir) == sorted([copy.name, copy.with_suffix(".json").name])
    assert _row_count(warehouse_engine) == 1


def test_set_threshold(warehouse_engine, tmp_path, store, active_dir):
    insert_model_with_artifact(warehouse_engine, tmp_path / "models")
    _activate(warehouse_engine, "m1", store, active_dir)
    assert active_models.set_threshold(warehouse_engine, "m1", 0.25)["alert_threshold"] == 0.25
    with pytest.raises(ActivationError) as caught:
        active_models.set_threshold(warehouse_engine, "m1", 1.5)
    assert str(caught.value) == "model 'm1': alert threshold 1.5 is not within [0, 1]"
    assert active_models.get_active_model(warehouse_engine, "m1")["alert_threshold"] == 0.25


def test_rename_checks_the_name(warehouse_engine, tmp_path, store, active_dir):
    insert_model_with_artifact(warehouse_engine, tmp_path / "models", "m1")
    insert_model_with_artifact(warehouse_engine, tmp_path / "models", "m2")
    _activate(warehouse_engine, "m1", store, active_dir)
    other = _activate(warehouse_engine, "m2", store, active_dir, name="second")

    renamed = active_models.rename(warehouse_engine, "m1", "  Fast pumps  ")
    assert renamed["custom_name"] == "Fast pumps"
    assert active_models.get_active_model(warehouse_engine, "Fast pumps")["id"] == renamed["id"]
    for name, reason in [("   ", "the name is empty"),
                         ("x" * 256, "the name has 256 characters, at most 255 are allowed"),
                         ("second", f"the name 'second' is already used by active model id {other['id']}"),
                         ("m2", f"the name 'm2' is already used by active model id {other['id']}")]:
        with pytest.raises(ActivationError) as caught:
            active_models.rename(warehouse_engine, "Fast pumps", name)
        assert str(caught.value) == f"model 'Fast pumps': {reason}"
    assert active_models.get_active_model(warehouse_engine, "m1")["custom_name"] == "Fast pumps"
    assert active_models.rename(warehouse_engine, "m1", "m1")["custom_name"] == "m1"  # its own name is fine


def test_delete_removes_the_row_and_the_copy(warehouse_engine, tmp_path, store, active_dir):
    model = insert_model_with_artifact(warehouse_engine, tmp_path / "models")
    row = _activate(warehouse_engine, "m1", store, active_dir)
    deleted = active_models.delete(warehouse_engine, "m1", active_dir=active_dir)
    assert deleted["id"] == row["id"]
    assert _row_count(warehouse_engine) == 0 and _files(active_dir) == []
    assert Path(model["model_file_path"]).is_file()  # the training artifact stays


def test_unknown_active_refs_are_refused(warehouse_engine, tmp_path, store, active_dir):
    insert_model_with_artifact(warehouse_engine, tmp_path / "models")
    _activate(warehouse_engine, "m1", store, active_dir)
    calls = [lambda ref: active_models.get_active_model(warehouse_engine, ref),
             lambda ref: active_models.deactivate(warehouse_engine, ref),
             lambda ref: active_models.set_threshold(warehouse_engine, ref, 0.5),
             lambda ref: active_models.rename(warehouse_engine, ref, "x"),
             lambda ref: active_models.delete(warehouse_engine, ref, active_dir=active_dir)]
    for call in calls:
        for ref in ("nope", 999):
            _refused(warehouse_engine, active_dir, lambda: call(ref), f"model '{ref}': not in prediction_active_models")
