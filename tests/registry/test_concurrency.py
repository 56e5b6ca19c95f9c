"""The job row's conditional updates under real concurrency, on SQLite and PostgreSQL:
threads with their own sessions (own connections) released at once by a barrier.

On PostgreSQL (READ COMMITTED) a second UPDATE waits for the first's row lock and then
re-evaluates its WHERE clause against the committed row, so the conditions, not luck,
decide who wins; on SQLite the writers are serialised by the database lock.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import TypeVar

import pytest
from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.registry import jobs
from core.registry.db import session_factory, upgrade
from core.registry.keys import Caller
from core.registry.models import Job, utcnow

ALICE = Caller("alice", ("lab-a",), False, "a")
N = 8
T = TypeVar("T")


@pytest.fixture
def url(db_url: str) -> str:
    upgrade(db_url)
    return db_url


def _together(url: str, n: int, work: Callable[[Session, int], T]) -> list[T]:
    """Run ``work(session, i)`` for i < n in n threads, all starting at once."""
    barrier = threading.Barrier(n)

    def run(i: int) -> T:
        with session_factory(url)() as s:
            s.connection()  # check the connection out before the start line
            barrier.wait(timeout=30)
            return work(s, i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def _make(url: str, n: int) -> None:
    with session_factory(url)() as s:
        for i in range(n):
            jobs.create_job(s, job_id=f"j{i}", kind="hmc", queue="cpu", caller=ALICE,
                            spec={"dim": 2, "L": 8, "kappa": 0.2, "lam": 0.01})


def test_concurrent_workers_claim_a_job_once(url: str) -> None:
    """Eight deliveries of one task (celery#5935) race for the job: exactly one runs it;
    then eight attempts race to finish a job one of them owns: only the owner's counts."""
    _make(url, 1)
    won = _together(url, N, lambda s, i: jobs.claim(s, "j0", f"t{i}", f"w{i}", 60))
    assert sum(won) == 1
    owner = won.index(True)

    def finish(s: Session, i: int) -> bool:
        ok = jobs.finish(s, "j0", f"t{i}", "succeeded", result={"by": i})
        s.commit()
        return ok

    assert _together(url, N, finish) == [i == owner for i in range(N)]
    with session_factory(url)() as s:
        job = jobs.get_job(s, "j0")
        assert job is not None and job.attempts == 1 and job.result == {"by": owner}


def test_concurrent_reapers_requeue_each_stale_job_once(url: str) -> None:
    """Two API processes' reapers and the live workers' heartbeats at the same moment:
    every stale job is re-queued exactly once; a job that beat is left running."""
    n_jobs = 12
    _make(url, n_jobs)
    with session_factory(url)() as s:
        for i in range(n_jobs):
            assert jobs.claim(s, f"j{i}", f"t{i}", "w", 60)
        s.execute(update(Job).values(heartbeat_at=utcnow() - timedelta(seconds=120)))
        s.commit()
    alive = {f"j{i}" for i in range(0, n_jobs, 3)}  # their workers beat during the reaping

    def act(s: Session, i: int) -> list[str]:
        if i < 2:  # reapers
            return [j.id for j in jobs.reap_stale(s, stale_after=60, max_attempts=3)]
        job_id = sorted(alive)[i - 2]
        return [f"beat:{job_id}"] if jobs.heartbeat(s, job_id, f"t{job_id[1:]}", None) else []

    out = _together(url, 2 + len(alive), act)
    requeued = out[0] + out[1]
    assert len(requeued) == len(set(requeued))  # no job twice
    beat = {b.removeprefix("beat:") for r in out[2:] for b in r}
    # a beat that lost to a reaper finds the job gone; one that won keeps it running
    assert set(requeued) | beat == {f"j{i}" for i in range(n_jobs)}
    assert not set(requeued) & beat
    with session_factory(url)() as s:
        states = {job_id: st for job_id, st in s.execute(select(Job.id, Job.status))}
    assert {j for j, st in states.items() if st == "queued"} == set(requeued)
    assert {j for j, st in states.items() if st == "running"} == beat


def test_concurrent_identical_idempotency_keys_make_one_job(url: str) -> None:
    """The unique (owner, key) constraint: eight identical submissions at once insert one
    row; the others get IntegrityError and find the winner (POST /v1/jobs replays it)."""

    def submit(s: Session, i: int) -> str:
        try:
            return jobs.create_job(s, job_id=f"k{i}", kind="hmc", queue="cpu", caller=ALICE,
                                   spec={}, idempotency_key="same", request_hash="h").id
        except IntegrityError:
            s.rollback()
            prior = jobs.find_idempotent(s, "alice", "same")
            assert prior is not None
            return prior.id

    ids = _together(url, N, submit)
    assert len(set(ids)) == 1
    with session_factory(url)() as s:
        assert s.scalar(select(func.count()).select_from(Job)) == 1


def test_api_processes_starting_together_bootstrap_one_admin_key(url: str) -> None:
    """Several API processes start with the same SRFLOW_ADMIN_KEY: each ensures it at once.
    The losers of the insert race (a unique-prefix violation, which failed a uvicorn
    worker's start-up on PostgreSQL) retry and find the winner's row; one row remains."""
    from core.registry.keys import bootstrap_admin_key
    from core.registry.models import ApiKey

    barrier = threading.Barrier(N)

    def start(_: int) -> bool:
        barrier.wait(timeout=30)
        return bootstrap_admin_key(url, "srf_7e57ab1e_the-bootstrap-admin-key")

    with ThreadPoolExecutor(max_workers=N) as pool:
        assert all(pool.map(start, range(N)))
    with session_factory(url)() as s:
        assert s.scalar(select(func.count()).select_from(ApiKey)) == 1
