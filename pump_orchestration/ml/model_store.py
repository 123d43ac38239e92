"""Model artifacts on disk: atomic joblib files with a JSON manifest, verified by SHA-256 before loading.

Unpickling runs arbitrary code, so ``load`` hashes the file first and refuses
anything whose hash differs from the one recorded when it was saved
(``ml_models`` stores it next to ``model_file_path``).
"""
from __future__ import annotations

import hashlib
import importlib
import json
import logging
import os
import platform
import re
import tempfile
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

#: Import names of the libraries a pickled model depends on.
_LIBRARIES = ("sklearn", "xgboost", "imblearn", "numpy", "pandas", "joblib")
_CHUNK = 1 << 20


class ArtifactMissingError(FileNotFoundError):
    """The artifact file does not exist."""


class ArtifactIntegrityError(Exception):
    """The artifact's SHA-256 differs from the expected one (or it is not a model artifact); it was not unpickled."""

    def __init__(self, path: str | Path, expected: str | None, actual: str | None, detail: str = ""):
        self.path, self.expected, self.actual = str(path), expected, actual
        super().__init__(detail or f"artifact {path} failed its integrity check: expected sha256 {expected}, "
                                   f"file has {actual}; it was not loaded")


@dataclass(frozen=True)
class StoredArtifact:
    """Where a model was written, its SHA-256 and size."""

    path: str
    sha256: str
    size_bytes: int


@dataclass
class LoadedModel:
    """A verified, unpickled artifact."""

    estimator: Any
    feature_names: list[str]
    metadata: dict[str, Any]
    library_versions: dict[str, str | None]


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def library_versions() -> dict[str, str | None]:
    """Versions of Python and the libraries a pickled model depends on (``None`` if not installed)."""
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for module in _LIBRARIES:
        try:
            versions[module] = getattr(importlib.import_module(module), "__version__", None)
        except ImportError:
            versions[module] = None
    return versions


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("._-")[:80] or "model"


def atomic_write(path: Path, write) -> None:
    """Write via a temp file in the same directory and ``os.replace`` it, so readers never see half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class ModelStore:
    """Model artifacts under ``root``: ``<safe-name>-<uuid8>.joblib`` plus a ``.json`` manifest beside it."""

    def __init__(self, root: str | Path):
        self.root = Path(root).expanduser().resolve()

    @staticmethod
    def manifest_path(path: str | Path) -> Path:
        """The manifest of an artifact: same path with ``.json`` instead of ``.joblib``."""
        return Path(path).with_suffix(".json")

    def save(self, estimator: Any, *, name: str, feature_names: list[str], metadata: dict[str, Any]) -> StoredArtifact:
        """Write ``estimator`` with its feature order, metadata and library versions; return path and hash.

        ``metadata`` must be JSON-serialisable (datetimes are written as strings in the manifest).
        """
        import joblib

        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / f"{_safe_name(name)}-{uuid.uuid4().hex[:8]}.joblib"
        versions = library_versions()
        created_at = datetime.now(timezone.utc).isoformat()
        payload = {"estimator": estimator, "feature_names": [str(f) for f in feature_names],
                   "metadata": dict(metadata), "library_versions": versions, "created_at": created_at}
        atomic_write(path, lambda handle: joblib.dump(payload, handle))
        artifact = StoredArtifact(path=str(path), sha256=sha256_file(path), size_bytes=path.stat().st_size)
        manifest = {"name": name, "file": path.name, "sha256": artifact.sha256, "size_bytes": artifact.size_bytes,
                    "created_at": created_at, "feature_names": payload["feature_names"],
                    "library_versions": versions, "metadata": payload["metadata"]}
        text = json.dumps(manifest, indent=2, sort_keys=True, default=str).encode()
        atomic_write(self.manifest_path(path), lambda handle: handle.write(text))
        return artifact

    def load(self, path: str | Path, expected_sha256: str) -> LoadedModel:
        """Verify the file's SHA-256 against ``expected_sha256``, then unpickle it.

        Raises ``ArtifactMissingError`` if the file is absent and ``ArtifactIntegrityError``
        (without unpickling) on a hash mismatch. Logs a warning when the artifact was
        written with other library versions than the ones installed now.
        """
        path = Path(path)
        if not path.is_file():
            raise ArtifactMissingError(f"model artifact not found: {path}")
        actual = sha256_file(path)
        if actual.lower() != str(expected_sha256).strip().lower():
            raise ArtifactIntegrityError(path, expected_sha256, actual)

        import joblib

        payload = joblib.load(path)
        if not isinstance(payload, dict) or "estimator" not in payload:
            raise ArtifactIntegrityError(path, expected_sha256, actual,
                                         f"artifact {path} is not a pump_orchestration model artifact")
        saved = payload.get("library_versions") or {}
        current = library_versions()
        differing = {k: (saved.get(k), v) for k, v in current.items() if saved.get(k) != v}
        if differing:
            logger.warning("model artifact %s was written with other library versions (saved -> installed): %s",
                           path, ", ".join(f"{k} {a} -> {b}" for k, (a, b) in sorted(differing.items())))
        return LoadedModel(estimator=payload["estimator"], feature_names=list(payload.get("feature_names") or []),
                           metadata=dict(payload.get("metadata") or {}), library_versions=saved)

    def delete(self, path: str | Path) -> None:
        """Remove an artifact and its manifest (missing files are fine); refuses paths outside ``root``."""
        path = Path(path).expanduser().resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"refusing to delete {path}: it is not inside the model store {self.root}")
        path.unlink(missing_ok=True)
        self.manifest_path(path).unlink(missing_ok=True)
