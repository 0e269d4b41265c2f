"""Named queries. Every SQL statement of the project lives here (or in the recorder, for the hot write).

Functions take an ``AsyncConnection`` so that callers decide the transaction.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from relaygate.storage.tables import api_keys, channels, meta, prices, usage_records

CONFIG_VERSION = "config_version"
ADMIN_KEY_HASH = "admin_key_hash"

Row = dict[str, Any]


def now_s() -> int:
    return int(time.time())


def _rows(result: sa.CursorResult[Any]) -> list[Row]:
    return [dict(r._mapping) for r in result]


# --- meta ---------------------------------------------------------------------------------------

async def get_meta(conn: AsyncConnection, name: str) -> str | None:
    result = await conn.execute(sa.select(meta.c.value).where(meta.c.name == name))
    return result.scalar_one_or_none()


async def set_meta(conn: AsyncConnection, name: str, value: str) -> None:
    updated = await conn.execute(sa.update(meta).where(meta.c.name == name).values(value=value))
    if updated.rowcount == 0:
        await conn.execute(sa.insert(meta).values(name=name, value=value))


async def config_version(conn: AsyncConnection) -> int:
    value = await get_meta(conn, CONFIG_VERSION)
    return int(value) if value else 0


async def bump_config_version(conn: AsyncConnection) -> int:
    """Every instance polls this number and reloads its snapshot when it moves."""
    updated = await conn.execute(
        sa.update(meta).where(meta.c.name == CONFIG_VERSION)
        .values(value=sa.cast(sa.cast(meta.c.value, sa.BigInteger) + 1, sa.Text))
    )
    if updated.rowcount == 0:
        await conn.execute(sa.insert(meta).values(name=CONFIG_VERSION, value="1"))
    return await config_version(conn)


# --- keys ---------------------------------------------------------------------------------------

async def insert_key(conn: AsyncConnection, values: Mapping[str, Any]) -> int:
    stamp = now_s()
    row = {"enabled": True, "used_nano": 0, "source": "api", "created_at": stamp, "updated_at": stamp,
           "ip_allow": [], "models": ["*"], **values}
    result = await conn.execute(sa.insert(api_keys).values(**row).returning(api_keys.c.id))
    return int(result.scalar_one())


async def update_key(conn: AsyncConnection, key_id: int, values: Mapping[str, Any]) -> bool:
    result = await conn.execute(
        sa.update(api_keys).where(api_keys.c.id == key_id).values(**values, updated_at=now_s())
    )
    return result.rowcount > 0


async def get_key(conn: AsyncConnection, key_id: int) -> Row | None:
    result = await conn.execute(sa.select(api_keys).where(api_keys.c.id == key_id))
    row = result.first()
    return dict(row._mapping) if row else None


async def find_key_by_name(conn: AsyncConnection, name: str) -> Row | None:
    result = await conn.execute(sa.select(api_keys).where(api_keys.c.name == name).order_by(api_keys.c.id))
    row = result.first()
    return dict(row._mapping) if row else None


async def find_key_by_hash(conn: AsyncConnection, key_hash: str) -> Row | None:
    result = await conn.execute(sa.select(api_keys).where(api_keys.c.key_hash == key_hash))
    row = result.first()
    return dict(row._mapping) if row else None


async def list_keys(conn: AsyncConnection) -> list[Row]:
    return _rows(await conn.execute(sa.select(api_keys).order_by(api_keys.c.id)))


async def find_keys_by_name(conn: AsyncConnection, name: str) -> list[Row]:
    return _rows(await conn.execute(sa.select(api_keys).where(api_keys.c.name == name).order_by(api_keys.c.id)))


async def key_balances(conn: AsyncConnection) -> dict[int, int]:
    result = await conn.execute(sa.select(api_keys.c.id, api_keys.c.used_nano))
    return {int(r.id): int(r.used_nano) for r in result}


# --- channels -----------------------------------------------------------------------------------

async def insert_channel(conn: AsyncConnection, values: Mapping[str, Any]) -> int:
    stamp = now_s()
    row = {"enabled": True, "priority": 0, "weight": 1, "source": "api", "options": {}, "model_map": {},
           "models": [], "created_at": stamp, "updated_at": stamp, **values}
    result = await conn.execute(sa.insert(channels).values(**row).returning(channels.c.id))
    return int(result.scalar_one())


async def update_channel(conn: AsyncConnection, channel_id: int, values: Mapping[str, Any]) -> bool:
    result = await conn.execute(
        sa.update(channels).where(channels.c.id == channel_id).values(**values, updated_at=now_s())
    )
    return result.rowcount > 0


async def get_channel(conn: AsyncConnection, channel_id: int) -> Row | None:
    result = await conn.execute(sa.select(channels).where(channels.c.id == channel_id))
    row = result.first()
    return dict(row._mapping) if row else None


async def find_channel_by_name(conn: AsyncConnection, name: str) -> Row | None:
    result = await conn.execute(sa.select(channels).where(channels.c.name == name))
    row = result.first()
    return dict(row._mapping) if row else None


async def list_channels(conn: AsyncConnection) -> list[Row]:
    return _rows(await conn.execute(sa.select(channels).order_by(channels.c.id)))


# --- prices -------------------------------------------------------------------------------------

async def upsert_price(conn: AsyncConnection, pattern: str, values: Mapping[str, Any], source: str) -> None:
    row = {**values, "source": source, "updated_at": now_s()}
    updated = await conn.execute(sa.update(prices).where(prices.c.pattern == pattern).values(**row))
    if updated.rowcount == 0:
        await conn.execute(sa.insert(prices).values(pattern=pattern, **row))


async def delete_price(conn: AsyncConnection, pattern: str) -> bool:
    result = await conn.execute(sa.delete(prices).where(prices.c.pattern == pattern))
    return result.rowcount > 0


async def get_price(conn: AsyncConnection, pattern: str) -> Row | None:
    result = await conn.execute(sa.select(prices).where(prices.c.pattern == pattern))
    row = result.first()
    return dict(row._mapping) if row else None


async def list_prices(conn: AsyncConnection) -> list[Row]:
    return _rows(await conn.execute(sa.select(prices).order_by(prices.c.pattern)))


# --- usage --------------------------------------------------------------------------------------

USAGE_FILTERS = ("key_id", "model", "channel_id", "end_reason")


def _usage_conditions(filters: Mapping[str, Any]) -> list[sa.ColumnElement[bool]]:
    conds: list[sa.ColumnElement[bool]] = []
    for name in USAGE_FILTERS:
        if filters.get(name) is not None:
            conds.append(usage_records.c[name] == filters[name])
    if filters.get("since_ms") is not None:
        conds.append(usage_records.c.created_at_ms >= filters["since_ms"])
    if filters.get("until_ms") is not None:
        conds.append(usage_records.c.created_at_ms < filters["until_ms"])
    for name in ("request_id", "client_request_id"):  # relaygate's id (unique), the client's (not unique)
        if filters.get(name) is not None:
            conds.append(usage_records.c[name] == filters[name])
    return conds


async def list_usage(conn: AsyncConnection, filters: Mapping[str, Any], *, limit: int,
                     before_id: int | None = None) -> list[Row]:
    """Newest first; page with ``before_id`` (the smallest id of the previous page)."""
    conds = _usage_conditions(filters)
    if before_id is not None:
        conds.append(usage_records.c.id < before_id)
    query = sa.select(usage_records).where(*conds).order_by(usage_records.c.id.desc()).limit(limit)
    return _rows(await conn.execute(query))


async def usage_by_request_id(conn: AsyncConnection, request_id: str) -> Row | None:
    result = await conn.execute(sa.select(usage_records).where(usage_records.c.request_id == request_id))
    row = result.first()
    return dict(row._mapping) if row else None


async def usage_summary(conn: AsyncConnection, filters: Mapping[str, Any],
                        group_by: Sequence[str]) -> list[Row]:
    """Totals grouped by any of ``key_id``, ``model``, ``channel_id`` and ``day`` (UTC)."""
    u = usage_records.c
    # ``//`` is integer division everywhere; ``/`` is true division in SQLAlchemy 2, and PostgreSQL's cast
    # of that NUMERIC to BIGINT rounds, which put every afternoon into the next day.
    day = (u.created_at_ms // 86_400_000).label("day")
    columns: dict[str, sa.ColumnElement[Any]] = {
        "key_id": u.key_id, "model": u.model, "channel_id": u.channel_id, "day": day,
    }
    keys = [columns[g] for g in group_by]
    query = sa.select(
        *keys,
        sa.func.count().label("requests"),
        sa.func.coalesce(sa.func.sum(u.input_tokens), 0).label("input_tokens"),
        sa.func.coalesce(sa.func.sum(u.output_tokens), 0).label("output_tokens"),
        sa.func.coalesce(sa.func.sum(u.cached_input_tokens), 0).label("cached_input_tokens"),
        sa.func.coalesce(sa.func.sum(u.cost_nano), 0).label("cost_nano"),
    ).where(*_usage_conditions(filters))
    if keys:
        query = query.group_by(*keys).order_by(*keys)
    return _rows(await conn.execute(query))
