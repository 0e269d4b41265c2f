"""Group commit of usage records.

Requests hand their record to ``Recorder.write`` and wait until it is committed; one writer task
commits whatever has queued up meanwhile in a single transaction (records plus each key's spend).
Under load many requests share one commit; alone, a request waits for exactly one. The writer also
re-reads the keys' committed spend between commits, so the in-memory ledger can never count a batch
twice or miss one.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from relaygate.storage import queries
from relaygate.storage.tables import api_keys, usage_records

log = logging.getLogger("relaygate.recorder")

MAX_BATCH = 1000


@dataclass(slots=True)
class UsageRecord:
    request_id: str
    created_at_ms: int
    surface: str
    model: str
    stream: bool
    status: int
    end_reason: str
    usage_source: str = "none"
    key_id: int | None = None
    key_name: str | None = None
    upstream_model: str | None = None
    channel_id: int | None = None
    channel_name: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_nano: int = 0
    attempts: int = 0
    latency_ms: int = 0
    first_byte_ms: int | None = None
    client_ip: str | None = None
    error_code: str | None = None


class SpendListener(Protocol):
    def committed(self, spend_by_key: dict[int, int]) -> None: ...

    def refreshed(self, used_by_key: dict[int, int]) -> None: ...

    def failed(self, spend_by_key: dict[int, int]) -> None: ...


_Item = tuple[UsageRecord, "asyncio.Future[None]"]


class Recorder:
    def __init__(self, engine: AsyncEngine, listener: SpendListener, *,
                 refresh_every_s: float = 1.0, clock: Callable[[], float] | None = None) -> None:
        self._engine = engine
        self._listener = listener
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._refresh_every_s = refresh_every_s
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._last_refresh = 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="relaygate-recorder")

    async def stop(self) -> None:
        """Commit everything queued, then stop."""
        if self._task is None:
            return
        await self._queue.put(None)
        await self._task
        self._task = None

    async def write(self, record: UsageRecord) -> None:
        """Return once the record is committed (raises if the commit failed)."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((record, future))
        await asyncio.shield(future)

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                item = await asyncio.wait_for(self._queue.get(), timeout=self._refresh_every_s)
            except TimeoutError:
                await self._refresh_if_due()
                continue
            batch: list[_Item] = []
            if item is None:
                stopping = True
            else:
                batch.append(item)
            while len(batch) < MAX_BATCH and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    stopping = True
                    continue
                batch.append(nxt)
            if batch:
                await self._commit(batch)
            await self._refresh_if_due()

    async def _commit(self, batch: list[_Item]) -> None:
        spend: dict[int, int] = {}
        for record, _ in batch:
            if record.key_id is not None and record.cost_nano:
                spend[record.key_id] = spend.get(record.key_id, 0) + record.cost_nano
        rows = [dataclasses.asdict(record) for record, _ in batch]
        try:
            async with self._engine.begin() as conn:
                await conn.execute(sa.insert(usage_records), rows)
                for key_id, cost in spend.items():
                    await conn.execute(
                        sa.update(api_keys).where(api_keys.c.id == key_id)
                        .values(used_nano=api_keys.c.used_nano + cost)
                    )
        except Exception as exc:  # a failed commit must reach every waiter, not kill the writer
            log.error("usage commit failed for %d records: %s", len(batch), type(exc).__name__)
            self._listener.failed(spend)
            for _, future in batch:
                if not future.done():
                    future.set_exception(RecorderError("usage record could not be stored"))
            return
        self._listener.committed(spend)
        for _, future in batch:
            if not future.done():
                future.set_result(None)

    async def refresh_now(self) -> None:
        """Read the committed spend once (at start, before the writer runs)."""
        self._last_refresh = self._clock()
        await self._refresh()

    async def _refresh_if_due(self) -> None:
        now = self._clock()
        if now - self._last_refresh < self._refresh_every_s:
            return
        self._last_refresh = now
        await self._refresh()

    async def _refresh(self) -> None:
        try:
            async with self._engine.connect() as conn:
                used = await queries.key_balances(conn)
        except Exception as exc:
            log.warning("could not refresh key balances: %s", type(exc).__name__)
            return
        self._listener.refreshed(used)


class RecorderError(Exception):
    pass
