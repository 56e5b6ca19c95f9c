"""Model names, and who may add a version under one.

The rule is applied when a version is created (:func:`model_for_new_version`, used by
:func:`core.registry.catalog.register_model_version` for jobs and by
:func:`core.registry.publish.register_upload`), so no path skips it:

- an existing model takes a new version from someone who can see it and may curate it
  (its owner, an admin, a member of its group); a model the caller cannot see answers
  404 — the same as any object they cannot see — and a visible one 403;
- a new name ``G.rest``, where ``G`` is an existing group the caller is not in (compared
  ignoring letter case), is reserved to that group (403): a train job without
  ``model_name`` registers under its group's :func:`default_model_name`, and nobody else
  can take those names first;
- a new version is never more visible than its model (:func:`version_visibility`).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.registry.access import can_see, may_curate
from core.registry.accounts import caller_for_user
from core.registry.keys import Caller
from core.registry.models import VISIBILITIES, Group, Job, RegisteredModel

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,199}$")


def _theory_tail(spec: dict[str, Any]) -> str:
    return (
        f"{spec.get('method', 'ir')}-d{spec['dim']}-L{spec['L']}"
        f"-k{spec['kappa']:g}-l{spec['lam']:g}"
    ).replace("+", "")  # 1e+20 → 1e20: '+' reads as a space in a query string


def default_model_name(spec: dict[str, Any], group: str) -> str:
    """``GROUP.METHOD-dD-LL-kκ-lλ``, e.g. ``lab-a.ir-d2-L8-k0.25-l0.01``: the name a train
    job without ``model_name`` registers under. The group prefix keeps two groups training
    the same theory apart (a new name starting with a group's name and '.' is reserved to
    its members, see :func:`writable_model`)."""
    return f"{group}.{_theory_tail(spec)}"


def default_name_for(session: Session, job: Job) -> str:
    """:func:`default_model_name` of the job's group, or ``GROUP.OWNER.…`` when the owner
    may not add to that model (another member's private model of the same theory)."""
    name = default_model_name(job.spec, job.group)
    try:
        writable_model(session, name, caller_for_user(session, job.owner,
                                                      fallback_group=job.group))
    except NameRefused:
        return f"{job.group}.{job.owner}.{_theory_tail(job.spec)}"
    return name


class NameRefused(ValueError):
    """The caller may not add a version under this name. ``status``: 422 not a name, 404 a
    model the caller cannot see (its existence is not confirmed: the same answer as for
    any object they cannot see), 403 visible but not theirs to curate, or a name reserved
    to another group."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.message, self.status = message, status


def writable_model(session: Session, name: str, caller: Caller) -> RegisteredModel | None:
    """The existing model ``name`` the caller may add versions to, or None if the name is
    free for them to create. NameRefused otherwise."""
    if not NAME_RE.match(name):
        raise NameRefused(f"name={name!r}: letters, digits, '.', '_', '+', '-'", 422)
    model = session.scalar(select(RegisteredModel).where(RegisteredModel.name == name))
    if model is None:
        _check_reserved(session, name, caller)
        return None
    if not can_see(model, caller):
        raise NameRefused(f"no model {name!r} that you can add versions to (model names are "
                          "shared by all groups): choose another name", 404)
    if not may_curate(model, caller):
        raise NameRefused(f"only members of {model.group!r} may add versions to {name!r}", 403)
    return model


def _check_reserved(session: Session, name: str, caller: Caller) -> None:
    """A new name ``G.rest`` where G is another group's name, in any letter case, belongs
    to that group (its default names live there), so nobody else can take them first
    (``LAB-A.x`` reads as lab-a's to people, so it is lab-a's)."""
    if caller.is_admin:
        return
    prefixes = [name[:i].lower() for i, ch in enumerate(name) if ch == "."]
    if not prefixes:
        return
    mine = [g.lower() for g in caller.groups]
    owner = session.scalar(select(Group.name).where(func.lower(Group.name).in_(prefixes),
                                                    func.lower(Group.name).not_in(mine)))
    if owner is not None:
        raise NameRefused(f"names starting with {owner + '.'!r} are reserved to group "
                          f"{owner!r}: choose another name", 403)


def model_for_new_version(session: Session, name: str, caller: Caller, *, group: str,
                          visibility: str) -> RegisteredModel:
    """The model a new version of ``name`` goes into: an existing one the caller may curate
    (:func:`writable_model`), or a new one owned by the caller in ``group``."""
    model = writable_model(session, name, caller)
    if model is None:
        model = RegisteredModel(name=name, owner=caller.user, group=group,
                                visibility=visibility)
        session.add(model)
        session.flush()
    return model


def version_visibility(requested: str, model: RegisteredModel) -> str:
    """A new version is never more visible than its model (private < group < public)."""
    return min(requested, model.visibility, key=VISIBILITIES.index)
