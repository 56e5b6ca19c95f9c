"""/v1/groups, /v1/users, /v1/keys: accounts (admins), and a user's own keys.

A key is returned once, at creation; afterwards its ``prefix`` names it (listing,
revocation). Keys may expire (``expires_at`` with a time zone, or ``expires_in_days``); a
key issued here expires no later than the key that asked for it, is revoked with it, and
a non-admin holds at most ``max_keys_per_user`` active keys (docs/sharing.md).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Body, Response
from pydantic import BaseModel, ConfigDict, Field, field_validator
from sqlalchemy import select

from app.deps import CallerDep, SessionDep, SettingsDep
from app.operations import rfc3339
from app.problems import Problem
from app.responses import GroupList, GroupOut, NewKeyOut, UserOut
from core.registry import accounts
from core.registry.keys import Caller
from core.registry.models import Group, User, utcnow

router = APIRouter(tags=["accounts"])


class GroupBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    max_queued_jobs: Annotated[int | None, Field(ge=1)] = None
    max_sample_volume: Annotated[int | None, Field(ge=1)] = None


class UserBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    groups: list[str] = Field(min_length=1)
    admin: bool = False


class KeyBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    expires_at: datetime | None = Field(None, description="RFC 3339 with a time zone, e.g. "
                                        "2030-01-01T00:00:00Z")
    expires_in_days: Annotated[float | None, Field(gt=0, le=36500)] = None  # < overflow

    @field_validator("expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.utcoffset() is None:
            raise ValueError(f"expires_at={value.isoformat()!r} has no time zone: add one, "
                             f"e.g. {value.replace(microsecond=0).isoformat()}Z or +00:00")
        return value


def _admin_only(caller: Caller, what: str) -> None:
    if not caller.is_admin:
        raise Problem(403, f"only an admin can {what}", slug="forbidden")


def _problem(exc: accounts.AccountError) -> Problem:
    return Problem(exc.status, str(exc), errors=[{"field": exc.field, "message": str(exc)}])


def _group_dict(g: Group) -> dict[str, Any]:
    return {"name": g.name, "max_queued_jobs": g.max_queued_jobs,
            "max_sample_volume": g.max_sample_volume, "create_time": rfc3339(g.create_time)}


@router.post("/groups", status_code=201, summary="Create a group (admin)",
             response_model=GroupOut)
def create_group(body: GroupBody, session: SessionDep, caller: CallerDep) -> dict[str, Any]:
    _admin_only(caller, "create groups")
    try:
        g = accounts.create_group(session, body.name, max_queued_jobs=body.max_queued_jobs,
                                  max_sample_volume=body.max_sample_volume)
    except accounts.AccountError as exc:
        raise _problem(exc) from None
    session.commit()
    return _group_dict(g)


@router.get("/groups", summary="Groups (admin: all; others: their own)",
            response_model=GroupList)
def list_groups(session: SessionDep, caller: CallerDep) -> dict[str, Any]:
    stmt = select(Group).order_by(Group.name)
    if not caller.is_admin:
        stmt = stmt.where(Group.name.in_(caller.groups))
    return {"groups": [_group_dict(g) for g in session.scalars(stmt)]}


def _user_dict(session: Any, u: User) -> dict[str, Any]:
    return {"name": u.name, "admin": u.is_admin, "groups": accounts.groups_of(session, u.name),
            "create_time": rfc3339(u.create_time)}


@router.post("/users", status_code=201, summary="Create a user in one or more groups (admin)",
             response_model=UserOut, response_model_exclude_unset=True)
def create_user(body: UserBody, session: SessionDep, caller: CallerDep) -> dict[str, Any]:
    _admin_only(caller, "create users")
    try:
        u = accounts.create_user(session, body.name, body.groups, is_admin=body.admin)
    except accounts.AccountError as exc:
        raise _problem(exc) from None
    session.commit()
    return _user_dict(session, u)


def _self_or_admin(caller: Caller, name: str) -> None:
    if not (caller.is_admin or caller.user == name):
        raise Problem(404, f"no user {name!r}", slug="user-not-found")


@router.get("/users/{name}", summary="A user (admin, or the user)",
            response_model=UserOut, response_model_exclude_unset=True)
def get_user(name: str, session: SessionDep, caller: CallerDep) -> dict[str, Any]:
    _self_or_admin(caller, name)
    u = session.get(User, name)
    if u is None:
        raise Problem(404, f"no user {name!r}", slug="user-not-found")
    return {**_user_dict(session, u), "keys": [_key_dict(k) for k in
                                               accounts.list_keys(session, name)]}


def _key_dict(k: accounts.KeyInfo) -> dict[str, Any]:
    now = utcnow()
    state = ("revoked" if k.revoked_at is not None else
             "expired" if k.expires_at is not None and k.expires_at <= now else "active")
    return {"prefix": k.prefix, "user": k.user, "state": state,
            "create_time": rfc3339(k.create_time), "expires_at": rfc3339(k.expires_at),
            "revoked_at": rfc3339(k.revoked_at)}


@router.post("/users/{name}/keys", status_code=201,
             summary="Issue an API key (admin, or the user for themself); shown once",
             response_model=NewKeyOut)
def issue_key(name: str, session: SessionDep, caller: CallerDep, settings: SettingsDep,
              body: Annotated[KeyBody | None, Body()] = None) -> dict[str, Any]:
    """A non-admin holds at most ``max_keys_per_user`` active keys (409 beyond); revoking
    the key that makes this request later revokes the new key too."""
    _self_or_admin(caller, name)
    body = body or KeyBody()
    expires = body.expires_at
    if body.expires_in_days is not None:
        expires = utcnow() + timedelta(days=body.expires_in_days)
    try:
        new = accounts.issue_key(session, name, expires_at=expires, issuer=caller,
                                 max_keys=settings.max_keys_per_user)
    except accounts.AccountError as exc:
        raise _problem(exc) from None
    session.commit()
    return {"key": new.key, "prefix": new.prefix, "user": name,
            "expires_at": rfc3339(new.expires_at),  # never after the issuing key's expiry
            "note": "the key is shown once: store it now; the prefix names it later"}


@router.delete("/keys/{prefix}", status_code=204, response_class=Response,
               summary="Revoke a key and the keys issued with it (admin, or the key's user)")
def revoke_key(prefix: str, session: SessionDep, caller: CallerDep) -> Response:
    if not accounts.revoke_key(session, prefix, caller):
        raise Problem(404, f"no key with prefix {prefix!r} that you may revoke",
                      slug="key-not-found")
    session.commit()
    return Response(status_code=204)
