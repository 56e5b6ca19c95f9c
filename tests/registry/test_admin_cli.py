"""``srflow admin`` account verbs against a registry on disk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cli.service import main
from core.registry.accounts import resolve_caller
from core.registry.db import session_factory


def test_admin_verbs_create_groups_users_and_keys(tmp_path: Path,
                                                  capsys: pytest.CaptureFixture[str],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SRFLOW_DATABASE_URL", raising=False)
    d = ["--data-dir", str(tmp_path)]
    assert main(["admin", "create-group", "lab-a", "--max-queued-jobs", "5", *d]) == 0
    assert main(["admin", "create-group", "lab-a", *d]) == 2  # exists
    assert main(["admin", "create-user", "ann", "--group", "lab-a", *d]) == 0
    assert main(["admin", "create-user", "bo", "--group", "nope", *d]) == 2
    capsys.readouterr()
    assert main(["admin", "issue-key", "ann", "--json", "--expires-days", "1", *d]) == 0
    new = json.loads(capsys.readouterr().out)
    url = f"sqlite:///{tmp_path.resolve() / 'registry.db'}"
    with session_factory(url)() as s:
        caller = resolve_caller(s, new["key"])
        assert caller is not None and caller.user == "ann" and caller.groups == ("lab-a",)
    assert main(["admin", "list-keys", "ann", *d]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [k["prefix"] for k in listed] == [new["prefix"]] and "key" not in listed[0]
    assert main(["admin", "revoke-key", new["prefix"], *d]) == 0
    assert main(["admin", "revoke-key", "00000000", *d]) == 2
    with session_factory(url)() as s:
        assert resolve_caller(s, new["key"]) is None
