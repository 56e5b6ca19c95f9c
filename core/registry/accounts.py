"""Users, groups, memberships and the life of API keys (issue; DESIGN.md section 8).

A key belongs to a user; the user's groups come from ``memberships`` (ordered: the first
group owns the objects the user creates). Keys made before a user row existed (the
bootstrap ``SRFLOW_ADMIN_KEY``, ``srflow admin create-key --user``) keep the groups stored
on the key. A key is shown once; afterwards only its prefix names it. Keys expire at
``expires_at`` and stop working at once when revoked. A key issued through the API never
outlives the key that asked for it (:func:`issue_key`), and revoking a key revokes the
keys it issued (:func:`revoke_key`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from core.registry.keys import Caller, NewKey, authenticate, create_key
from core.registry.models import ApiKey, Group, Membership, User, utcnow

NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9._-]{0,127}$")


class AccountError(ValueError):
    """A request that cannot be done as asked; ``field`` names the culprit."""

    def __init__(self, field: str, message: str, *, status: int = 422) -> None:
        super().__init__(message)
        self.field, self.status = field, status


@dataclass(frozen=True)
class KeyInfo:
    prefix: str
    user: str
    create_time: datetime
    expires_at: datetime | None
    revoked_at: datetime | None


def _check_name(field: str, name: str) -> None:
    if not NAME_RE.match(name):
        raise AccountError(field, f"{field}={name!r}: start with a letter; letters, digits, "
                           "'.', '_' or '-' (at most 128)")


def create_group(session: Session, name: str, *, max_queued_jobs: int | None = None,
                 max_sample_volume: int | None = None) -> Group:
    _check_name("name", name)
    same = session.scalar(select(Group.name).where(func.lower(Group.name) == name.lower()))
    if same is not None:  # group names prefix model names, read ignoring case (naming.py)
        raise AccountError("name", f"group {same!r} already exists" if same == name else
                           f"group {same!r} exists; names differing only in letter case "
                           "would share its reserved model names: choose another name",
                           status=409)
    group = Group(name=name, max_queued_jobs=max_queued_jobs,
                  max_sample_volume=max_sample_volume, create_time=utcnow())
    session.add(group)
    session.flush()
    return group


def ensure_group(session: Session, name: str) -> Group:
    return session.get(Group, name) or create_group(session, name)


def create_user(session: Session, name: str, groups: list[str], *,
                is_admin: bool = False) -> User:
    """A user in ``groups`` (each must exist; the first owns the user's new objects)."""
    _check_name("name", name)
    if session.get(User, name) is not None:
        raise AccountError("name", f"user {name!r} already exists", status=409)
    if not groups:
        raise AccountError("groups", "a user needs at least one group")
    missing = [g for g in groups if session.get(Group, g) is None]
    if missing:
        raise AccountError("groups", f"no group {missing[0]!r}: create it first "
                           "(POST /v1/groups or 'srflow admin create-group')")
    user = User(name=name, is_admin=is_admin, create_time=utcnow())
    session.add(user)
    session.flush()
    for i, g in enumerate(dict.fromkeys(groups)):
        session.add(Membership(user=name, group=g, position=i))
    session.flush()
    return user


def groups_of(session: Session, user: str) -> list[str]:
    rows = session.scalars(
        select(Membership.group).where(Membership.user == user).order_by(Membership.position)
    )
    return list(rows)


def issue_key(session: Session, user: str, *, expires_at: datetime | None = None,
              issuer: Caller | None = None, max_keys: int | None = None) -> NewKey:
    """A new key for an existing user (shown once by the caller).

    ``issuer``: the caller whose key makes the request (None: the CLI on the server). A
    key never outlives the key that issued it: the new key expires at the issuer's
    ``expires_at`` at the latest (also when no expiry or a later one is asked for), and a
    key that is revoked or expired by now issues nothing (403). The new key records its
    issuer's key (``issued_by``): revoking that one revokes this one (:func:`revoke_key`).
    ``max_keys``: a non-admin issuer gets 409 once ``user`` holds that many active keys
    (rate limits are per user, so more keys gain nothing; the cap bounds what one user
    can make the server store and check)."""
    row = session.get(User, user)
    if row is None:
        raise AccountError("name", f"no user {user!r}", status=404)
    if expires_at is not None and expires_at <= utcnow():
        raise AccountError("expires_at", "expires_at is in the past")
    issued_by = None
    if issuer is not None:
        key = _issuing_key(session, issuer)
        issued_by = key.id
        if key.expires_at is not None and (expires_at is None or expires_at > key.expires_at):
            expires_at = key.expires_at
        if max_keys is not None and not issuer.is_admin:
            active = active_keys(session, user)
            if active >= max_keys:
                raise AccountError("name", f"user {user!r} holds {active} active keys, this "
                                   f"server's limit max_keys_per_user={max_keys}: revoke one "
                                   "with DELETE /v1/keys/{prefix} first", status=409)
    return create_key(session, user=user, groups=groups_of(session, user),
                      is_admin=row.is_admin, expires_at=expires_at, issued_by=issued_by)


def _issuing_key(session: Session, issuer: Caller) -> ApiKey:
    """The issuer's key row; AccountError if it no longer works."""
    key = key_by_prefix(session, issuer.prefix) if issuer.prefix else None
    now = utcnow()
    if key is None or key.revoked_at is not None or (
            key.expires_at is not None and key.expires_at <= now):
        raise AccountError("key", "the key making this request is revoked or expired: it "
                           "cannot issue keys", status=403)
    return key


def active_keys(session: Session, user: str) -> int:
    """How many of ``user``'s keys work now (neither revoked nor expired)."""
    n = session.scalar(select(func.count()).select_from(ApiKey).where(
        ApiKey.user == user, ApiKey.revoked_at.is_(None),
        or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > utcnow())))
    return int(n or 0)


def list_keys(session: Session, user: str) -> list[KeyInfo]:
    rows = session.scalars(select(ApiKey).where(ApiKey.user == user).order_by(ApiKey.id))
    return [KeyInfo(r.prefix, r.user, r.create_time, r.expires_at, r.revoked_at) for r in rows]


def key_by_prefix(session: Session, prefix: str) -> ApiKey | None:
    return session.scalar(select(ApiKey).where(ApiKey.prefix == prefix))


def revoke_key(session: Session, prefix: str, caller: Caller | None) -> bool:
    """Revoke the key ``prefix`` and every key issued with it, transitively (a key minted
    with a stolen key must not outlive the stolen key's revocation); the caller must be an
    admin or the key's user (None: the CLI on the server). False if there is no such key
    the caller may revoke."""
    row = key_by_prefix(session, prefix)
    if row is None or (caller is not None and not caller.is_admin and row.user != caller.user):
        return False
    now = utcnow()
    seen = {row.id}
    todo = [row]
    while todo:
        key = todo.pop()
        if key.revoked_at is None:
            key.revoked_at = now
        for child in session.scalars(select(ApiKey).where(ApiKey.issued_by == key.id)):
            if child.id not in seen:
                seen.add(child.id)
                todo.append(child)
    session.flush()
    return True


def caller_for_user(session: Session, user: str, *, fallback_group: str) -> Caller:
    """The rights ``user`` has now, without a key in hand (a worker acting for a job's
    owner): groups from memberships (else ``fallback_group``, for users without a row),
    admin if the user row says so or the user holds an active admin key."""
    row = session.get(User, user)
    groups = tuple(groups_of(session, user)) or (fallback_group,)
    now = utcnow()
    admin_key = session.scalar(
        select(ApiKey.id).where(ApiKey.user == user, ApiKey.is_admin.is_(True),
                                ApiKey.revoked_at.is_(None),
                                or_(ApiKey.expires_at.is_(None), ApiKey.expires_at > now))
        .limit(1))
    return Caller(user, groups, bool(row is not None and row.is_admin) or admin_key is not None,
                  "")


def resolve_caller(session: Session, key: str) -> Caller | None:
    """:func:`core.registry.keys.authenticate`, with groups and admin from the user row
    when the user exists (membership changes apply to existing keys at once)."""
    caller = authenticate(session, key)
    if caller is None:
        return None
    user = session.get(User, caller.user)
    if user is None:
        return caller
    groups = groups_of(session, caller.user)
    return Caller(caller.user, tuple(groups) or caller.groups,
                  caller.is_admin or user.is_admin, caller.prefix)
