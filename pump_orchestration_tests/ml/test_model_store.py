import json
import logging
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pump_orchestration.ml import model_store
from pump_orchestration.ml.model_store import (
    ArtifactIntegrityError,
    ArtifactMissingError,
    ModelStore,
    sha256_file,
)
from pump_orchestration.ml.models import build_estimator


def _record_unpickle(marker: str) -> str:
    """Runs when a ``Trap`` is unpickled: leaves a marker file behind."""
    Path(marker).write_text("unpickled")
    return marker


class Trap:
    """Pickles into a call of ``_record_unpickle``, so unpickling is observable."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return _record_unpickle, (str(self.marker),)


@pytest.fixture
def fitted():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(100, 3)), columns=["a", "b", "c"])
    y = (X["a"] > 0).astype(int)
    return build_estimator("random_forest", {"n_estimators": 5}, n_jobs=1).fit(X, y), X


def _flip_one_byte(path: str) -> None:
    data = bytearray(Path(path).read_bytes())
    data[len(data) // 2] ^= 0xFF
    Path(path).write_bytes(bytes(data))


def test_round_trip_predicts_identically(tmp_path, fitted):
    estimator, X = fitted
    store = ModelStore(tmp_path / "models")
    stored = store.save(estimator, name="My pump model / v1", feature_names=list(X.columns),
                        metadata={"model_type": "random_forest", "future_minutes": 10})
    assert re.fullmatch(r"My_pump_model_v1-[0-9a-f]{8}\.joblib", Path(stored.path).name)
    assert stored.sha256 == sha256_file(stored.path) and stored.size_bytes == Path(stored.path).stat().st_size
    loaded = store.load(stored.path, stored.sha256)
    assert np.array_equal(loaded.estimator.predict_proba(X), estimator.predict_proba(X))
    assert loaded.feature_names == ["a", "b", "c"]
    assert loaded.metadata == {"model_type": "random_forest", "future_minutes": 10}
    assert set(loaded.library_versions) == {"python", "sklearn", "xgboost", "imblearn", "numpy", "pandas", "joblib"}
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == sorted(
        [Path(stored.path).name, Path(stored.path).with_suffix(".json").name])  # no temp files left


def test_manifest_contents(tmp_path, fitted):
    estimator, X = fitted
    stored = ModelStore(tmp_path).save(estimator, name="m", feature_names=list(X.columns),
                                       metadata={"train_start": pd.Timestamp("2025-09-01", tz="UTC")})
    manifest = json.loads(Path(stored.path).with_suffix(".json").read_text())
    assert manifest["sha256"] == stored.sha256
    assert manifest["size_bytes"] == stored.size_bytes
    assert manifest["file"] == Path(stored.path).name and manifest["name"] == "m"
    assert manifest["feature_names"] == ["a", "b", "c"]
    assert manifest["library_versions"] == model_store.library_versions()
    assert manifest["metadata"] == {"train_start": "2025-09-01 00:00:00+00:00"}
    assert "created_at" in manifest


def test_tampered_artifact_is_rejected_without_unpickling(tmp_path):
    marker = tmp_path / "unpickled.txt"
    store = ModelStore(tmp_path / "models")
    stored = store.save(Trap(marker), name="trap", feature_names=["a"], metadata={})
    original = Path(stored.path).read_bytes()
    _flip_one_byte(stored.path)
    with pytest.raises(ArtifactIntegrityError) as info:
        store.load(stored.path, stored.sha256)
    message = str(info.value)
    assert stored.path in message and stored.sha256 in message and sha256_file(stored.path) in message
    assert not marker.exists()
    # Control: the same artifact, intact, does get unpickled, so the check above is meaningful.
    Path(stored.path).write_bytes(original)
    store.load(stored.path, stored.sha256.upper())
    assert marker.exists()


def test_wrong_expected_hash_is_rejected(tmp_path, fitted):
    estimator, X = fitted
    store = ModelStore(tmp_path)
    stored = store.save(estimator, name="m", feature_names=list(X.columns), metadata={})
    with pytest.raises(ArtifactIntegrityError, match="0" * 64):
        store.load(stored.path, "0" * 64)


def test_missing_artifact(tmp_path):
    path = tmp_path / "gone-12345678.joblib"
    with pytest.raises(ArtifactMissingError, match=re.escape(str(path))) as info:
        ModelStore(tmp_path).load(path, "0" * 64)
    assert isinstance(info.value, FileNotFoundError)


def test_library_version_mismatch_warns(tmp_path, fitted, monkeypatch, caplog):
    estimator, X = fitted
    store = ModelStore(tmp_path)
    stored = store.save(estimator, name="m", feature_names=list(X.columns), metadata={})
    newer = {**model_store.library_versions(), "sklearn": "99.0"}
    monkeypatch.setattr(model_store, "library_versions", lambda: newer)
    with caplog.at_level(logging.WARNING, logger=model_store.__name__):
        store.load(stored.path, stored.sha256)
    assert "other library versions" in caplog.text and "-> 99.0" in caplog.text


def test_delete_removes_artifact_and_manifest(tmp_path, fitted):
    estimator, X = fitted
    store = ModelStore(tmp_path / "models")
    stored = store.save(estimator, name="m", feature_names=list(X.columns), metadata={})
    store.delete(stored.path)
    assert list((tmp_path / "models").iterdir()) == []
    store.delete(stored.path)  # already gone: fine
    outside = tmp_path / "other.joblib"
    outside.write_text("x")
    with pytest.raises(ValueError, match="not inside the model store"):
        store.delete(outside)
    assert outside.exists()
