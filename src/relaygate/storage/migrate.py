"""Apply Alembic migrations to the configured database (at start, and by ``relaygate migrate``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).with_name("migrations")


def _upgrade(connection: Any) -> None:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to the newest revision; safe to run on every start and from several workers
    one after another (the master process runs it before forking workers)."""
    async with engine.begin() as conn:
        await conn.run_sync(_upgrade)
