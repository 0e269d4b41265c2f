"""Operator operations shared by the admin API and the CLI: keys, channels, prices, usage.

Every change runs in one transaction that also bumps the configuration version, so every instance
reloads its snapshot (this process at once through ``on_change``, the others through the version
poll). Client keys are returned once, on creation; upstream keys are stored encrypted and never
returned (only a hint). Money leaves as integer nano-dollars and as exact decimal USD strings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relaygate.admin import inputs
from relaygate.admin.probe import probe_channel
from relaygate.auth.keys import generate_key, hash_key, key_hint
from relaygate.billing.money import nano_to_usd
from relaygate.billing.pricing import price_from_mapping
from relaygate.errors import GatewayError, NotFound
from relaygate.infra.snapshot import channel_from_row, price_from_row, price_row
from relaygate.providers.base import Transport
from relaygate.providers.registry import offline, options_problem
from relaygate.routing.health import HealthBook
from relaygate.storage import queries
from relaygate.storage.crypto import SecretBox

Row = dict[str, Any]
OnChange = Callable[[], Awaitable[object]]

_EPOCH = date(1970, 1, 1)
_SUMS = ("requests", "input_tokens", "output_tokens", "cached_input_tokens", "cost_nano")


class Conflict(GatewayError):
    status = 409
    code = "conflict"
    kind = "invalid_request"


# --- rendering ----------------------------------------------------------------------------------

def _usd(nano: int | None) -> str | None:
    return None if nano is None else nano_to_usd(int(nano))


def key_public(row: Row) -> Row:
    quota, used = row["quota_nano"], int(row["used_nano"])
    remaining = None if quota is None else max(int(quota) - used, 0)
    return {
        "id": row["id"], "name": row["name"], "hint": row["key_hint"], "enabled": bool(row["enabled"]),
        "models": list(row["models"] or ["*"]), "ip_allow": list(row["ip_allow"] or []),
        "quota_nano": quota, "quota_usd": _usd(quota), "used_nano": used, "used_usd": _usd(used),
        "remaining_nano": remaining, "remaining_usd": _usd(remaining), "expires_at": row["expires_at"],
        "source": row["source"], "created_at": row["created_at"], "updated_at": row["updated_at"],
    }


def channel_public(row: Row) -> Row:
    return {
        "id": row["id"], "name": row["name"], "type": row["type"], "base_url": row["base_url"],
        "api_key_hint": row["api_key_hint"], "models": list(row["models"] or []),
        "model_map": dict(row["model_map"] or {}), "priority": row["priority"], "weight": row["weight"],
        "enabled": bool(row["enabled"]), "options": dict(row["options"] or {}), "source": row["source"],
        "created_at": row["created_at"], "updated_at": row["updated_at"],
    }


def price_public(row: Row) -> Row:
    return {**price_from_row(row).to_public(), "source": row["source"], "updated_at": row["updated_at"]}


def _iso_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _plain(row: Row) -> Row:
    """Column names arrive as ``quoted_name`` (a str subclass), which orjson refuses as keys."""
    return {str(name): value for name, value in row.items()}


def usage_public(row: Row) -> Row:
    return {**_plain(row), "created_at": _iso_ms(int(row["created_at_ms"])), "stream": bool(row["stream"]),
            "cost_nano": int(row["cost_nano"]), "cost_usd": nano_to_usd(int(row["cost_nano"]))}


def summary_public(row: Row) -> Row:
    out = {**_plain(row), **{name: int(row[name]) for name in _SUMS}}
    if "day" in out:
        out["day"] = (_EPOCH + timedelta(days=int(out["day"]))).isoformat()
    out["cost_usd"] = nano_to_usd(out["cost_nano"])
    return out


def _total(rows: list[Row]) -> Row:
    sums = {name: sum(int(r[name]) for r in rows) for name in _SUMS}
    return {**sums, "cost_usd": nano_to_usd(sums["cost_nano"])}


def _found(row: Row | None, what: str, ref: object) -> Row:
    if row is None:
        raise NotFound(f"No {what} with id {ref}.", param="id")
    return row


# --- the service --------------------------------------------------------------------------------

class AdminService:
    """Operations on the configured database. ``http`` is needed only to test channels that call out;
    ``health`` adds each channel's circuit state to channel views; ``on_change`` runs after a commit."""

    def __init__(self, engine: AsyncEngine, box: SecretBox, *, http: Transport | None = None,
                 health: HealthBook | None = None, on_change: OnChange | None = None,
                 probe_timeout_s: float = 10.0) -> None:
        self._engine = engine
        self._box = box
        self._http = http
        self._health = health
        self._on_change = on_change
        self._probe_timeout_s = probe_timeout_s

    @asynccontextmanager
    async def _change(self) -> AsyncIterator[AsyncConnection]:
        """One transaction that moves the configuration version. The version row is written first:
        its write lock (the database's on SQLite, the row's on PostgreSQL) is held to the commit, so
        changes run one at a time across processes, and a check made inside one (a key name is free)
        still holds when it commits; key names have no unique constraint to catch a race."""
        try:
            async with self._engine.begin() as conn:
                await queries.bump_config_version(conn)
                yield conn
        except sa.exc.IntegrityError as exc:
            raise Conflict("The change conflicts with an existing item (a name must be unique).",
                           param="name") from exc
        if self._on_change is not None:
            await self._on_change()

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self._engine.connect() as conn:
            yield conn

    # --- keys ---------------------------------------------------------------------------------

    @staticmethod
    async def _check_key_name(conn: AsyncConnection, name: str, key_id: int | None) -> None:
        """Keys made or renamed here get a name no other key has. Keys from the config file are matched
        by their hash, not their name, so the config sync may still leave two keys with one name."""
        if any(row["id"] != key_id for row in await queries.find_keys_by_name(conn, name)):
            raise Conflict(f"A key named '{name}' already exists.", param="name")

    async def create_key(self, body: Mapping[str, Any]) -> Row:
        """A new client key; the result holds the key itself (``key``), which is never shown again."""
        values = inputs.read_body(body, inputs.KEY_READERS, required=("name",))
        secret = generate_key()
        async with self._change() as conn:
            await self._check_key_name(conn, values["name"], None)
            key_id = await queries.insert_key(conn, {**values, "key_hash": hash_key(secret),
                                                     "key_hint": key_hint(secret), "source": "api"})
            row = _found(await queries.get_key(conn, key_id), "key", key_id)
        return {**key_public(row), "key": secret}

    async def list_keys(self) -> list[Row]:
        async with self._read() as conn:
            return [key_public(r) for r in await queries.list_keys(conn)]

    async def get_key(self, key_id: int) -> Row:
        async with self._read() as conn:
            return key_public(_found(await queries.get_key(conn, key_id), "key", key_id))

    async def update_key(self, key_id: int, body: Mapping[str, Any]) -> Row:
        values = inputs.read_body(body, inputs.KEY_READERS)
        async with self._change() as conn:
            current = _found(await queries.get_key(conn, key_id), "key", key_id)
            if values.get("name", current["name"]) != current["name"]:
                await self._check_key_name(conn, values["name"], key_id)
            if values:
                await queries.update_key(conn, key_id, values)
            row = _found(await queries.get_key(conn, key_id), "key", key_id)
        return key_public(row)

    async def disable_key(self, key_id: int) -> Row:
        return await self.update_key(key_id, {"enabled": False})

    async def resolve_key(self, ref: str) -> int:
        """A key's id from its id or its name, for the CLI (ambiguous only when the config file declared
        a key with the name of another key)."""
        async with self._read() as conn:
            if ref.isdigit() and await queries.get_key(conn, int(ref)) is not None:
                return int(ref)
            rows = await queries.find_keys_by_name(conn, ref)
        if len(rows) > 1:
            raise Conflict(f"{len(rows)} keys are named '{ref}'; use the id.", param="name")
        if not rows:
            raise NotFound(f"No key with id or name '{ref}'.", param="id")
        return int(rows[0]["id"])

    # --- channels -----------------------------------------------------------------------------

    def _channel_view(self, row: Row) -> Row:
        view = channel_public(row)
        if self._health is not None:
            view["health"] = self._health.status(int(row["id"]))
        return view

    def _secret_values(self, values: Row) -> Row:
        """``api_key`` (plain text from the operator) becomes its ciphertext and hint."""
        if "api_key" not in values:
            return values
        plain = values.pop("api_key") or ""
        return {**values, "api_key_enc": self._box.encrypt(plain) if plain else "",
                "api_key_hint": key_hint(plain) if plain else ""}

    async def _check_channel(self, conn: AsyncConnection, row: Row, channel_id: int | None) -> None:
        if not row["base_url"] and not offline(row["type"], row.get("options") or {}):
            raise inputs.invalid("base_url", f"'base_url' is required for channels of type {row['type']}.",
                                 "missing_field")
        problem = options_problem(row["type"], row.get("options") or {})
        if problem:
            raise inputs.invalid("options", problem)
        same_name = await queries.find_channel_by_name(conn, row["name"])
        if same_name is not None and same_name["id"] != channel_id:
            raise Conflict(f"A channel named '{row['name']}' already exists.", param="name")

    async def create_channel(self, body: Mapping[str, Any]) -> Row:
        values = inputs.read_body(body, inputs.CHANNEL_READERS, required=("name", "type"))
        values = {"base_url": "", "api_key": "", **values}
        async with self._change() as conn:
            await self._check_channel(conn, values, None)
            channel_id = await queries.insert_channel(conn, {**self._secret_values(values), "source": "api"})
            row = _found(await queries.get_channel(conn, channel_id), "channel", channel_id)
        return self._channel_view(row)

    async def list_channels(self) -> list[Row]:
        async with self._read() as conn:
            return [self._channel_view(r) for r in await queries.list_channels(conn)]

    async def get_channel(self, channel_id: int) -> Row:
        async with self._read() as conn:
            return self._channel_view(_found(await queries.get_channel(conn, channel_id), "channel", channel_id))

    async def update_channel(self, channel_id: int, body: Mapping[str, Any]) -> Row:
        values = inputs.read_body(body, inputs.CHANNEL_READERS)
        async with self._change() as conn:
            current = _found(await queries.get_channel(conn, channel_id), "channel", channel_id)
            await self._check_channel(conn, {**current, **values}, channel_id)
            if values:
                await queries.update_channel(conn, channel_id, self._secret_values(values))
            row = _found(await queries.get_channel(conn, channel_id), "channel", channel_id)
        return self._channel_view(row)

    async def disable_channel(self, channel_id: int) -> Row:
        return await self.update_channel(channel_id, {"enabled": False})

    async def resolve_channel(self, ref: str) -> int:
        """A channel's id from its id or its name, for the CLI."""
        async with self._read() as conn:
            if ref.isdigit() and await queries.get_channel(conn, int(ref)) is not None:
                return int(ref)
            row = await queries.find_channel_by_name(conn, ref)
        if row is None:
            raise NotFound(f"No channel with id or name '{ref}'.", param="id")
        return int(row["id"])

    async def test_channel(self, channel_id: int) -> Row:
        """Call the upstream's cheapest request; ``{ok, status, latency_ms, error}`` with a scrubbed error."""
        async with self._read() as conn:
            row = _found(await queries.get_channel(conn, channel_id), "channel", channel_id)
        result = await probe_channel(channel_from_row(row, self._box), self._http, self._probe_timeout_s)
        if result["ok"] and self._health is not None:
            self._health.success(channel_id)
        return {"channel_id": channel_id, "name": row["name"], **result}

    # --- prices -------------------------------------------------------------------------------

    async def list_prices(self) -> list[Row]:
        async with self._read() as conn:
            return [price_public(r) for r in await queries.list_prices(conn)]

    async def put_price(self, pattern: str, body: Mapping[str, Any]) -> Row:
        pattern = inputs.name(pattern, "pattern")
        price = price_from_mapping(pattern, inputs.price_body(body))
        values = price_row(price)
        async with self._change() as conn:
            await queries.upsert_price(conn, pattern, values, "api")
            row = await queries.get_price(conn, pattern)
        if row is None:  # pragma: no cover - written in the same transaction
            raise NotFound(f"No price for the pattern '{pattern}'.", param="pattern")
        return price_public(row)

    async def delete_price(self, pattern: str) -> Row:
        async with self._change() as conn:
            if not await queries.delete_price(conn, pattern):
                raise NotFound(f"No price for the pattern '{pattern}'.", param="pattern")
        return {"model": pattern, "deleted": True}

    # --- usage --------------------------------------------------------------------------------

    async def list_usage(self, params: Mapping[str, str]) -> Row:
        """Newest first; ``next_cursor`` (a record id) is passed back as ``cursor`` for the next page."""
        inputs.reject_unknown(params, inputs.LIST_PARAMS, "unknown_parameter")
        filters = inputs.usage_filters(params)
        limit, cursor = inputs.page(params)
        async with self._read() as conn:
            rows = await queries.list_usage(conn, filters, limit=limit + 1, before_id=cursor)
        more = len(rows) > limit
        rows = rows[:limit]
        return {"data": [usage_public(r) for r in rows], "has_more": more,
                "next_cursor": int(rows[-1]["id"]) if more else None}

    async def get_usage(self, request_id: str) -> Row:
        async with self._read() as conn:
            row = await queries.usage_by_request_id(conn, request_id)
        if row is None:
            raise NotFound(f"No usage record for the request id '{request_id}'.", param="request_id")
        return usage_public(row)

    async def usage_summary(self, params: Mapping[str, str]) -> Row:
        inputs.reject_unknown(params, inputs.SUMMARY_PARAMS, "unknown_parameter")
        filters = inputs.usage_filters(params)
        groups = inputs.group_by(params)
        async with self._read() as conn:
            rows = [summary_public(r) for r in await queries.usage_summary(conn, filters, groups)]
        if not groups:
            rows = [r for r in rows if r["requests"]]
        return {"group_by": groups, "data": rows, "total": _total(rows)}
