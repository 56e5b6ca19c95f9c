"""``srflow admin`` verbs for accounts, run on the server (they open the registry directly):
create-group, create-user, issue-key, revoke-key, list-keys. The same operations are
available over HTTP (``/v1/groups``, ``/v1/users``, ``/v1/users/{name}/keys``,
``DELETE /v1/keys/{prefix}``)."""

from __future__ import annotations

import argparse
import json
import os
import sys
from datetime import timedelta
from typing import Any

from core.settings import get_settings


def _session() -> Any:
    from core.registry.db import session_scope, upgrade

    settings = get_settings()
    upgrade(settings.db_url)
    return session_scope(settings.db_url)


def _data_dir(args: argparse.Namespace) -> None:
    if getattr(args, "data_dir", None):
        os.environ["SRFLOW_DATA_DIR"] = str(args.data_dir)


def _run(args: argparse.Namespace, fn: Any) -> int:
    from core.registry.accounts import AccountError

    _data_dir(args)
    try:
        with _session() as s:
            out = fn(s)
    except AccountError as exc:
        print(f"srflow admin: {exc}", file=sys.stderr)
        return 2
    if out is not None:
        print(json.dumps(out) if getattr(args, "json", False) or not isinstance(out, str)
              else out)
    return 0


def cmd_create_group(args: argparse.Namespace) -> int:
    from core.registry import accounts

    def go(s: Any) -> dict[str, Any]:
        g = accounts.create_group(s, args.name, max_queued_jobs=args.max_queued_jobs,
                                  max_sample_volume=args.max_sample_volume)
        return {"group": g.name, "max_queued_jobs": g.max_queued_jobs,
                "max_sample_volume": g.max_sample_volume}

    return _run(args, go)


def cmd_create_user(args: argparse.Namespace) -> int:
    from core.registry import accounts

    def go(s: Any) -> dict[str, Any]:
        u = accounts.create_user(s, args.name, args.group, is_admin=args.admin)
        return {"user": u.name, "groups": accounts.groups_of(s, u.name), "admin": u.is_admin}

    return _run(args, go)


def cmd_issue_key(args: argparse.Namespace) -> int:
    from core.registry import accounts
    from core.registry.models import utcnow

    def go(s: Any) -> Any:
        expires = utcnow() + timedelta(days=args.expires_days) if args.expires_days else None
        new = accounts.issue_key(s, args.user, expires_at=expires)
        if args.json:
            return {"key": new.key, "prefix": new.prefix, "user": args.user,
                    "expires_at": expires.isoformat() if expires else None}
        print(f"srflow: key {new.prefix} for {args.user} (shown once, keep it)", file=sys.stderr)
        return new.key

    return _run(args, go)


def cmd_revoke_key(args: argparse.Namespace) -> int:
    from core.registry import accounts

    def go(s: Any) -> str:
        if not accounts.revoke_key(s, args.prefix, None):
            raise accounts.AccountError("prefix", f"no key with prefix {args.prefix!r}",
                                        status=404)
        return f"revoked {args.prefix}"

    return _run(args, go)


def cmd_list_keys(args: argparse.Namespace) -> int:
    from core.registry import accounts

    def go(s: Any) -> list[dict[str, Any]]:
        return [{"prefix": k.prefix, "user": k.user, "create_time": k.create_time.isoformat(),
                 "expires_at": k.expires_at.isoformat() if k.expires_at else None,
                 "revoked": k.revoked_at is not None} for k in accounts.list_keys(s, args.user)]

    return _run(args, go)


def add_admin_verbs(admin: Any, common: argparse.ArgumentParser) -> None:
    """Add the account verbs to the ``srflow admin`` subparsers."""
    p = admin.add_parser("create-group", parents=[common], help="create a group")
    p.add_argument("name")
    p.add_argument("--max-queued-jobs", type=int, default=None)
    p.add_argument("--max-sample-volume", type=int, default=None, help="n_samples × L^d")
    p.set_defaults(handler=cmd_create_group)

    p = admin.add_parser("create-user", parents=[common], help="create a user in groups")
    p.add_argument("name")
    p.add_argument("--group", action="append", required=True, help="repeatable; first owns")
    p.add_argument("--admin", action="store_true")
    p.set_defaults(handler=cmd_create_user)

    p = admin.add_parser("issue-key", parents=[common], help="a new key for a user (shown once)")
    p.add_argument("user")
    p.add_argument("--expires-days", type=float, default=None)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_issue_key)

    p = admin.add_parser("revoke-key", parents=[common], help="revoke a key by its prefix")
    p.add_argument("prefix")
    p.set_defaults(handler=cmd_revoke_key)

    p = admin.add_parser("list-keys", parents=[common], help="a user's keys (prefixes only)")
    p.add_argument("user")
    p.set_defaults(handler=cmd_list_keys)
