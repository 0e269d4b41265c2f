"""Table definitions (SQLAlchemy Core). Migrations in ``migrations/versions`` must match them."""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

meta = sa.Table(
    "meta",
    metadata,
    sa.Column("name", sa.String(64), primary_key=True),
    sa.Column("value", sa.Text, nullable=False),
)

api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("key_hint", sa.String(32), nullable=False),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("models", sa.JSON, nullable=False),
    sa.Column("ip_allow", sa.JSON, nullable=False),
    sa.Column("quota_nano", sa.BigInteger, nullable=True),
    sa.Column("used_nano", sa.BigInteger, nullable=False, default=0),
    sa.Column("expires_at", sa.BigInteger, nullable=True),
    sa.Column("source", sa.String(16), nullable=False, default="api"),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

channels = sa.Table(
    "channels",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False, unique=True),
    sa.Column("type", sa.String(32), nullable=False),
    sa.Column("base_url", sa.Text, nullable=False),
    sa.Column("api_key_enc", sa.Text, nullable=False),
    sa.Column("api_key_hint", sa.String(32), nullable=False),
    sa.Column("models", sa.JSON, nullable=False),
    sa.Column("model_map", sa.JSON, nullable=False),
    sa.Column("priority", sa.Integer, nullable=False, default=0),
    sa.Column("weight", sa.Integer, nullable=False, default=1),
    sa.Column("enabled", sa.Boolean, nullable=False, default=True),
    sa.Column("options", sa.JSON, nullable=False),
    sa.Column("source", sa.String(16), nullable=False, default="api"),
    sa.Column("created_at", sa.BigInteger, nullable=False),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

prices = sa.Table(
    "prices",
    metadata,
    sa.Column("pattern", sa.String(200), primary_key=True),
    sa.Column("input_nano", sa.BigInteger, nullable=False, default=0),
    sa.Column("output_nano", sa.BigInteger, nullable=False, default=0),
    sa.Column("cached_input_nano", sa.BigInteger, nullable=True),
    sa.Column("cache_write_nano", sa.BigInteger, nullable=True),
    sa.Column("per_call_nano", sa.BigInteger, nullable=True),
    sa.Column("input_image_nano", sa.BigInteger, nullable=True),
    sa.Column("per_image", sa.JSON, nullable=True),  # {"default": nano, "1024x1792": nano, "1024x1024/hd": nano}
    sa.Column("source", sa.String(16), nullable=False, default="api"),
    sa.Column("updated_at", sa.BigInteger, nullable=False),
)

usage_records = sa.Table(
    "usage_records",
    metadata,
    sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
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
    sa.Column("input_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("output_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("cached_input_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("cache_write_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("reasoning_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("usage_source", sa.String(16), nullable=False),
    sa.Column("cost_nano", sa.BigInteger, nullable=False, default=0),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("latency_ms", sa.Integer, nullable=False, default=0),
    sa.Column("first_byte_ms", sa.Integer, nullable=True),
    sa.Column("client_ip", sa.String(64), nullable=True),
    sa.Column("error_code", sa.String(64), nullable=True),
    sa.Column("image_input_tokens", sa.Integer, nullable=False, default=0),
    sa.Column("images", sa.Integer, nullable=False, default=0),
    # ``request_id`` is relaygate's own (unique by construction); this is the one the client sent, if any.
    sa.Column("client_request_id", sa.String(128), nullable=True),
    sa.Index("ix_usage_key_time", "key_id", "created_at_ms"),
    sa.Index("ix_usage_model_time", "model", "created_at_ms"),
    sa.Index("ix_usage_time", "created_at_ms"),
    sa.Index("ix_usage_client_request_id", "client_request_id",  # partial: most calls send no id of their own
             sqlite_where=sa.text("client_request_id IS NOT NULL"),
             postgresql_where=sa.text("client_request_id IS NOT NULL")),
)

# Async work (images ``?async=true``, Midjourney): one row per task, shared by every instance.
# ``due_ms`` says when the task next needs a process (NULL: nothing left to do); a process takes it by
# moving ``lease_until_ms`` forward with a conditional update, and renews the lease while it works.
tasks = sa.Table(
    "tasks",
    metadata,
    sa.Column("id", sa.String(64), primary_key=True),
    sa.Column("kind", sa.String(16), nullable=False),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("request_id", sa.String(128), nullable=False, unique=True),
    sa.Column("key_id", sa.Integer, nullable=False),
    sa.Column("key_name", sa.String(200), nullable=True),
    sa.Column("model", sa.String(200), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("progress", sa.String(8), nullable=False, default="0%"),
    sa.Column("fail_reason", sa.Text, nullable=True),
    sa.Column("request", sa.JSON, nullable=False),
    sa.Column("result", sa.JSON, nullable=True),
    sa.Column("channel_id", sa.Integer, nullable=True),
    sa.Column("upstream_task_id", sa.String(128), nullable=True),
    sa.Column("client_ip", sa.String(64), nullable=True),
    sa.Column("webhook", sa.Text, nullable=True),
    sa.Column("webhook_state", sa.String(16), nullable=True),  # pending | delivered | failed
    sa.Column("webhook_attempts", sa.Integer, nullable=False, default=0),
    sa.Column("hold_nano", sa.BigInteger, nullable=False, default=0),
    sa.Column("cost_nano", sa.BigInteger, nullable=False, default=0),
    sa.Column("runs", sa.Integer, nullable=False, default=0),
    sa.Column("due_ms", sa.BigInteger, nullable=True),
    sa.Column("lease_owner", sa.String(64), nullable=True),
    sa.Column("lease_until_ms", sa.BigInteger, nullable=False, default=0),
    sa.Column("submit_ms", sa.BigInteger, nullable=False),
    sa.Column("start_ms", sa.BigInteger, nullable=True),
    sa.Column("finish_ms", sa.BigInteger, nullable=True),
    sa.Column("deadline_ms", sa.BigInteger, nullable=False),
    sa.Column("updated_ms", sa.BigInteger, nullable=False),
    sa.Column("client_request_id", sa.String(128), nullable=True),
    sa.Index("ix_tasks_due", "due_ms"),
    sa.Index("ix_tasks_key_time", "key_id", "submit_ms"),
    sa.Index("ix_tasks_open", "kind", "channel_id", "finish_ms"),
    sa.Index("ix_tasks_upstream", "channel_id", "upstream_task_id"),
)

# Named leases for work that belongs to no single task (polling one Midjourney channel): whoever holds
# a name until ``until_ms`` does that work; the others skip it.
leases = sa.Table(
    "leases",
    metadata,
    sa.Column("name", sa.String(128), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("until_ms", sa.BigInteger, nullable=False),
)

# The files of an async multipart task (image edits), kept until the task has run.
task_files = sa.Table(
    "task_files",
    metadata,
    sa.Column("task_id", sa.String(64), primary_key=True),
    sa.Column("seq", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(32), nullable=False),
    sa.Column("filename", sa.String(255), nullable=False),
    sa.Column("content_type", sa.String(128), nullable=False),
    sa.Column("data", sa.LargeBinary, nullable=False),
)
