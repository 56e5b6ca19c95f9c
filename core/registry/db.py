"""Engine, sessions and schema migration for the registry (SQLite by default, any URL).

SQLite is shared by the API process and the worker processes, so every connection runs
in WAL mode with a busy timeout (readers never block the writer; a writer waits for
the lock instead of failing). Its pool keeps 5 connections but never makes a request wait
for one (unlimited overflow): a SQLite connection is only a file handle, and SQLAlchemy's
bounded default (5 + 10, then a 30 s wait) made clients of tests/service/test_load.py time
out on a busy machine ("QueuePool limit of size 5 overflow 10 reached").
PostgreSQL works by URL, e.g. ``SRFLOW_DATABASE_URL=postgresql+psycopg://user:pw@host/srflow``;
there the server caps connections, so each process's pool is bounded by settings
(``db_pool_size`` + ``db_max_overflow``; docs/deployment.md has the arithmetic for several
processes) and a request that waits ``db_pool_timeout_s`` for a connection gets SQLAlchemy's
``TimeoutError``, which the API answers with 503 + Retry-After.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from core.settings import get_settings

MIGRATIONS = Path(__file__).with_name("migrations")
BUSY_TIMEOUT_MS = 30_000
MIGRATION_LOCK_ID = 0x5F5F_0A11  # pg_advisory_xact_lock key: "srflow migrations"


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite files get their directory, WAL and a busy timeout."""
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False},
            max_overflow=-1,
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    pool = get_settings()
    return create_engine(url, pool_pre_ping=True, pool_size=pool.db_pool_size,
                         max_overflow=pool.db_max_overflow, pool_timeout=pool.db_pool_timeout_s)


@lru_cache(maxsize=8)
def engine_for(url: str) -> Engine:
    """One engine per URL per process (connection pools are per process)."""
    return make_engine(url)


def session_factory(url: str) -> sessionmaker[Session]:
    return sessionmaker(engine_for(url), expire_on_commit=False)


@contextmanager
def session_scope(url: str) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str) -> None:
    """Apply all migrations (idempotent; run at API and worker start-up).

    The API and the workers start together and all upgrade: on a SQLite file an exclusive
    lock file serialises them (else two processes both see an empty database and both
    create the tables); on PostgreSQL a transaction-scoped advisory lock does (a bare race
    failed on pg_type's unique index); elsewhere a process that loses the race retries
    once, after the winner's transaction committed."""
    from alembic import command
    from sqlalchemy.exc import OperationalError, ProgrammingError

    engine = engine_for(url)
    cfg = alembic_config(url)

    def run() -> None:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":  # held until this transaction ends
                conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_ID})")
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")

    path = url.split("///", 1)[-1] if url.startswith("sqlite") else ""
    if path and path != ":memory:":
        import fcntl

        lock = Path(path).with_name(Path(path).name + ".migrate.lock")
        lock.parent.mkdir(parents=True, exist_ok=True)
        with lock.open("a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            run()
        return
    try:
        run()
    except (OperationalError, ProgrammingError):
        run()
