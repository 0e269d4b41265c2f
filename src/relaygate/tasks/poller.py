"""Polling a kind's unfinished tasks per channel, shared by every process through one named lease per
channel (``<lease prefix>:<channel id>``).

Whoever holds a channel's lease polls it every ``period_s``; the others skip the channel, so no task is
fetched twice per round however many instances run. A holder that dies stops renewing, and another
process takes the channel after the lease (three periods, at least 2 s). What a poll asks the upstream
and what it does with the answer is the kind's (``PolledKind``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from relaygate.tasks import store
from relaygate.tasks.engine import process_owner
from relaygate.tasks.store import Row, now_ms

log = logging.getLogger("relaygate.tasks")

OPEN_LIMIT = 5000  # unfinished tasks looked at per channel and round


class PolledKind(Protocol):
    """A task kind whose upstream is asked about its tasks channel by channel (Midjourney's batch
    queries), filled in by the use case that owns it."""

    name: str  # the tasks.kind value of its tasks
    lease_prefix: str  # the named lease of one channel's polling is ``<lease_prefix>:<channel id>``

    async def poll_channel(self, channel_id: int, tasks: list[Row]) -> None:
        """Ask the channel about its unfinished ``tasks`` (oldest first) and apply what changed."""
        ...


class ChannelPoller:
    def __init__(self, engine: AsyncEngine, kind: PolledKind, *, period_s: float) -> None:
        self._engine = engine
        self._kind = kind
        self._period_s = period_s
        self._owner = process_owner()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name=f"relaygate-{self._kind.name}-poll")

    async def stop(self) -> None:
        self._stopping.set()
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await self.poll_once()
            except Exception as exc:  # the database or an upstream is away: try again next round
                log.warning("%s poll failed: %s", self._kind.name, type(exc).__name__)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._period_s):
                    await self._stopping.wait()

    async def poll_once(self) -> None:
        """One round: every channel with unfinished tasks of the kind whose lease this process holds."""
        kind = self._kind
        lease_ms = int(max(3 * self._period_s, 2.0) * 1000)
        for channel_id in await store.open_channels(self._engine, kind.name):
            now = now_ms()
            if await store.take_lease(self._engine, f"{kind.lease_prefix}:{channel_id}", self._owner, now,
                                      now + lease_ms):
                tasks = await store.open_tasks(self._engine, kind.name, channel_id, OPEN_LIMIT)
                await kind.poll_channel(channel_id, tasks)
