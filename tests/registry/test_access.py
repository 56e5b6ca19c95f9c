"""Accounts, keys, visibility rules, warm-start choice, idempotency records and quotas."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy.orm import Session

from core.jobs.specs import HmcSpec, TrainSpec
from core.registry import access, accounts, catalog, quotas
from core.registry import idempotency as idem
from core.registry import jobs as rows
from core.registry.db import session_factory, upgrade
from core.registry.keys import Caller, authenticate
from core.registry.models import utcnow
from core.registry.store import Blob
from core.registry.warmstart import NoParent, arch_of_config, arch_of_spec, nearest_version

ALICE = Caller("alice", ("lab-a",), False, "a")
BOB = Caller("bob", ("lab-b",), False, "b")
CAROL = Caller("carol", ("lab-a", "lab-b"), False, "c")


@pytest.fixture
def s(db_url: str) -> Session:
    upgrade(db_url)
    with session_factory(db_url)() as session:
        yield session


def test_users_groups_and_key_lifecycle(s: Session) -> None:
    for g in ("lab-a", "lab-b"):
        accounts.create_group(s, g)
    with pytest.raises(accounts.AccountError) as err:
        accounts.create_group(s, "lab-a")
    assert err.value.status == 409
    with pytest.raises(accounts.AccountError, match="no group 'nope'"):
        accounts.create_user(s, "x", ["nope"])
    accounts.create_user(s, "carol", ["lab-b", "lab-a"])
    new = accounts.issue_key(s, "carol", expires_at=utcnow() + timedelta(hours=1))
    s.commit()
    caller = accounts.resolve_caller(s, new.key)
    assert caller is not None and caller.groups == ("lab-b", "lab-a") and caller.group == "lab-b"
    row = accounts.key_by_prefix(s, new.prefix)
    assert row is not None and new.key not in (row.key_hash, row.prefix)
    assert not accounts.revoke_key(s, new.prefix, BOB)  # not bob's key
    assert accounts.revoke_key(s, new.prefix, Caller("carol", (), False, ""))
    s.commit()
    assert accounts.resolve_caller(s, new.key) is None
    assert [k.revoked_at is not None for k in accounts.list_keys(s, "carol")] == [True]
    old = accounts.issue_key(s, "carol", expires_at=utcnow() + timedelta(seconds=1))
    row = accounts.key_by_prefix(s, old.prefix)
    assert row is not None
    row.expires_at = utcnow() - timedelta(seconds=1)
    s.commit()
    assert authenticate(s, old.key) is None


def _job(s: Session, caller: Caller, vis: str, job_id: str) -> Any:
    return rows.create_job(s, job_id=job_id, kind="hmc", queue="cpu", caller=caller,
                           visibility=vis, spec={"dim": 2, "L": 8, "kappa": 0.2, "lam": 0.01})


def test_visibility_and_rights(s: Session) -> None:
    for vis in ("private", "group", "public"):
        _job(s, ALICE, vis, vis)
    seen = {c.user: {j.id for j in rows.list_jobs(s, c).jobs} for c in (ALICE, BOB, CAROL)}
    assert seen == {"alice": {"private", "group", "public"}, "bob": {"public"},
                    "carol": {"group", "public"}}
    pub = rows.get_job(s, "public", BOB)
    assert pub is not None and access.can_see(pub, BOB)
    assert not access.may_modify(pub, BOB) and not access.may_curate(pub, BOB)
    assert access.may_curate(pub, CAROL) and not access.may_modify(pub, CAROL)
    assert access.may_modify(pub, ALICE)


def _version(s: Session, name: str, caller: Caller, vis: str, *, kappa: float, lam: float,
             L: int = 8, ess: float = 0.5, n_freq: int = 11, job: str) -> Any:
    j = rows.create_job(s, job_id=job, kind="train", queue="cpu", caller=caller,
                        visibility=vis, spec={})
    config = {"kind": "super_resolving", "method": "ir", "dim": 2, "coarse_L": 4,
              "fine_L": L, "kernel_size": 3, "n_freq": n_freq, "n_time": 10,
              "bond_freq": 20, "bond_time": 20, "dtype": "float32"}
    blob = Blob("a" * 64, 10, "x")
    mv = catalog.register_model_version(
        s, name=name, job=j, files={"model.safetensors": blob},
        fields={"dim": 2, "L": L, "kappa": kappa, "lam": lam, "method": "ir",
                "config": config, "ess": ess})
    s.commit()
    return mv


def test_nearest_picks_the_closest_visible_same_architecture_version(s: Session) -> None:
    _version(s, "far", ALICE, "group", kappa=0.20, lam=0.01, job="j1")
    _version(s, "near", ALICE, "group", kappa=0.26, lam=0.012, L=8, job="j2")
    _version(s, "nearer-private", BOB, "private", kappa=0.25, lam=0.010, job="j3")
    _version(s, "nearer-other-arch", ALICE, "group", kappa=0.25, lam=0.01, n_freq=5, job="j4")
    _version(s, "nearer-bigger-L", ALICE, "group", kappa=0.25, lam=0.01, L=32, job="j5")
    spec = TrainSpec(method="ir", dim=2, L=16, coarse_L=4, kappa=0.25, lam=0.01,
                     kernel_size=3).model_dump(mode="json")
    assert arch_of_spec(spec)["n_freq"] == 11 and arch_of_spec(spec)["kernel_size"] == 3
    mv = nearest_version(s, {**spec, "init_from": "nearest"}, ALICE)
    assert (mv.model.name, mv.version) == ("near", 1)
    assert nearest_version(s, spec, BOB).model.name == "nearer-private"  # bob's own
    with pytest.raises(NoParent, match="no model version you can see"):
        nearest_version(s, {**spec, "dim": 3}, ALICE)


def test_nearest_with_the_kernel_unset_accepts_any_kernel(s: Session) -> None:
    """An unset kernel_size matches every kernel (the child takes its parent's); a named
    one only its own — the default for the spec (5 here) is not forced on old parents."""
    _version(s, "k3", ALICE, "group", kappa=0.25, lam=0.01, job="j1")  # kernel 3
    spec = {"method": "ir", "dim": 2, "L": 16, "coarse_L": 4, "kappa": 0.25, "lam": 0.01}
    assert arch_of_spec(spec)["kernel_size"] == 5
    assert nearest_version(s, spec, ALICE).model.name == "k3"
    with pytest.raises(NoParent, match="kernel_size=5"):
        nearest_version(s, {**spec, "kernel_size": 5}, ALICE)


def test_an_alias_does_not_reveal_a_version_the_caller_cannot_see(s: Session) -> None:
    _version(s, "m", ALICE, "group", kappa=0.2, lam=0.01, job="j1")
    v2 = _version(s, "m", ALICE, "private", kappa=0.2, lam=0.01, job="j2")
    catalog.set_alias(s, v2.model, "best", v2)
    s.commit()
    assert catalog.resolve(s, "m@best", ALICE).version == 2  # type: ignore[union-attr]
    assert catalog.resolve(s, "m/2", CAROL) is None
    assert catalog.resolve(s, "m@best", CAROL) is None
    assert catalog.resolve(s, "m", CAROL).version == 1  # type: ignore[union-attr]


def test_idempotency_states(s: Session) -> None:
    assert isinstance(idem.begin(s, "u", "x", "k", None), idem.Started)
    assert isinstance(idem.begin(s, "u", "x", "k", "h1"), idem.InProgress)
    assert isinstance(idem.begin(s, "v", "x", "k", "h1"), idem.Started)  # per user
    idem.set_hash(s, "u", "x", "k", "h1")
    idem.complete(s, "u", "x", "k", 201, {"id": 7})
    s.commit()
    again = idem.begin(s, "u", "x", "k", "h1")
    assert again == idem.Replay(201, {"id": 7}, "h1")
    assert isinstance(idem.begin(s, "u", "x", "k", "h2"), idem.Mismatch)
    idem.release(s, "v", "x", "k")
    assert isinstance(idem.begin(s, "v", "x", "k", "h3"), idem.Started)


def test_quotas_name_the_limit(s: Session) -> None:
    settings = SimpleNamespace(max_queued_jobs=2, max_sample_volume=10_000)
    accounts.create_group(s, "lab-a", max_sample_volume=1_000_000)
    small = SimpleNamespace(kind="hmc", spec=HmcSpec(L=8, kappa=0.2, lam=0.01, n_samples=100))
    big = SimpleNamespace(kind="hmc", spec=HmcSpec(L=8, kappa=0.2, lam=0.01, n_samples=20_000))
    quotas.check(s, settings, ALICE, small)
    with pytest.raises(quotas.QuotaExceeded, match="max_sample_volume=1000000") as err:
        quotas.check(s, settings, ALICE, big)  # 20000·64 > the group's own limit
    assert err.value.status == 422
    with pytest.raises(quotas.QuotaExceeded, match="max_sample_volume=10000"):
        quotas.check(s, settings, BOB, SimpleNamespace(kind="hmc", spec=HmcSpec(
            L=8, kappa=0.2, lam=0.01, n_samples=200)))  # lab-b: the server default
    _job(s, ALICE, "group", "q1")
    _job(s, ALICE, "group", "q2")
    with pytest.raises(quotas.QuotaExceeded, match="max_queued_jobs=2") as err:
        quotas.check(s, settings, ALICE, small)
    assert err.value.status == 429
    quotas.check(s, settings, BOB, SimpleNamespace(kind="train", spec=None))  # other group


@pytest.mark.parametrize("extra", [{"method": "ir"}, {"method": "uv"}, {"method": "baseline"},
                                   {"method": "ir", "kernel_size": 3, "n_freq": 5,
                                    "dtype": "float64"},
                                   {"method": "ir", "coarse_L": 2},
                                   {"method": "uv", "field": "hollow", "base": "conditional"}])
def test_warm_start_architecture_matches_the_training_config(extra: dict[str, Any]) -> None:
    from core.jobs.train_plan import train_plan
    from core.physics.training.plan import flow_config

    spec = TrainSpec(dim=2, L=16, kappa=0.25, lam=0.01, **extra)
    cfg = flow_config(train_plan(spec)).model_dump(mode="json")
    assert arch_of_spec(spec.model_dump(mode="json")) == arch_of_config(cfg)
