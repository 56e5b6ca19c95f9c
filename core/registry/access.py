"""Who may do what with a shared object (jobs, models, versions, ensembles).

- **see** (:func:`core.registry.jobs.visible_to`): admins everything; others their own
  objects, ``group`` objects of their groups and ``public`` ones. What a caller cannot
  see does not exist for them: every route answers 404, never 403.
- **curate** (move an alias): the owner, an admin, or a member of the object's group.
- **modify** (change visibility, delete, cancel): the owner or an admin. A model's
  visibility change never widens a version owned by someone else
  (:func:`set_model_visibility`).

A caller who can see an object but not change it gets 403.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from core.registry.jobs import visible_to
from core.registry.keys import Caller
from core.registry.models import (
    VISIBILITIES,
    Ensemble,
    ModelAlias,
    ModelVersion,
    RegisteredModel,
)

__all__ = ["delete_ensemble", "delete_model", "delete_version", "may_curate", "may_modify",
           "set_model_visibility", "set_version_visibility", "set_visibility", "visible_to"]


def may_modify(obj: Any, caller: Caller) -> bool:
    return caller.is_admin or obj.owner == caller.user


def may_curate(obj: Any, caller: Caller) -> bool:
    return may_modify(obj, caller) or obj.group in caller.groups


def can_see(obj: Any, caller: Caller) -> bool:
    """Python twin of :func:`visible_to` for an object already loaded."""
    return (caller.is_admin or obj.owner == caller.user or obj.visibility == "public"
            or (obj.visibility == "group" and obj.group in caller.groups))


def set_visibility(obj: Any, visibility: str) -> None:
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility={visibility!r}: use private, group or public")
    obj.visibility = visibility


def set_model_visibility(session: Session, model: RegisteredModel, visibility: str,
                         caller: Caller) -> None:
    """The model takes ``visibility``; so do the versions the caller owns. Every other
    version is only ever narrowed: it ends at the narrower of its own visibility and the
    model's new one (never widened: another member's private version stays private when
    the model goes public). Each version's owner (or an admin) widens a version with
    :func:`set_version_visibility`."""
    set_visibility(model, visibility)
    rank = VISIBILITIES.index(visibility)
    wider = VISIBILITIES[rank + 1:]  # private < group < public
    for stmt in (update(ModelVersion).where(ModelVersion.model_id == model.id,
                                            ModelVersion.owner == caller.user),
                 update(ModelVersion).where(ModelVersion.model_id == model.id,
                                            ModelVersion.visibility.in_(wider))):
        session.execute(stmt.values(visibility=visibility)
                        .execution_options(synchronize_session="fetch"))  # loaded ones too
    session.flush()


def set_version_visibility(version: ModelVersion, visibility: str) -> None:
    """One version (its owner or an admin; the route checks). A version may not be more
    visible than its model: that would list it in searches under a name that answers 404."""
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility={visibility!r}: use private, group or public")
    bound = version.model.visibility
    if VISIBILITIES.index(visibility) > VISIBILITIES.index(bound):
        raise ValueError(f"model {version.model.name!r} is {bound}: a version cannot be more "
                         f"visible than its model (its owner can PATCH the model first)")
    version.visibility = visibility


class InUse(ValueError):
    """The object is referenced by others (an ensemble made from a model version)."""


def _ensembles_of(session: Session, version_ids: list[int]) -> int:
    if not version_ids:
        return 0
    n = session.scalar(select(func.count()).select_from(Ensemble)
                       .where(Ensemble.model_version_id.in_(version_ids)))
    return int(n or 0)


def delete_version(session: Session, mv: ModelVersion) -> None:
    """Remove one version and the aliases pointing at it (blobs stay: they are shared by
    content). InUse if an ensemble records it as its source."""
    if _ensembles_of(session, [mv.id]):
        raise InUse(f"ensembles were sampled from {mv.model.name}/{mv.version}; delete them "
                    "first (their provenance names this version)")
    session.execute(delete(ModelAlias).where(ModelAlias.version_id == mv.id))
    session.delete(mv)
    session.flush()


def delete_model(session: Session, model: RegisteredModel) -> None:
    ids = list(session.scalars(select(ModelVersion.id).where(ModelVersion.model_id == model.id)))
    if _ensembles_of(session, ids):
        raise InUse(f"ensembles were sampled from versions of {model.name}; delete them first")
    session.execute(delete(ModelAlias).where(ModelAlias.model_id == model.id))
    session.execute(delete(ModelVersion).where(ModelVersion.model_id == model.id))
    session.delete(model)
    session.flush()


def delete_ensemble(session: Session, ens: Ensemble) -> None:
    session.delete(ens)
    session.flush()
