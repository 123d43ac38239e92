"""Which models score live: activating ``ml_models`` rows into ``prediction_active_models`` and managing them.

Activation refuses anything scoring could not rely on (a missing, deleted or unfinished model, an
artifact that fails its SHA-256 or does not load, a failed blocking quality gate or activation gate such as
``beats_rule_baseline`` (``ml.quality.ACTIVATION_GATES``) unless forced) and
copies the verified artifact into the active-models directory, so scoring never depends on the
training store. Every refusal is an ``ActivationError`` with one line naming the model and the reason.

Each write is one transaction; an activation that fails removes the copy it made, so it leaves
neither a row nor a file. Active rows are addressed by ``model_id``, ``custom_name`` or
``model_name`` (tried in that order; ``rename`` keeps names unique among the rows).
"""
from __future__ import annotations

import shutil
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from pump_orchestration import settings
from pump_orchestration.ml.model_store import ModelStore, atomic_write, sha256_file
from pump_orchestration.ml.quality import ACTIVATION_GATES
from pump_orchestration.vocabulary import DEFAULT_ALERT_THRESHOLD
from pump_orchestration.warehouse import repository
from pump_orchestration.warehouse.schema import prediction_active_models as active

#: ``ml_models`` columns an active row carries over unchanged.
_COPIED_COLUMNS = ("model_type", "target_variable", "target_operator", "target_value", "future_minutes",
                   "price_change_percent", "target_direction", "features", "phases", "params")
_MAX_NAME = active.c.custom_name.type.length


class ActivationError(ValueError):
    """A refused activation or management request; the message is one line naming the model and the reason."""


def _refuse(label: Any, reason: str) -> ActivationError:
    # Unpickling and driver errors may span lines; the contract is one line.
    return ActivationError(f"model '{label}': {' '.join(reason.split())}")


# ---------------------------------------------------------------- activation


def activate(engine: sa.Engine, model_ref: str, *, store: ModelStore, active_dir: Path, threshold: float | None = None,
             name: str | None = None, force: bool = False) -> dict:
    """Activate the ``ml_models`` row ``model_ref`` (id or name) for scoring and return its active row.

    ``store`` is a ``ModelStore`` (it verifies and loads the artifact); the verified copy is written
    to ``active_dir``. Without ``threshold`` a new row alerts at :func:`default_threshold`. An inactive
    row of the same model is re-activated (same id, fresh copy); ``threshold`` and ``name`` update it
    when given. ``force`` overrides failed gates only (blocking ones
    and ``ACTIVATION_GATES``); it never activates a FAILED, deleted or unverifiable model.
    """
    active_dir = Path(active_dir)
    copy: Path | None = None
    try:
        with engine.begin() as conn:
            model = _find_model(conn, model_ref)
            label = model["name"]
            if model["is_deleted"]:
                raise _refuse(label, "deleted (is_deleted), deleted models cannot be activated")
            if model["status"] != "READY":
                raise _refuse(label, f"status {model['status']}, only READY models can be activated")
            if threshold is not None:
                _check_threshold(label, threshold)
            existing = conn.execute(sa.select(active).where(active.c.model_id == model["id"])).mappings().first()
            if name is not None:
                name = _check_name(conn, label, name, row_id=existing["id"] if existing is not None else None)
            _verify_artifact(label, model, store)
            failed = _failed_gates(model)
            if failed and not force:
                raise _refuse(label, f"failed quality gate {failed}; pass force to activate anyway")
            if existing is not None and existing["is_active"]:
                raise ActivationError(f"model '{label}' is already active (active model id {existing['id']})")

            copy = _copy_artifact(label, model, active_dir)
            values = {"model_name": label, **{c: model[c] for c in _COPIED_COLUMNS},
                      "local_model_path": str(copy), "is_active": True, "activated_at": _now()}
            if threshold is not None:
                values["alert_threshold"] = float(threshold)
            if name is not None:
                values["custom_name"] = name
            if existing is None:
                values.setdefault("alert_threshold", default_threshold(model))
                row_id = _insert_row(conn, label, {"model_id": model["id"], **values})
            else:
                row_id = existing["id"]
                conn.execute(active.update().where(active.c.id == row_id).values(values))
            row = _row(conn, row_id)
    except BaseException:
        if copy is not None:
            _remove_copy(copy, active_dir)
        raise
    if existing is not None:
        _remove_copy(Path(existing["local_model_path"]), active_dir)  # the copy the inactive row pointed to
    return row


def default_threshold(model: dict) -> float:
    """The alert threshold a model is activated with when none is given: the operating point chosen at
    training (``ml_models.alert_threshold``), or ``DEFAULT_ALERT_THRESHOLD`` for models stored before it."""
    chosen = model.get("alert_threshold")
    return DEFAULT_ALERT_THRESHOLD if chosen is None else float(chosen)


def _find_model(conn: sa.Connection, ref: str) -> dict:
    ref = str(ref).strip()
    model = repository.get_model(conn, model_id=int(ref)) if ref.isdigit() else None
    model = model or repository.get_model(conn, name=ref)
    if model is None:
        raise _refuse(ref, f"no model with id or name '{ref}'")
    return model


def _check_threshold(label: Any, threshold: float) -> None:
    # Written this way round so NaN (every comparison false) is refused too.
    if not 0.0 <= float(threshold) <= 1.0:
        raise _refuse(label, f"alert threshold {threshold} is not within [0, 1]")


def _check_name(conn: sa.Connection, label: Any, name: str, row_id: int | None) -> str:
    """``name`` stripped, when it is non-empty, short enough and no other active row is called so."""
    name = name.strip()
    if not name:
        raise _refuse(label, "the name is empty")
    if len(name) > _MAX_NAME:
        raise _refuse(label, f"the name has {len(name)} characters, at most {_MAX_NAME} are allowed")
    query = sa.select(active.c.id).where(sa.or_(active.c.custom_name == name, active.c.model_name == name))
    if row_id is not None:
        query = query.where(active.c.id != row_id)
    taken = conn.execute(query.limit(1)).scalar()
    if taken is not None:
        raise _refuse(label, f"the name '{name}' is already used by active model id {taken}")
    return name


def _verify_artifact(label: str, model: dict, store: ModelStore) -> None:
    """Hash-check and unpickle the training artifact through the store; any failure is one refusal line."""
    path, sha256 = model["model_file_path"], model["model_sha256"]
    if not path or not sha256:
        raise _refuse(label, "no artifact recorded (model_file_path or model_sha256 is empty)")
    try:
        store.load(path, sha256)
    except Exception as exc:  # missing file, checksum mismatch, or an unpickling error of any kind
        raise _refuse(label, str(exc) or type(exc).__name__) from None


def _failed_gates(model: dict) -> str:
    """The failed gates of ``params["_checks"]`` that keep a model from scoring (blocking ones and
    ``ACTIVATION_GATES``) as ``name (description)``, comma separated."""
    checks = (model["params"] or {}).get("_checks") or {}
    return ", ".join(f"{gate} ({check.get('description', '')})" for gate, check in checks.items()
                     if (check.get("blocking") or gate in ACTIVATION_GATES) and not check.get("passed"))


def _copy_artifact(label: str, model: dict, active_dir: Path) -> Path:
    """Copy the artifact and its manifest into ``active_dir`` under a name of their own; the copy must verify."""
    source = Path(model["model_file_path"])
    active_dir.mkdir(parents=True, exist_ok=True)
    # A unique name per activation: a failed (or concurrent) activation only ever removes its own copy.
    target = active_dir / f"{source.stem}-active-{model['id']}-{uuid.uuid4().hex[:8]}.joblib"
    try:
        _atomic_copy(source, target)
        manifest = ModelStore.manifest_path(source)
        if manifest.is_file():
            _atomic_copy(manifest, ModelStore.manifest_path(target))
        copied_sha = sha256_file(target)
    except BaseException:
        _remove_copy(target, active_dir)
        raise
    if copied_sha != model["model_sha256"].strip().lower():
        _remove_copy(target, active_dir)
        raise _refuse(label, f"the copy {target} has sha256 {copied_sha}, expected {model['model_sha256']}")
    return target


def _atomic_copy(source: Path, target: Path) -> None:
    """Copy through the model store's atomic write, so scoring never sees half a file."""
    def write(out) -> None:
        with open(source, "rb") as src:
            shutil.copyfileobj(src, out)

    atomic_write(target, write)


def _remove_copy(path: Path, active_dir: Path) -> None:
    """Remove an artifact copy and its manifest, only inside ``active_dir`` (a row never deletes the training store)."""
    path = Path(path).expanduser().resolve()
    if path.is_relative_to(Path(active_dir).expanduser().resolve()):
        path.unlink(missing_ok=True)
        ModelStore.manifest_path(path).unlink(missing_ok=True)


def _insert_row(conn: sa.Connection, label: str, values: dict) -> int:
    try:
        return int(conn.execute(active.insert().values(values)).inserted_primary_key[0])
    except sa.exc.IntegrityError:
        # model_id is UNIQUE: another process activated the same model between our check and this insert.
        raise ActivationError(f"model '{label}' is already active (activated concurrently)") from None


# ---------------------------------------------------------------- managing active rows


def list_active_models(engine: sa.Engine, only_active: bool = False) -> list[dict]:
    """Rows of ``prediction_active_models`` in activation order; only the active ones on request."""
    query = sa.select(active).order_by(active.c.id)
    if only_active:
        query = query.where(active.c.is_active.is_(sa.true()))
    with engine.connect() as conn:
        return [dict(row) for row in conn.execute(query).mappings()]


def get_active_model(engine: sa.Engine, ref: str | int) -> dict:
    """The row addressed by ``ref`` (model_id, custom_name or model_name)."""
    with engine.connect() as conn:
        return _find_active(conn, ref)


def deactivate(engine: sa.Engine, ref: str | int) -> dict:
    """Stop scoring with a model; the row and its copy stay, so ``activate`` can bring it back."""
    return _update(engine, ref, lambda conn, row: {"is_active": False})


def set_threshold(engine: sa.Engine, ref: str | int, threshold: float) -> dict:
    """Set the alert threshold (a probability within [0, 1])."""
    def values(conn, row):
        _check_threshold(_label(row), threshold)
        return {"alert_threshold": float(threshold)}

    return _update(engine, ref, values)


def rename(engine: sa.Engine, ref: str | int, name: str) -> dict:
    """Set ``custom_name``: non-empty, at most 255 characters, not the name of another active row."""
    return _update(engine, ref, lambda conn, row: {"custom_name": _check_name(conn, _label(row), name, row["id"])})


def delete(engine: sa.Engine, ref: str | int, *, active_dir: Path | None = None) -> dict:
    """Delete the row, then its artifact copy and manifest; returns the deleted row.

    Files are removed only inside ``active_dir`` (default ``settings.active_models_dir()``), after
    the commit: a failed delete keeps the file its row points to.
    """
    with engine.begin() as conn:
        row = _find_active(conn, ref)
        conn.execute(active.delete().where(active.c.id == row["id"]))
    _remove_copy(Path(row["local_model_path"]), active_dir or settings.active_models_dir())
    return row


def _update(engine: sa.Engine, ref: str | int, values) -> dict:
    """Apply ``values(conn, row)`` to the row ``ref`` in one transaction; return the updated row."""
    with engine.begin() as conn:
        row = _find_active(conn, ref)
        conn.execute(active.update().where(active.c.id == row["id"]).values(values(conn, row)))
        return _row(conn, row["id"])


def _find_active(conn: sa.Connection, ref: str | int) -> dict:
    ref = str(ref).strip()
    conditions = [active.c.custom_name == ref, active.c.model_name == ref]
    if ref.isdigit():
        conditions.insert(0, active.c.model_id == int(ref))
    for condition in conditions:
        row = conn.execute(sa.select(active).where(condition).order_by(active.c.id)).mappings().first()
        if row is not None:
            return dict(row)
    raise _refuse(ref, "not in prediction_active_models")


def _row(conn: sa.Connection, row_id: int) -> dict:
    return dict(conn.execute(sa.select(active).where(active.c.id == row_id)).mappings().one())


def _label(row: dict) -> str:
    return row["custom_name"] or row["model_name"]


def _now() -> datetime:
    return datetime.now(timezone.utc)
