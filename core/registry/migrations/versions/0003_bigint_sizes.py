"""64-bit byte counts, seeds and sample-volume quotas (PostgreSQL's INTEGER is 32-bit)

On SQLite every INTEGER is 64-bit, so 0001/0002's ``Integer`` columns held anything; on
PostgreSQL an ensemble of more than 2 GiB (e.g. 10^6 configurations at L = 64), a seed
≥ 2^31 or a group's ``max_sample_volume`` of 2^34 (the server default) failed with
"integer out of range" at registration.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

WIDENED = (
    ("ensembles", "size", False),
    ("model_versions", "size", False),
    ("model_versions", "seed", True),
    ("groups", "max_sample_volume", True),
)


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        return  # already 64-bit
    for table, column, nullable in WIDENED:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, existing_type=sa.Integer(), type_=sa.BigInteger(),
                               existing_nullable=nullable)


def downgrade() -> None:
    for table, column, nullable in WIDENED:
        with op.batch_alter_table(table) as batch:
            batch.alter_column(column, existing_type=sa.BigInteger(), type_=sa.Integer(),
                               existing_nullable=nullable)
