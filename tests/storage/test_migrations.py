"""Migrations build exactly the schema that ``storage/tables.py`` describes, and are safe to re-run."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.ext.asyncio import AsyncEngine

from relaygate.storage import queries
from relaygate.storage.migrate import MIGRATIONS, migrate
from relaygate.storage.tables import metadata, usage_records


def _head() -> str:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    head = ScriptDirectory.from_config(config).get_current_head()
    assert head is not None
    return head


def _diff(conn: Any) -> list[Any]:
    return list(compare_metadata(MigrationContext.configure(conn), metadata))


async def test_migrate_creates_the_tables_of_the_metadata(blank_engine: AsyncEngine) -> None:
    await migrate(blank_engine)
    async with blank_engine.connect() as conn:
        names = await conn.run_sync(lambda c: set(sa.inspect(c).get_table_names()))
        version = (await conn.execute(sa.text("SELECT version_num FROM alembic_version"))).scalar_one()
        diff = await conn.run_sync(_diff)
    assert set(metadata.tables) <= names
    assert version == _head()
    assert diff == [], f"the migrations and storage/tables.py disagree: {diff}"


async def test_migrate_twice_keeps_the_data(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        await queries.set_meta(conn, "probe", "kept")
        key_id = await queries.insert_key(conn, {"name": "k", "key_hash": "h" * 64, "key_hint": "sk-…"})
    await migrate(engine)
    async with engine.connect() as conn:
        assert await queries.get_meta(conn, "probe") == "kept"
        key = await queries.get_key(conn, key_id)
    assert key is not None and key["name"] == "k"


async def test_the_unique_request_id_is_enforced(engine: AsyncEngine) -> None:
    row = {"request_id": "r1", "created_at_ms": 1, "surface": "openai.chat", "model": "m", "stream": False,
           "status": 200, "end_reason": "done", "usage_source": "none"}
    async with engine.begin() as conn:
        await conn.execute(sa.insert(usage_records), [row])
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(usage_records), [row])
    except sa.exc.IntegrityError:
        pass
    else:
        raise AssertionError("a second record with the same request id was stored")
