"""The in-memory snapshot the hot path reads instead of the database: keys, channels, prices.

It is rebuilt whole (never mutated) when the configuration version in the database moves; every
instance polls that number every ``snapshot_poll_s`` seconds, and an admin change in this process
reloads at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from relaygate.auth.records import KeyRecord, parse_networks
from relaygate.billing.pricing import Price, PriceTable
from relaygate.providers.base import Ability
from relaygate.providers.registry import has_ability
from relaygate.routing.health import HealthBook
from relaygate.routing.records import ChannelRecord
from relaygate.routing.router import Router
from relaygate.storage import queries
from relaygate.storage.crypto import SecretBox

log = logging.getLogger("relaygate.snapshot")


@dataclass(frozen=True, slots=True)
class Snapshot:
    version: int
    keys_by_hash: dict[str, KeyRecord]
    keys_by_id: dict[int, KeyRecord]
    channels: dict[int, ChannelRecord]
    prices: PriceTable
    router: Router  # the chat channels (``routers[Ability.CHAT]``, read directly on the chat hot path)
    admin_key_hash: str = ""
    # The channels of each ability: the router of an ability offers only channels whose kind has it.
    routers: Mapping[Ability, Router] = field(default_factory=dict)
    loaded: bool = field(default=True)


def routers_by_ability(channels: Iterable[ChannelRecord], health: HealthBook) -> dict[Ability, Router]:
    """One router per ability, over the channels whose kind declares it (``providers/registry.py``)."""
    channels = list(channels)
    return {ability: Router((c for c in channels if has_ability(c.type, ability)), health) for ability in Ability}


def key_from_row(row: dict[str, Any]) -> KeyRecord:
    return KeyRecord(
        id=int(row["id"]), name=row["name"], key_hash=row["key_hash"], enabled=bool(row["enabled"]),
        models=tuple(row["models"] or ("*",)), ip_allow=parse_networks(row["ip_allow"] or ()),
        quota_nano=row["quota_nano"], expires_at=row["expires_at"],
    )


def channel_from_row(row: dict[str, Any], box: SecretBox) -> ChannelRecord:
    return ChannelRecord(
        id=int(row["id"]), name=row["name"], type=row["type"], base_url=row["base_url"],
        api_key=box.decrypt(row["api_key_enc"]) if row["api_key_enc"] else "",
        models=tuple(row["models"] or ()), model_map=dict(row["model_map"] or {}),
        priority=int(row["priority"]), weight=int(row["weight"]), enabled=bool(row["enabled"]),
        options=dict(row["options"] or {}),
    )


def price_from_row(row: dict[str, Any]) -> Price:
    per_image = row.get("per_image")
    return Price(pattern=row["pattern"], input=int(row["input_nano"]), output=int(row["output_nano"]),
                 cached_input=row["cached_input_nano"], cache_write=row["cache_write_nano"],
                 per_call=row["per_call_nano"], input_image=row.get("input_image_nano"),
                 per_image=None if per_image is None else tuple(sorted((str(k), int(v)) for k, v in per_image.items())))


def price_row(price: Price) -> dict[str, Any]:
    """The database values of a price (the inverse of ``price_from_row``)."""
    return {"input_nano": price.input, "output_nano": price.output, "cached_input_nano": price.cached_input,
            "cache_write_nano": price.cache_write, "per_call_nano": price.per_call,
            "input_image_nano": price.input_image,
            "per_image": None if price.per_image is None else dict(price.per_image)}


class SnapshotStore:
    """Holds the current snapshot and keeps it fresh."""

    def __init__(self, engine: AsyncEngine, box: SecretBox, health: HealthBook, poll_s: float, *,
                 fixed_admin_key_hash: str | None = None) -> None:
        self._engine = engine
        self._box = box
        self._health = health
        self._poll_s = poll_s
        self._fixed_admin_key_hash = fixed_admin_key_hash
        routers = routers_by_ability((), health)
        self.current = Snapshot(-1, {}, {}, {}, PriceTable(()), routers[Ability.CHAT], routers=routers, loaded=False)
        self._task: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    async def reload(self) -> Snapshot:
        async with self._lock:
            async with self._engine.connect() as conn:
                version = await queries.config_version(conn)
                key_rows = await queries.list_keys(conn)
                channel_rows = await queries.list_channels(conn)
                price_rows = await queries.list_prices(conn)
                admin_hash = self._fixed_admin_key_hash or await queries.get_meta(conn, queries.ADMIN_KEY_HASH)
            keys = [key_from_row(r) for r in key_rows]
            channels = [channel_from_row(r, self._box) for r in channel_rows]
            routers = routers_by_ability(channels, self._health)
            self.current = Snapshot(
                version=version,
                keys_by_hash={k.key_hash: k for k in keys},
                keys_by_id={k.id: k for k in keys},
                channels={c.id: c for c in channels},
                prices=PriceTable(price_from_row(r) for r in price_rows),
                router=routers[Ability.CHAT],
                admin_key_hash=admin_hash or "",
                routers=routers,
            )
            return self.current

    def start(self) -> None:
        self._task = asyncio.create_task(self._poll(), name="relaygate-snapshot-poll")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self._poll_s)
            try:
                async with self._engine.connect() as conn:
                    version = await queries.config_version(conn)
                if version != self.current.version:
                    await self.reload()
            except Exception as exc:  # keep serving the last good snapshot
                log.warning("snapshot refresh failed: %s", type(exc).__name__)
