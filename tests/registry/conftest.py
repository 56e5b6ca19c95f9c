"""Registry tests run on SQLite and on PostgreSQL (``db_url``, see tests/databases.py)."""

from tests.databases import db_url, postgres_server

__all__ = ["db_url", "postgres_server"]
