"""task polling: named leases, indexes for open tasks per channel and for upstream ids

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


def upgrade() -> None:
    op.create_index("ix_tasks_open", "tasks", ["kind", "channel_id", "finish_ms"])
    op.create_index("ix_tasks_upstream", "tasks", ["channel_id", "upstream_task_id"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(128), primary_key=True),
        sa.Column("owner", sa.String(64), nullable=False),
        sa.Column("until_ms", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_index("ix_tasks_upstream", "tasks")
    op.drop_index("ix_tasks_open", "tasks")
