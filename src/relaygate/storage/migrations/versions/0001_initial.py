"""initial schema: meta, api_keys, channels, prices, usage_records

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "meta",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("value", sa.Text, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("key_hint", sa.String(32), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("ip_allow", sa.JSON, nullable=False),
        sa.Column("quota_nano", sa.BigInteger, nullable=True),
        sa.Column("used_nano", sa.BigInteger, nullable=False),
        sa.Column("expires_at", sa.BigInteger, nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "channels",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("base_url", sa.Text, nullable=False),
        sa.Column("api_key_enc", sa.Text, nullable=False),
        sa.Column("api_key_hint", sa.String(32), nullable=False),
        sa.Column("models", sa.JSON, nullable=False),
        sa.Column("model_map", sa.JSON, nullable=False),
        sa.Column("priority", sa.Integer, nullable=False),
        sa.Column("weight", sa.Integer, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("options", sa.JSON, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "prices",
        sa.Column("pattern", sa.String(200), primary_key=True),
        sa.Column("input_nano", sa.BigInteger, nullable=False),
        sa.Column("output_nano", sa.BigInteger, nullable=False),
        sa.Column("cached_input_nano", sa.BigInteger, nullable=True),
        sa.Column("cache_write_nano", sa.BigInteger, nullable=True),
        sa.Column("per_call_nano", sa.BigInteger, nullable=True),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("updated_at", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "usage_records",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True,
                  autoincrement=True),
        sa.Column("request_id", sa.String(128), nullable=False, unique=True),
        sa.Column("created_at_ms", sa.BigInteger, nullable=False),
        sa.Column("key_id", sa.Integer, nullable=True),
        sa.Column("key_name", sa.String(200), nullable=True),
        sa.Column("surface", sa.String(32), nullable=False),
        sa.Column("model", sa.String(200), nullable=False),
        sa.Column("upstream_model", sa.String(200), nullable=True),
        sa.Column("channel_id", sa.Integer, nullable=True),
        sa.Column("channel_name", sa.String(200), nullable=True),
        sa.Column("stream", sa.Boolean, nullable=False),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("end_reason", sa.String(32), nullable=False),
        sa.Column("input_tokens", sa.Integer, nullable=False),
        sa.Column("output_tokens", sa.Integer, nullable=False),
        sa.Column("cached_input_tokens", sa.Integer, nullable=False),
        sa.Column("cache_write_tokens", sa.Integer, nullable=False),
        sa.Column("reasoning_tokens", sa.Integer, nullable=False),
        sa.Column("usage_source", sa.String(16), nullable=False),
        sa.Column("cost_nano", sa.BigInteger, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("latency_ms", sa.Integer, nullable=False),
        sa.Column("first_byte_ms", sa.Integer, nullable=True),
        sa.Column("client_ip", sa.String(64), nullable=True),
        sa.Column("error_code", sa.String(64), nullable=True),
    )
    op.create_index("ix_usage_key_time", "usage_records", ["key_id", "created_at_ms"])
    op.create_index("ix_usage_model_time", "usage_records", ["model", "created_at_ms"])
    op.create_index("ix_usage_time", "usage_records", ["created_at_ms"])


def downgrade() -> None:
    op.drop_table("usage_records")
    op.drop_table("prices")
    op.drop_table("channels")
    op.drop_table("api_keys")
    op.drop_table("meta")
