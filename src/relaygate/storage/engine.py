"""Database engines. SQLite (default, one machine) through aiosqlite; PostgreSQL through asyncpg."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from relaygate.errors import ConfigError


def async_url(url: str) -> str:
    """Map the user-facing URL (``sqlite:///path``, ``postgresql://...``) to its async driver."""
    if url.startswith("sqlite:///") or url == "sqlite://":
        return "sqlite+aiosqlite://" + url[len("sqlite:"):].removeprefix("//")
    for prefix in ("postgresql://", "postgres://", "postgresql+asyncpg://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix):]
    raise ConfigError("database must be a sqlite:/// or postgresql:// URL")


def is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def create_engine(url: str, *, sqlite_synchronous: str = "normal") -> AsyncEngine:
    target = async_url(url)
    if is_sqlite(url):
        engine = create_async_engine(target, connect_args={"timeout": 30})
        _tune_sqlite(engine, sqlite_synchronous)
        return engine
    return create_async_engine(target, pool_size=10, max_overflow=10, pool_pre_ping=True)


def _tune_sqlite(engine: AsyncEngine, synchronous: str) -> None:
    # WAL lets readers (admin queries) run beside the group-commit writer; NORMAL in WAL mode keeps
    # every commit across a process crash and fsyncs at checkpoints (``full`` fsyncs every commit).
    @sa.event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={synchronous.upper()}")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()
