"""images and async tasks: per-image prices, image usage columns, the task tables

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("prices") as batch:
        batch.add_column(sa.Column("input_image_nano", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("per_image", sa.JSON, nullable=True))
    with op.batch_alter_table("usage_records") as batch:
        batch.add_column(sa.Column("image_input_tokens", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("images", sa.Integer, nullable=False, server_default="0"))
    op.create_table(
        "tasks",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("request_id", sa.String(128), nullable=False, unique=True),
        sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("key_name", sa.String(200), nullable=True),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("progress", sa.String(8), nullable=False),
        sa.Column("fail_reason", sa.Text, nullable=True),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("result", sa.JSON, nullable=True),
        sa.Column("channel_id", sa.Integer, nullable=True),
        sa.Column("upstream_task_id", sa.String(128), nullable=True),
        sa.Column("client_ip", sa.String(64), nullable=True),
        sa.Column("webhook", sa.Text, nullable=True),
        sa.Column("webhook_state", sa.String(16), nullable=True),
        sa.Column("webhook_attempts", sa.Integer, nullable=False),
        sa.Column("hold_nano", sa.BigInteger, nullable=False),
        sa.Column("cost_nano", sa.BigInteger, nullable=False),
        sa.Column("runs", sa.Integer, nullable=False),
        sa.Column("due_ms", sa.BigInteger, nullable=True),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until_ms", sa.BigInteger, nullable=False),
        sa.Column("submit_ms", sa.BigInteger, nullable=False),
        sa.Column("start_ms", sa.BigInteger, nullable=True),
        sa.Column("finish_ms", sa.BigInteger, nullable=True),
        sa.Column("deadline_ms", sa.BigInteger, nullable=False),
        sa.Column("updated_ms", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_tasks_due", "tasks", ["due_ms"])
    op.create_index("ix_tasks_key_time", "tasks", ["key_id", "submit_ms"])
    op.create_table(
        "task_files",
        sa.Column("task_id", sa.String(64), primary_key=True),
        sa.Column("seq", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("filename", sa.String(255), nullable=False),
        sa.Column("content_type", sa.String(128), nullable=False),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("task_files")
    op.drop_table("tasks")
    with op.batch_alter_table("usage_records") as batch:
        batch.drop_column("images")
        batch.drop_column("image_input_tokens")
    with op.batch_alter_table("prices") as batch:
        batch.drop_column("per_image")
        batch.drop_column("input_image_nano")
