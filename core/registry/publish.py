"""Register a validated upload as the next version of a named model.

Order matters for "nothing stored on refusal": the caller validates everything first
(:func:`core.registry.uploads.validate_flow`), this module checks the name and the
caller's rights, and only then writes blobs and rows, in one transaction.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core import __version__
from core.registry.keys import Caller
from core.registry.models import ACTION_CONVENTION, ModelVersion, RegisteredModel, utcnow
from core.registry.naming import (
    NameRefused,
    model_for_new_version,
    version_visibility,
    writable_model,
)
from core.registry.store import ArtifactStore
from core.registry.uploads import UploadError, ValidatedFlow


def check_target(session: Session, name: str, caller: Caller) -> RegisteredModel | None:
    """The existing model ``name`` the caller may add versions to, or None if new.
    UploadError 404 if the caller cannot see the model (not confirmed to exist), 403 if
    visible but not theirs or a name reserved to another group (:func:`writable_model`)."""
    try:
        return writable_model(session, name, caller)
    except NameRefused as exc:
        raise UploadError("name", exc.message, exc.status) from None


def register_upload(session: Session, store: ArtifactStore, *, name: str, caller: Caller,
                    visibility: str, flow: ValidatedFlow) -> ModelVersion:
    """Store the files and add the version (no commit: the caller commits)."""
    try:  # the rule every new version follows, whichever path made it
        model = model_for_new_version(session, name, caller, group=caller.group,
                                      visibility=visibility)
    except NameRefused as exc:
        raise UploadError("name", exc.message, exc.status) from None
    blobs = {n: store.put_file(p) for n, p in sorted(flow.paths.items())}
    last = session.scalar(select(func.max(ModelVersion.version))
                          .where(ModelVersion.model_id == model.id))
    cfg, m = flow.config, flow.metrics
    metrics: dict[str, Any] = {k: v for k, v in m.items() if k not in ("curve", "history")}
    if flow.source is not None:
        metrics["uploaded_from"] = {k: flow.source.get(k) for k in
                                    ("ref", "sha256", "job_id", "owner", "group", "code_version")}
    curve = m.get("curve") if isinstance(m.get("curve"), list) else []
    ess, acc = m.get("ess"), m.get("acceptance")
    mv = ModelVersion(
        model_id=model.id, version=(last or 0) + 1, dim=cfg.dim, L=cfg.fine_L,
        kappa=cfg.theory.kappa, lam=cfg.theory.lam, action=ACTION_CONVENTION,
        method=cfg.method, config=flow.config_json, couplings=flow.couplings,
        ess=float(ess) if isinstance(ess, int | float) else None,
        acceptance=float(acc) if isinstance(acc, int | float) else None,
        curve=curve, metrics=metrics, seed=cfg.seed, code_version=cfg.code_version or __version__,
        torch_version=_str(flow.config_json.get("torch_version")),
        torchdiffeq_version=_str(flow.config_json.get("torchdiffeq_version")),
        device=_str(flow.config_json.get("device")),
        wall_time_s=_float(m.get("wall_time_s", m.get("seconds"))),
        parent=cfg.parent, job_id=None, owner=caller.user, group=model.group,
        visibility=version_visibility(visibility, model), sha256=flow.sha256,
        size=sum(b.size for b in blobs.values()),
        files={k: {"sha256": b.sha256, "size": b.size} for k, b in blobs.items()},
        create_time=utcnow(),
    )
    session.add(mv)
    model.update_time = utcnow()
    session.flush()
    return mv


def _str(x: Any) -> str | None:
    return str(x)[:64] if x is not None else None


def _float(x: Any) -> float | None:
    return float(x) if isinstance(x, int | float) else None
