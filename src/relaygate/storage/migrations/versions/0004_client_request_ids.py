"""client request ids: the id a client gave its request, kept beside relaygate's own

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


def upgrade() -> None:
    # Nullable columns: ADD COLUMN works in place on SQLite and PostgreSQL, and old rows keep NULL
    # (their ``request_id`` may be a client's id: relaygate took it as the key before this revision).
    op.add_column("usage_records", sa.Column("client_request_id", sa.String(128), nullable=True))
    # Partial: most calls send no id of their own, and an index entry per record would cost every
    # insert on the hot path for nothing.
    given = sa.text("client_request_id IS NOT NULL")
    op.create_index("ix_usage_client_request_id", "usage_records", ["client_request_id"],
                    sqlite_where=given, postgresql_where=given)
    op.add_column("tasks", sa.Column("client_request_id", sa.String(128), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("client_request_id")
    op.drop_index("ix_usage_client_request_id", "usage_records")
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("client_request_id")
