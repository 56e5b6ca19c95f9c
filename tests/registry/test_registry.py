"""Registry: migration = models, conditional job updates, keys, store, references."""

from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.orm import Session

from core.registry import catalog, jobs
from core.registry.db import engine_for, session_factory, upgrade
from core.registry.keys import Caller, authenticate, create_key, ensure_key
from core.registry.models import ApiKey, Base, Job, utcnow
from core.registry.store import ArtifactStore

ADMIN = Caller("admin", ("default",), True, "x")
ALICE = Caller("alice", ("lab-a",), False, "a")
BOB = Caller("bob", ("lab-b",), False, "b")


@pytest.fixture
def db(db_url: str) -> str:
    """A migrated registry on SQLite and on PostgreSQL."""
    upgrade(db_url)
    return db_url


@pytest.fixture
def s(db: str) -> Session:
    with session_factory(db)() as session:
        yield session


def test_migration_creates_exactly_the_models_schema(db: str) -> None:
    upgrade(db)  # idempotent
    with engine_for(db).connect() as c:
        ctx = MigrationContext.configure(c, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []
        if db.startswith("sqlite"):
            assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert c.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30000


def _job(s: Session, caller: Caller = ALICE, vis: str = "group", job_id: str = "j1") -> Job:
    return jobs.create_job(s, job_id=job_id, kind="hmc", queue="cpu", caller=caller,
                           visibility=vis, spec={"dim": 2, "L": 8, "kappa": 0.2, "lam": 0.01})


def test_duplicate_delivery_leaves_one_result(s: Session) -> None:
    _job(s)
    assert jobs.claim(s, "j1", "t1", "w1", stale_after=60)
    assert not jobs.claim(s, "j1", "t2", "w2", stale_after=60)  # fresh heartbeat: no takeover
    assert jobs.finish(s, "j1", "t1", "succeeded", result={"n": 1})
    s.commit()
    assert not jobs.finish(s, "j1", "t1", "failed")  # no second finish
    assert not jobs.heartbeat(s, "j1", "t1", {"step": 9})
    s.expire_all()
    job = jobs.get_job(s, "j1")
    assert job is not None and job.status == "succeeded" and job.result == {"n": 1}


def test_stale_heartbeat_is_taken_over_and_old_attempt_loses(s: Session) -> None:
    _job(s)
    assert jobs.claim(s, "j1", "t1", "w1", stale_after=60)
    s.query(Job).update({"heartbeat_at": utcnow() - timedelta(seconds=120)})
    s.commit()
    assert jobs.claim(s, "j1", "t2", "w2", stale_after=60)
    assert not jobs.finish(s, "j1", "t1", "succeeded")
    assert jobs.finish(s, "j1", "t2", "succeeded")
    s.commit()
    s.expire_all()
    assert jobs.get_job(s, "j1").attempts == 2  # type: ignore[union-attr]


def test_reaper_requeues_then_fails_after_max_attempts(s: Session) -> None:
    _job(s)
    for attempt in (1, 2):
        assert jobs.claim(s, "j1", f"t{attempt}", "w", stale_after=60)
        s.query(Job).update({"heartbeat_at": utcnow() - timedelta(seconds=120)})
        s.commit()
        requeued = jobs.reap_stale(s, stale_after=60, max_attempts=2)
        assert [j.id for j in requeued] == (["j1"] if attempt == 1 else [])
    s.expire_all()
    job = jobs.get_job(s, "j1")
    assert job.status == "failed" and job.error_type == "WorkerLost"  # type: ignore[union-attr]


def test_a_beat_after_the_reapers_select_keeps_the_job(
    s: Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    _job(s)
    assert jobs.claim(s, "j1", "t1", "w", stale_after=60)
    s.query(Job).update({"heartbeat_at": utcnow() - timedelta(seconds=120)})
    s.commit()
    select_rows = s.scalars

    def select_then_beat(*args: object, **kwargs: object) -> list[Job]:
        found = list(select_rows(*args, **kwargs))  # type: ignore[arg-type]
        assert jobs.heartbeat(s, "j1", "t1", None)  # the worker is alive after all
        return found

    monkeypatch.setattr(s, "scalars", select_then_beat)
    assert jobs.reap_stale(s, stale_after=60, max_attempts=3) == []
    monkeypatch.undo()
    s.expire_all()
    assert jobs.get_job(s, "j1").status == "running"  # type: ignore[union-attr]


def test_an_attempt_requeues_only_a_job_it_owns(s: Session) -> None:
    _job(s)
    assert jobs.claim(s, "j1", "t1", "w", stale_after=60)
    assert jobs.requeue_owned(s, "j1", "t1")
    assert not jobs.requeue_owned(s, "j1", "t1")  # queued now: no longer this attempt's
    s.expire_all()
    job = jobs.get_job(s, "j1")
    assert job is not None and job.status == "queued" and job.attempt_token is None
    assert jobs.claim(s, "j1", "t2", "w", stale_after=60)  # the next attempt resumes it


def test_cancel_queued_is_immediate_and_running_is_flagged(s: Session) -> None:
    _job(s, job_id="q")
    _job(s, job_id="r")
    assert jobs.claim(s, "r", "t", "w", stale_after=60)
    jobs.request_cancel(s, "q")
    jobs.request_cancel(s, "r")
    s.expire_all()
    assert jobs.get_job(s, "q").status == "cancelled"  # type: ignore[union-attr]
    assert not jobs.claim(s, "q", "t2", "w", stale_after=60)  # a late delivery is skipped
    running = jobs.get_job(s, "r")
    assert running.status == "running" and jobs.cancel_requested(s, "r")  # type: ignore


def test_visibility_and_page_tokens(s: Session) -> None:
    for i in range(5):
        _job(s, ALICE, "group" if i % 2 else "private", job_id=f"a{i}")
    _job(s, BOB, "public", job_id="b0")
    assert jobs.get_job(s, "a0", BOB) is None and jobs.get_job(s, "b0", ALICE) is not None
    seen, token = [], None
    while True:
        page = jobs.list_jobs(s, ALICE, page_size=2, page_token=token)
        seen += [j.id for j in page.jobs]
        token = page.next_page_token
        if token is None:
            break
    assert sorted(seen) == ["a0", "a1", "a2", "a3", "a4", "b0"] and len(set(seen)) == 6
    with pytest.raises(ValueError, match="page_token"):
        jobs.decode_token("not-a-token")


def test_keys_are_hashed_and_checked(s: Session) -> None:
    new = create_key(s, user="alice", groups=["lab-a"])
    s.commit()
    row = s.query(ApiKey).one()
    assert row.key_hash == hashlib.sha256(new.key.encode()).hexdigest() and new.key not in str(
        [row.key_hash, row.prefix])
    assert authenticate(s, new.key) == Caller("alice", ("lab-a",), False, new.prefix)
    assert authenticate(s, new.key + "x") is None
    assert authenticate(s, new.key.replace(new.prefix, "00000000")) is None
    row.expires_at = utcnow() - timedelta(seconds=1)
    s.commit()
    assert authenticate(s, new.key) is None
    ensure_key(s, "srf_abcdef01_env-admin-key-for-tests")
    ensure_key(s, "srf_abcdef01_env-admin-key-for-tests")  # idempotent
    assert authenticate(s, "srf_abcdef01_env-admin-key-for-tests").is_admin  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="prefix"):
        ensure_key(s, "srf_abcdef01_another-env-admin-key")


def test_store_is_content_addressed_and_deduplicated(tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path / "a")
    src = tmp_path / "x.bin"
    src.write_bytes(b"phi4" * 1000)
    b1 = store.put_file(src)
    b2 = store.put_bytes(b"phi4" * 1000)
    digest = hashlib.sha256(b"phi4" * 1000).hexdigest()
    assert b1 == b2 and b1.sha256 == digest and b1.relpath == f"blobs/sha256/{digest[:2]}/{digest}"
    assert store.read_bytes(digest) == src.read_bytes()
    assert not (store.path(digest).stat().st_mode & 0o222)  # read-only
    assert list((tmp_path / "a" / "tmp").iterdir()) == []  # no temp files left
    with pytest.raises(ValueError):
        store.path("../../etc/passwd")


def test_model_versions_aliases_and_references(s: Session, tmp_path: Path) -> None:
    store = ArtifactStore(tmp_path)
    fields = {"dim": 2, "L": 8, "kappa": 0.25, "lam": 0.01, "method": "ir", "ess": 0.5}
    for i in (1, 2):
        job = _job(s, ALICE, job_id=f"t{i}")
        blob = store.put_bytes(f"weights {i}".encode())
        mv = catalog.register_model_version(s, name="ir-d2", job=job,
                                            files={"model.safetensors": blob},
                                            fields={**fields, "ess": 0.3 * i})
        assert mv.version == i
    m = catalog.get_model(s, "ir-d2", ALICE)
    assert m is not None and catalog.get_model(s, "ir-d2", BOB) is None
    catalog.set_alias(s, m, "best", catalog.get_version(s, "ir-d2", 1, ALICE))  # type: ignore
    assert catalog.resolve(s, "ir-d2@best", ALICE).version == 1  # type: ignore[union-attr]
    assert catalog.resolve(s, "ir-d2", ALICE).version == 2  # type: ignore[union-attr]
    assert catalog.resolve(s, "ir-d2/2", ALICE).version == 2  # type: ignore[union-attr]
    assert catalog.resolve(s, "ir-d2/3", ALICE) is None
    assert catalog.resolve(s, "ir-d2@best", BOB) is None
    catalog.set_alias(s, m, "best", catalog.get_version(s, "ir-d2", 2, ALICE))  # type: ignore
    assert catalog.resolve(s, "ir-d2@best", ALICE).version == 2  # type: ignore[union-attr]
    found = catalog.search_versions(s, ALICE, dim=2, kappa_min=0.2, kappa_max=0.3, min_ess=0.5)
    assert [v.version for v in found] == [2]
    assert catalog.default_model_name({"method": "ir", "dim": 2, "L": 8, "kappa": 0.25,
                                       "lam": 0.01}, "lab-a") == "lab-a.ir-d2-L8-k0.25-l0.01"
