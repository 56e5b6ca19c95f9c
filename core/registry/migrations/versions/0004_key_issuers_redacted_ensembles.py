"""key issuers, redacted ensemble copies, versions in their model's group

- ``api_keys.issued_by``: the key that asked for this one, so revoking a key revokes the
  keys it issued (keys from before stay unlinked: NULL);
- ``ensembles.redacted_sha256`` / ``redacted_size``: the HDF5 file without its source
  model's name, served to readers who may not see that model (made when first needed);
- every model version takes its model's group: versions a job registered were stamped
  with the job's group, so a user in two groups could put a version of one group's model
  into the other group, whose members then saw it listed (the model itself answered 404).
  Nothing else changes; the versions' owners keep seeing them.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Int64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("issued_by", sa.Integer(), nullable=True))
        batch.create_foreign_key(batch.f("fk_api_keys_issued_by_api_keys"), "api_keys",
                                 ["issued_by"], ["id"])
        batch.create_index(batch.f("ix_api_keys_issued_by"), ["issued_by"], unique=False)
    with op.batch_alter_table("ensembles") as batch:
        batch.add_column(sa.Column("redacted_sha256", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("redacted_size", Int64, nullable=True))
    versions = sa.table("model_versions", sa.column("model_id", sa.Integer()),
                        sa.column("group", sa.String()))
    models = sa.table("registered_models", sa.column("id", sa.Integer()),
                      sa.column("group", sa.String()))
    model_group = (sa.select(models.c.group).where(models.c.id == versions.c.model_id)
                   .scalar_subquery())
    op.execute(versions.update().where(versions.c.group != model_group)
               .values(group=model_group))


def downgrade() -> None:
    with op.batch_alter_table("ensembles") as batch:
        batch.drop_column("redacted_size")
        batch.drop_column("redacted_sha256")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_index(batch.f("ix_api_keys_issued_by"))
        batch.drop_constraint(batch.f("fk_api_keys_issued_by_api_keys"), type_="foreignkey")
        batch.drop_column("issued_by")
