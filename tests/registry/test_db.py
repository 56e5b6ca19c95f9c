"""core.registry.db: the SQLite engine never makes a request wait for a pooled connection."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

from sqlalchemy import text

from core.registry.db import make_engine


def test_sqlite_engine_hands_out_more_connections_than_the_default_pool(tmp_path: Path) -> None:
    """40 connections held at once (as many as the API's worker threads): SQLAlchemy's
    default 5 + 10 would block the 16th for 30 s and then raise TimeoutError."""
    engine = make_engine(f"sqlite:///{tmp_path / 'registry.db'}")
    with ExitStack() as stack:
        conns = [stack.enter_context(engine.connect()) for _ in range(40)]
        assert [c.execute(text("SELECT 1")).scalar() for c in conns] == [1] * 40
        assert engine.pool.checkedout() == 40  # type: ignore[attr-defined]
    assert engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    # and the pragmas still apply to the overflow connections
    with engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
