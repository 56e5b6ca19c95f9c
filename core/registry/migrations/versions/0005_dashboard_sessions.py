"""dashboard sessions in the database (shared by API processes, kept across restarts)

``ui_sessions``: one row per signed-in browser — the SHA-256 of the cookie's random id,
the API key sealed under a key derived from that id, who signed in, and when the session
ends; deleted with its key (``ON DELETE CASCADE``).

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ui_sessions",
        sa.Column("id_hash", sa.String(length=64), nullable=False),
        sa.Column("key_id", sa.Integer(), nullable=False),
        sa.Column("sealed_key", sa.Text(), nullable=False),
        sa.Column("user", sa.String(length=128), nullable=False),
        sa.Column("groups", sa.JSON(), nullable=False),
        sa.Column("is_admin", sa.Boolean(), nullable=False),
        sa.Column("create_time", sa.DateTime(), nullable=False),
        sa.Column("seen_time", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["key_id"], ["api_keys.id"],
                                name=op.f("fk_ui_sessions_key_id_api_keys"), ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id_hash", name=op.f("pk_ui_sessions")),
    )
    op.create_index(op.f("ix_ui_sessions_key_id"), "ui_sessions", ["key_id"], unique=False)
    op.create_index(op.f("ix_ui_sessions_expires_at"), "ui_sessions", ["expires_at"],
                    unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_ui_sessions_expires_at"), table_name="ui_sessions")
    op.drop_index(op.f("ix_ui_sessions_key_id"), table_name="ui_sessions")
    op.drop_table("ui_sessions")
