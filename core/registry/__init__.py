"""The registry shared by the API and the workers (SQLAlchemy 2, no torch).

- ``models``: tables (jobs, registered models → versions → aliases, ensembles, API keys)
- ``db``: engines (SQLite WAL + busy timeout by default, PostgreSQL by URL), alembic upgrade
- ``jobs``: job state machine as conditional updates; ``catalog``: models and ensembles
- ``store``: content-addressed artifact blobs; ``keys``: hashed API keys
"""
