"""The databases the registry and service tests run on: SQLite always, PostgreSQL too.

``scripts/test`` starts a throw-away PostgreSQL server (``scripts/pg-test-server``) and
exports ``SRFLOW_TEST_POSTGRES_URL`` (a superuser on its ``postgres`` database) and
``SRFLOW_REQUIRE_POSTGRES=1``. Every PostgreSQL test gets a database of its own
(``CREATE DATABASE``, dropped afterwards). Without the URL a PostgreSQL variant *fails*
when ``CI`` or ``SRFLOW_REQUIRE_POSTGRES`` is set — a missing server must not pass as
green — and is skipped, with the reason, only on a developer's machine.

Fixtures (import them into a conftest): ``db_url`` (parametrised sqlite | postgresql),
``postgres_server`` (session: the admin URL; writes the server's version to the log).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, make_url
from sqlalchemy.pool import NullPool

from core.registry.db import engine_for

POSTGRES_ENV = "SRFLOW_TEST_POSTGRES_URL"
BACKENDS = ("sqlite", "postgresql")
_announced: list[str] = []


def postgres_admin_url() -> str:
    """The server's admin URL; fails (CI, SRFLOW_REQUIRE_POSTGRES) or skips without one."""
    url = os.environ.get(POSTGRES_ENV)
    if url:
        return url
    msg = (f"{POSTGRES_ENV} is not set: no PostgreSQL server for this variant. scripts/test "
           "starts one (scripts/pg-test-server); by hand: "
           'eval "$(scripts/pg-test-server $$)"')
    if os.environ.get("CI") or os.environ.get("SRFLOW_REQUIRE_POSTGRES"):
        pytest.fail(msg, pytrace=False)
    pytest.skip(msg)


def _admin_engine(url: str):  # type: ignore[no-untyped-def]
    return create_engine(url, isolation_level="AUTOCOMMIT", poolclass=NullPool)


@pytest.fixture(scope="session")
def postgres_server(request: pytest.FixtureRequest) -> str:
    """The admin URL of the test server, after writing its version to the test log."""
    url = postgres_admin_url()
    with _admin_engine(url).connect() as c:
        version = str(c.exec_driver_sql("SELECT version()").scalar())
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None and not _announced:
        with capture.global_and_fixture_disabled():  # past pytest's fd capture, to the log
            reporter.write_line(f"srflow tests on {version}")
        _announced.append(version)  # once per run (two conftests import this fixture)
    return url


def create_database(admin_url: str) -> str:
    """A new empty database on the server; its URL."""
    name = f"srflow_t_{uuid.uuid4().hex[:16]}"
    with _admin_engine(admin_url).connect() as c:
        c.exec_driver_sql(f'CREATE DATABASE "{name}"')
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def drop_database(admin_url: str, url: str) -> None:
    """Drop it, closing this process's pool and any connection another process left."""
    engine_for(url).dispose()
    name = make_url(url).database
    with _admin_engine(admin_url).connect() as c:
        c.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """An empty registry database (not migrated): a SQLite file, or a PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'r.db'}"
        return
    admin = request.getfixturevalue("postgres_server")
    url = create_database(admin)
    try:
        yield url
    finally:
        drop_database(admin, url)
