"""In the registry: who may add a version under a name, default names per group,
version visibility under a model's PATCH, keys that cannot outlive their issuer, the
bootstrap key staying revoked, and job error texts without server paths."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy.orm import Session

from core.registry import access, accounts, catalog
from core.registry import jobs as rows
from core.registry.db import session_factory, upgrade
from core.registry.keys import Caller, authenticate, ensure_key
from core.registry.models import utcnow
from core.registry.redact import redact
from core.registry.store import Blob

ALICE = Caller("alice", ("lab-a",), False, "a")
BOB = Caller("bob", ("lab-b",), False, "b")
CAROL = Caller("carol", ("lab-a",), False, "c")
SPEC = {"method": "ir", "dim": 2, "L": 8, "kappa": 0.25, "lam": 0.01}
FIELDS = {"dim": 2, "L": 8, "kappa": 0.25, "lam": 0.01, "method": "ir"}


@pytest.fixture
def s(db_url: str) -> Iterator[Session]:
    """On SQLite and PostgreSQL (tests/databases.py)."""
    upgrade(db_url)
    with session_factory(db_url)() as session:
        for g in ("lab-a", "lab-b"):
            accounts.create_group(session, g)
        session.commit()
        yield session


def _register(s: Session, caller: Caller, name: str, vis: str, job_id: str) -> Any:
    job = rows.create_job(s, job_id=job_id, kind="train", queue="cpu", caller=caller,
                          visibility=vis, spec=SPEC)
    return catalog.register_model_version(s, name=name, job=job, files={
        "model.safetensors": Blob(job_id.ljust(64, "0"), 10, "x")}, fields=FIELDS)


def test_a_job_adds_no_version_to_a_model_its_owner_may_not_curate(s: Session) -> None:
    _register(s, ALICE, "ir-d2-L8-k0.25-l0.01", "private", "a1")
    _register(s, ALICE, "shown", "public", "a2")
    with pytest.raises(catalog.NameRefused) as hidden:
        _register(s, BOB, "ir-d2-L8-k0.25-l0.01", "public", "b1")
    assert hidden.value.status == 404 and "taken" not in hidden.value.message
    with pytest.raises(catalog.NameRefused) as seen:
        _register(s, BOB, "shown", "public", "b2")
    assert seen.value.status == 403
    s.rollback()
    mv = catalog.resolve(s, "ir-d2-L8-k0.25-l0.01", ALICE)
    assert mv is not None and (mv.version, mv.owner) == (1, "alice")
    assert _register(s, CAROL, "shown", "group", "c1").version == 2  # a lab-a member may


def test_default_names_are_per_group_reserved_and_url_safe(s: Session) -> None:
    a, b = catalog.default_model_name(SPEC, "lab-a"), catalog.default_model_name(SPEC, "lab-b")
    assert (a, b) == ("lab-a.ir-d2-L8-k0.25-l0.01", "lab-b.ir-d2-L8-k0.25-l0.01")
    huge = catalog.default_model_name({**SPEC, "kappa": 1e20, "lam": 1e-5}, "lab-a")
    assert huge == "lab-a.ir-d2-L8-k1e20-l1e-05" and quote(huge, safe="") == huge
    with pytest.raises(catalog.NameRefused) as squat:  # bob cannot take lab-a's names first
        _register(s, BOB, a, "private", "b1")
    assert squat.value.status == 403 and "reserved" in squat.value.message
    s.rollback()
    assert _register(s, ALICE, a, "group", "a1").model.name == a
    assert _register(s, BOB, b, "group", "b2").model.group == "lab-b"


def test_the_default_name_avoids_another_members_private_model(s: Session) -> None:
    _register(s, ALICE, "lab-a.ir-d2-L8-k0.25-l0.01", "private", "a1")
    job = rows.create_job(s, job_id="c1", kind="train", queue="cpu", caller=CAROL,
                          visibility="group", spec=SPEC)
    assert catalog.default_name_for(s, job) == "lab-a.carol.ir-d2-L8-k0.25-l0.01"
    job = rows.create_job(s, job_id="a2", kind="train", queue="cpu", caller=ALICE,
                          visibility="group", spec=SPEC)
    assert catalog.default_name_for(s, job) == "lab-a.ir-d2-L8-k0.25-l0.01"


def test_a_model_patch_never_widens_another_members_version(s: Session) -> None:
    _register(s, ALICE, "m", "group", "a1")
    _register(s, CAROL, "m", "private", "c1")
    _register(s, CAROL, "m", "group", "c2")
    model = catalog.get_model(s, "m", ALICE)
    assert model is not None
    access.set_model_visibility(s, model, "public", ALICE)
    s.commit()
    assert [(v.owner, v.visibility) for v in model.versions] == [
        ("alice", "public"), ("carol", "private"), ("carol", "group")]
    assert catalog.resolve(s, "m/2", BOB) is None
    access.set_model_visibility(s, model, "private", ALICE)  # narrowing reaches everyone
    s.commit()
    assert [v.visibility for v in model.versions] == ["private", "private", "private"]
    with pytest.raises(ValueError, match="more visible than its model"):
        access.set_version_visibility(model.versions[2], "group")
    access.set_model_visibility(s, model, "public", ALICE)
    access.set_version_visibility(model.versions[2], "public")  # carol's own choice
    s.commit()
    assert catalog.resolve(s, "m/3", BOB) is not None and catalog.resolve(s, "m/2", BOB) is None


def test_a_new_version_is_never_more_visible_than_its_model(s: Session) -> None:
    _register(s, ALICE, "g", "group", "a1")
    assert _register(s, CAROL, "g", "public", "c1").visibility == "group"


def test_a_key_cannot_issue_a_key_that_outlives_it(s: Session) -> None:
    accounts.create_user(s, "dave", ["lab-a"])
    soon = utcnow() + timedelta(hours=1)
    own = accounts.issue_key(s, "dave", expires_at=soon)
    s.commit()
    issuer = accounts.resolve_caller(s, own.key)
    assert issuer is not None
    forever = accounts.issue_key(s, "dave", issuer=issuer)
    later = accounts.issue_key(s, "dave", expires_at=soon + timedelta(days=30), issuer=issuer)
    earlier = accounts.issue_key(s, "dave", expires_at=soon - timedelta(minutes=5),
                                 issuer=issuer)
    assert forever.expires_at == later.expires_at == soon
    assert earlier.expires_at == soon - timedelta(minutes=5)
    row = accounts.key_by_prefix(s, forever.prefix)
    assert row is not None and row.expires_at == soon  # stored, not only reported
    assert accounts.revoke_key(s, own.prefix, issuer)
    with pytest.raises(accounts.AccountError) as err:  # revoked while the request ran
        accounts.issue_key(s, "dave", issuer=issuer)
    assert err.value.status == 403
    assert accounts.issue_key(s, "dave").expires_at is None  # the server's CLI: no bound


def test_a_revoked_bootstrap_key_stays_revoked(s: Session) -> None:
    key = "srf_b0075742_bootstrap-admin"
    assert ensure_key(s, key)
    assert accounts.revoke_key(s, "b0075742", None)
    s.commit()
    assert not ensure_key(s, key)  # what every API start-up does with SRFLOW_ADMIN_KEY
    s.commit()
    assert authenticate(s, key) is None


@pytest.mark.parametrize(("raw", "shown"), [
    ("[Errno 2] No such file or directory: '/srv/srflow/work/j1/checkpoint.pt'",
     "[Errno 2] No such file or directory: '.../checkpoint.pt'"),
    ("cannot write /home/alice/data/work/j1/ (disk full)", "cannot write .../j1 (disk full)"),
    ("Error 111 connecting to redis://:s3cret@redis:6379/0", "Error 111 connecting to "
     "redis://***@redis:6379/0"),
    ("ESS/N = 0.1 < 1/(2d); see GET /v1/models/m", "ESS/N = 0.1 < 1/(2d); see GET /v1/models/m"),
])
def test_job_errors_lose_server_paths(s: Session, raw: str, shown: str) -> None:
    assert redact(raw) == shown
    rows.create_job(s, job_id="j1", kind="hmc", queue="cpu", caller=ALICE, spec={})
    assert rows.claim(s, "j1", "t1", "host", 60.0)
    assert rows.finish(s, "j1", "t1", "failed", error_type="OSError", error_message=raw)
    s.commit()
    job = rows.get_job(s, "j1")
    assert job is not None and job.error_message == shown
