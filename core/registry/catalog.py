"""Registered models → versions → aliases, and ensembles: registration, lookup, search.

A model reference is ``NAME`` (its highest version), ``NAME/VERSION`` or ``NAME@ALIAS``.
Aliases are movable pointers (MLflow style, no stages). Registration happens in the
caller's transaction, together with the job's conditional ``finish``, so a job that is
cancelled, fails or loses a race registers nothing.

Who may add a version to a model is decided when the version is created
(:func:`core.registry.naming.model_for_new_version`, called by
:func:`register_model_version` and by uploads), so every path follows the same rule;
checks made earlier (at submit) only give an early answer.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.registry.access import can_see
from core.registry.accounts import caller_for_user
from core.registry.jobs import visible_to
from core.registry.keys import Caller
from core.registry.models import (
    Ensemble,
    Job,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
    utcnow,
)
from core.registry.naming import (  # re-exported: callers know them as catalog.*
    NAME_RE,
    NameRefused,
    default_model_name,
    default_name_for,
    model_for_new_version,
    version_visibility,
    writable_model,
)
from core.registry.store import Blob

__all__ = ["ALIAS_RE", "NAME_RE", "ModelRef", "NameRefused", "default_model_name",
           "default_name_for", "model_for_new_version", "parse_ref", "register_ensemble",
           "register_model_version", "resolve", "writable_model"]

ALIAS_RE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class ModelRef:
    name: str
    version: int | None = None
    alias: str | None = None


def parse_ref(ref: str) -> ModelRef:
    """Parse ``NAME``, ``NAME/VERSION`` or ``NAME@ALIAS``; ValueError says what is wrong."""
    if "@" in ref:
        name, alias = ref.split("@", 1)
        if not ALIAS_RE.match(alias):
            raise ValueError(f"alias {alias!r} in {ref!r} is not a valid alias name")
        parsed = ModelRef(name, alias=alias)
    elif "/" in ref:
        name, version = ref.split("/", 1)
        if not version.isdigit():
            raise ValueError(f"version {version!r} in {ref!r} is not a positive integer")
        parsed = ModelRef(name, version=int(version))
    else:
        parsed = ModelRef(ref)
    if not NAME_RE.match(parsed.name):
        raise ValueError(
            f"{parsed.name!r} is not a model name (letters, digits, '.', '_', '+', '-')"
        )
    return parsed


def get_model(session: Session, name: str, caller: Caller | None) -> RegisteredModel | None:
    stmt = select(RegisteredModel).where(RegisteredModel.name == name)
    if caller is not None:
        stmt = stmt.where(visible_to(RegisteredModel, caller))
    return session.scalar(stmt)


def get_version(
    session: Session, name: str, version: int, caller: Caller | None
) -> ModelVersion | None:
    stmt = (
        select(ModelVersion)
        .join(RegisteredModel)
        .where(RegisteredModel.name == name, ModelVersion.version == version)
    )
    if caller is not None:
        stmt = stmt.where(visible_to(ModelVersion, caller))
    return session.scalar(stmt)


def resolve(session: Session, ref: str, caller: Caller | None) -> ModelVersion | None:
    """The version a reference points to, if it exists and the caller may see it."""
    try:
        parsed = parse_ref(ref)
    except ValueError:
        return None
    model = get_model(session, parsed.name, caller)
    if model is None:
        return None
    if parsed.version is not None:
        return get_version(session, parsed.name, parsed.version, caller)
    if parsed.alias is not None:
        alias = session.get(ModelAlias, (model.id, parsed.alias))
        if alias is None or (caller is not None and not can_see(alias.version, caller)):
            return None  # a version has its own visibility, like NAME/VERSION below
        return alias.version
    stmt = select(ModelVersion).where(ModelVersion.model_id == model.id)
    if caller is not None:
        stmt = stmt.where(visible_to(ModelVersion, caller))
    return session.scalar(stmt.order_by(ModelVersion.version.desc()).limit(1))


def aliases_of(session: Session, model_id: int) -> dict[str, int]:
    rows = session.execute(
        select(ModelAlias.alias, ModelVersion.version)
        .join(ModelVersion, ModelAlias.version_id == ModelVersion.id)
        .where(ModelAlias.model_id == model_id)
    )
    return {alias: version for alias, version in rows}


def set_alias(session: Session, model: RegisteredModel, alias: str, version: ModelVersion) -> None:
    if not ALIAS_RE.match(alias):
        raise ValueError(f"alias {alias!r}: use a letter, then letters, digits, '_' or '-'")
    row = session.get(ModelAlias, (model.id, alias))
    if row is None:
        session.add(ModelAlias(model_id=model.id, alias=alias, version_id=version.id))
    else:
        row.version_id, row.update_time = version.id, utcnow()
    model.update_time = utcnow()
    session.flush()


def search_versions(
    session: Session,
    caller: Caller,
    *,
    dim: int | None = None,
    L: int | None = None,
    kappa_min: float | None = None,
    kappa_max: float | None = None,
    lam_min: float | None = None,
    lam_max: float | None = None,
    method: str | None = None,
    min_ess: float | None = None,
    limit: int = 200,
) -> list[ModelVersion]:
    stmt = (select(ModelVersion).join(RegisteredModel)  # a version under a name that answers
            .where(visible_to(ModelVersion, caller),  # 404 would reveal the name
                   visible_to(RegisteredModel, caller)))
    for col, lo, hi in (
        (ModelVersion.kappa, kappa_min, kappa_max),
        (ModelVersion.lam, lam_min, lam_max),
    ):
        if lo is not None:
            stmt = stmt.where(col >= lo)
        if hi is not None:
            stmt = stmt.where(col <= hi)
    if dim is not None:
        stmt = stmt.where(ModelVersion.dim == dim)
    if L is not None:
        stmt = stmt.where(ModelVersion.L == L)
    if method is not None:
        stmt = stmt.where(ModelVersion.method == method)
    if min_ess is not None:
        stmt = stmt.where(ModelVersion.ess >= min_ess)
    stmt = stmt.order_by(ModelVersion.ess.desc().nulls_last(), ModelVersion.id.desc())
    return list(session.scalars(stmt.limit(limit)))


def register_model_version(
    session: Session,
    *,
    name: str,
    job: Job,
    files: dict[str, Blob],
    fields: dict[str, Any],
) -> ModelVersion:
    """Add the next version of model ``name`` (created if new) in the caller's transaction.

    The job's owner must be allowed to add to ``name`` now (:func:`writable_model`, with
    the owner's current groups): NameRefused otherwise, whatever was checked at submit.
    The version belongs to the model's group, as an upload's does — not to the job's: a
    member of two groups must not put one group's model into the other group's listings.
    ``fields`` holds the ModelVersion columns (theory, method, config, metrics, ...)."""
    owner = caller_for_user(session, job.owner, fallback_group=job.group)
    model = model_for_new_version(session, name, owner, group=job.group,
                                  visibility=job.visibility)
    last = session.scalar(
        select(func.max(ModelVersion.version)).where(ModelVersion.model_id == model.id)
    )
    weights = files["model.safetensors"]
    mv = ModelVersion(
        model_id=model.id,
        version=(last or 0) + 1,
        job_id=job.id,
        owner=job.owner,
        group=model.group,
        visibility=version_visibility(job.visibility, model),
        sha256=weights.sha256,
        size=sum(b.size for b in files.values()),
        files={k: {"sha256": b.sha256, "size": b.size} for k, b in files.items()},
        **fields,
    )
    session.add(mv)
    model.update_time = utcnow()
    session.flush()
    return mv


def register_ensemble(
    session: Session,
    *,
    job: Job,
    blob: Blob,
    fields: dict[str, Any],
    ensemble_id: str | None = None,
) -> Ensemble:
    ens = Ensemble(
        id=ensemble_id or str(uuid.uuid4()),
        job_id=job.id,
        kind=job.kind,
        owner=job.owner,
        group=job.group,
        visibility=job.visibility,
        sha256=blob.sha256,
        size=blob.size,
        blob_path=blob.relpath,
        **fields,
    )
    session.add(ens)
    session.flush()
    return ens


def get_ensemble(session: Session, ensemble_id: str, caller: Caller | None) -> Ensemble | None:
    stmt = select(Ensemble).where(Ensemble.id == ensemble_id)
    if caller is not None:
        stmt = stmt.where(visible_to(Ensemble, caller))
    return session.scalar(stmt)
