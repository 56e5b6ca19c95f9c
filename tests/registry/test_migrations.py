"""Migrations on SQLite and PostgreSQL: from empty, and from the previous revision with
data in it; 64-bit sizes, seeds and quotas survive a round trip."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.orm import Session

from core.registry import accounts, catalog, jobs
from core.registry.db import alembic_config, engine_for, session_factory, upgrade
from core.registry.keys import Caller
from core.registry.models import ApiKey, Base, Ensemble, Group, ModelVersion
from core.registry.store import Blob

ROOT = Path(__file__).resolve().parents[2]
ALICE = Caller("alice", ("lab-a",), False, "a")
BIG = 2**33 + 7  # > 2^31: PostgreSQL's INTEGER overflows, BIGINT holds it


def _upgrade_to(url: str, revision: str) -> None:
    cfg = alembic_config(url)
    with engine_for(url).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def _revision(url: str) -> str | None:
    with engine_for(url).connect() as c:
        return MigrationContext.configure(c).get_current_revision()


def _assert_schema_is_the_models(url: str) -> None:
    with engine_for(url).connect() as c:
        ctx = MigrationContext.configure(c, opts={"compare_type": True})
        assert compare_metadata(ctx, Base.metadata) == []


def _fill(s: Session, size: int, seed: int, tag: str) -> None:
    """A job, a model version and its ensemble, with the given byte size and seed."""
    accounts.ensure_group(s, f"lab-{tag}")
    job = jobs.create_job(s, job_id=f"j-{tag}", kind="train", queue="cpu", caller=ALICE,
                          spec={"dim": 2, "L": 8, "kappa": 0.2, "lam": 0.01})
    blob = Blob(sha256=tag.ljust(64, "0"), size=size, relpath=f"blobs/{tag}")
    mv = catalog.register_model_version(
        s, name=f"m-{tag}", job=job, files={"model.safetensors": blob},
        fields={"dim": 2, "L": 8, "kappa": 0.2, "lam": 0.01, "method": "ir", "seed": seed})
    sample = jobs.create_job(s, job_id=f"s-{tag}", kind="sample", queue="cpu", caller=ALICE,
                             spec={"model": f"m-{tag}/1"})
    ens = catalog.register_ensemble(s, job=sample, blob=blob, ensemble_id=f"e-{tag}",
                                    fields={"dim": 2, "L": 8, "kappa": 0.2, "lam": 0.01,
                                            "n": 10, "summary": {}})
    ens.model_version_id = mv.id
    s.commit()


def _fill_old(s: Session, size: int, seed: int, tag: str) -> None:
    """:func:`_fill`'s rows at an older revision, in SQL: the ORM classes are the newest
    schema and would write columns that revision has not got yet."""
    meta = sa.MetaData()
    meta.reflect(s.connection())
    now = datetime(2026, 1, 1)
    shared = {"owner": "alice", "group": "lab-a", "visibility": "group"}
    spec = {"dim": 2, "L": 8, "kappa": 0.2, "lam": 0.01}
    job = {"kind": "train", "queue": "cpu", "status": "succeeded", "progress": {},
           "create_time": now, "update_time": now, "attempts": 1, "cancel_requested": False,
           **shared}
    sha = tag.ljust(64, "0")
    rows = [
        ("groups", {"name": f"lab-{tag}", "create_time": now}),
        ("jobs", {**job, "id": f"j-{tag}", "spec": spec}),
        ("registered_models", {"name": f"m-{tag}", "create_time": now, "update_time": now,
                               **shared}),
        ("model_versions", {"model_id": None, "version": 1, "job_id": f"j-{tag}", **spec,
                            "action": "S", "method": "ir", "config": {}, "couplings": {},
                            "curve": [], "metrics": {}, "seed": seed, "sha256": sha,
                            "size": size, "files": {"model.safetensors": {"sha256": sha}},
                            "create_time": now, **shared}),
        ("jobs", {**job, "id": f"s-{tag}", "kind": "sample", "spec": {"model": f"m-{tag}/1"}}),
        ("ensembles", {"id": f"e-{tag}", "job_id": f"s-{tag}", "model_version_id": None,
                       "kind": "sample", **spec, "n": 10, "summary": {}, "sha256": sha,
                       "size": size, "blob_path": f"blobs/{tag}", "create_time": now,
                       **shared}),
    ]
    ids: dict[str, int] = {}
    for table, values in rows:
        if "model_id" in values:
            values["model_id"] = ids["registered_models"]
        if table == "ensembles":
            values["model_version_id"] = ids["model_versions"]
        t = meta.tables[table]
        result = s.execute(t.insert().values({k: v for k, v in values.items() if k in t.c}))
        if result.inserted_primary_key and isinstance(result.inserted_primary_key[0], int):
            ids[table] = int(result.inserted_primary_key[0])
    s.commit()


def test_migrations_from_empty_reach_the_models_schema(db_url: str) -> None:
    head = ScriptDirectory.from_config(alembic_config(db_url)).get_current_head()
    assert _revision(db_url) is None
    upgrade(db_url)
    assert _revision(db_url) == head
    _assert_schema_is_the_models(db_url)
    upgrade(db_url)  # idempotent: every API and worker process runs it at start-up
    assert _revision(db_url) == head


def test_upgrade_from_the_previous_revision_keeps_the_data(db_url: str) -> None:
    script = ScriptDirectory.from_config(alembic_config(db_url))
    head = script.get_revision(script.get_current_head())
    previous = head.down_revision
    assert isinstance(previous, str)
    _upgrade_to(db_url, previous)
    with session_factory(db_url)() as s:
        _fill_old(s, size=123_456, seed=42, tag="old")
    upgrade(db_url)
    assert _revision(db_url) == head.revision
    _assert_schema_is_the_models(db_url)
    with session_factory(db_url)() as s:
        ens = s.get(Ensemble, "e-old")
        assert ens is not None and ens.size == 123_456 and ens.model_version is not None
        assert ens.model_version.seed == 42 and ens.model_version.model.name == "m-old"
        assert catalog.resolve(s, "m-old/1", ALICE) is not None
        assert jobs.get_job(s, "j-old") is not None
        # what 0003 is for: > 2^31 bytes, seeds and quotas (INTEGER overflowed on PostgreSQL)
        _fill(s, size=BIG, seed=BIG, tag="big")
        accounts.create_group(s, "lab-huge", max_sample_volume=2**34)
        s.commit()
    with session_factory(db_url)() as s:
        assert s.get(Ensemble, "e-big").size == BIG  # type: ignore[union-attr]
        mv = catalog.resolve(s, "m-big/1", ALICE)
        assert isinstance(mv, ModelVersion) and mv.size == BIG and mv.seed == BIG
        assert s.get(Group, "lab-huge").max_sample_volume == 2**34  # type: ignore[union-attr]


def test_0004_puts_versions_in_their_models_group_and_keeps_keys_and_ensembles(
        db_url: str) -> None:
    """Rows written at 0003 survive 0004; a version a job stamped with another group than
    its model's (a member of two groups training into one group's model) moves into the
    model's group, so members of the other group no longer see it listed."""
    _upgrade_to(db_url, "0003")
    with session_factory(db_url)() as s:
        _fill_old(s, size=77, seed=7, tag="k")
        s.execute(sa.text("INSERT INTO api_keys (prefix, key_hash, \"user\", groups, is_admin, "
                          "create_time) VALUES ('p0004', :h, 'alice', '[\"lab-a\"]', :f, :t)"),
                  {"h": "0" * 64, "f": False, "t": datetime(2026, 1, 1)})
        s.execute(sa.text("UPDATE model_versions SET \"group\" = 'lab-b'"))
        s.commit()
    _upgrade_to(db_url, "0004")
    dave = Caller("dave", ("lab-b",), False, "d")
    with session_factory(db_url)() as s:
        mv = catalog.resolve(s, "m-k/1", ALICE)
        assert isinstance(mv, ModelVersion) and mv.group == mv.model.group == "lab-a"
        assert catalog.search_versions(s, dave) == []
        key = s.scalar(sa.select(ApiKey).where(ApiKey.prefix == "p0004"))
        assert key is not None and key.issued_by is None and key.user == "alice"
        ens = s.get(Ensemble, "e-k")
        assert ens is not None and ens.size == 77 and ens.redacted_sha256 is None


@pytest.mark.slow  # four interpreters start (about 7 s)
def test_processes_starting_together_all_migrate(db_url: str) -> None:
    """The API's and the workers' processes start at once and all run ``upgrade`` on the
    empty database: every one succeeds and the schema is created once (on PostgreSQL an
    advisory lock serialises them; the loser of a bare race failed on pg_type's unique
    index). Processes, not threads: alembic's context is process-global."""
    code = "import sys; from core.registry.db import upgrade; upgrade(sys.argv[1])"
    procs = [subprocess.Popen([sys.executable, "-c", code, db_url], cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
             for _ in range(4)]
    outs = [p.communicate(timeout=120)[0].decode(errors="replace") for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, "\n".join(outs)
    _assert_schema_is_the_models(db_url)
