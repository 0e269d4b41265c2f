"""Storage tests run on SQLite and on PostgreSQL. Each PostgreSQL test gets a schema of its own
(``search_path``), dropped afterwards, so runs never see each other's rows."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from relaygate.storage.engine import async_url, create_engine
from relaygate.storage.migrate import migrate
from tests.conftest import POSTGRES_URL, service_unavailable

BACKENDS = [pytest.param("sqlite", id="sqlite"), pytest.param("postgres", id="postgres", marks=pytest.mark.postgres)]


async def _pg_admin(sql: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture(params=BACKENDS)
async def blank_engine(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[AsyncEngine]:
    """An engine on an empty database of the parametrised backend."""
    if request.param == "sqlite":
        engine = create_engine(f"sqlite:///{tmp_path / 'storage.db'}")
        yield engine
        await engine.dispose()
        return
    schema = "rg_storage_" + uuid.uuid4().hex[:12]
    try:
        await _pg_admin(f"CREATE SCHEMA {schema}")
    except (OSError, asyncpg.PostgresError) as exc:
        service_unavailable("PostgreSQL", type(exc).__name__)
    engine = create_async_engine(async_url(POSTGRES_URL), connect_args={"server_settings": {"search_path": schema}})
    try:
        yield engine
    finally:
        await engine.dispose()
        await _pg_admin(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.fixture
async def engine(blank_engine: AsyncEngine) -> AsyncEngine:
    """The same, with the schema migrated to the newest revision."""
    await migrate(blank_engine)
    return blank_engine
