"""The loop every process runs: take due tasks under a lease, run them, keep the lease alive.

Work is shared through leases, not pinned to one process (DESIGN §3): each process claims due tasks
with a conditional update, renews its lease every third of ``task_lease_s`` while it works, and
stops working on a task whose lease it lost. A process that dies simply stops renewing; after the
lease runs out another process (or the same one after a restart) takes the task again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Iterable
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncEngine

from relaygate.tasks import store
from relaygate.tasks.store import Lease, Row, now_ms
from relaygate.tasks.webhook import WebhookSender, deliver_step

log = logging.getLogger("relaygate.tasks")

_RETRY_AFTER_BUG_MS = 5_000


def process_owner() -> str:
    """This process's name in leases: host, pid, and a random part (a pid is reused after a restart)."""
    return f"{os.uname().nodename[:32]}:{os.getpid()}:{os.urandom(4).hex()}"


class TaskKind(Protocol):
    """A kind of task as the engine runs it (the ``tasks.kind`` column): filled in by the use case
    that owns the kind (``relay/image_tasks.py``, ``relay/midjourney_tasks.py``) and handed to the
    engine when the app starts. The engine knows nothing else about a kind."""

    name: str  # the tasks.kind value of its tasks

    def needs_work(self, task: Row) -> bool:
        """Whether a due task needs its kind's own work (running it, ending it); False: it is due only
        for its webhook, which the engine delivers."""
        ...

    async def work(self, task: Row, lease: Lease) -> None:
        """Do the task's due work under ``lease`` and leave it final or released with its next
        ``due_ms``."""
        ...

    def webhook_body(self, task: Row) -> bytes:
        """The task as its owner's webhook receives it (JSON)."""
        ...


class TaskEngine:
    def __init__(self, engine: AsyncEngine, kinds: Iterable[TaskKind], webhooks: WebhookSender, *, poll_s: float,
                 lease_s: float, webhook_attempts: int, capacity: int = 32) -> None:
        self._engine = engine
        self._kinds = {kind.name: kind for kind in kinds}
        self._webhooks = webhooks
        self._webhook_attempts = webhook_attempts
        self._poll_s = poll_s
        self._lease_ms = int(lease_s * 1000)
        self._capacity = capacity
        self.owner = process_owner()
        self._wake = asyncio.Event()
        self._running: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None
        self._stopping = False

    def start(self) -> None:
        self._loop_task = asyncio.create_task(self._loop(), name="relaygate-tasks")

    def wake(self) -> None:
        """Look for work now (a task was just submitted here) rather than at the next poll."""
        self._wake.set()

    async def stop(self, grace_s: float) -> None:
        """Stop taking work; give running work ``grace_s`` seconds, then cancel it (its lease runs out
        and another process, or this one after a restart, takes it again)."""
        self._stopping = True
        self._wake.set()
        if self._loop_task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        if self._running:
            _, pending = await asyncio.wait(self._running, timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _loop(self) -> None:
        while not self._stopping:
            free = self._capacity - len(self._running)
            if free > 0:
                try:
                    claimed = await store.claim_due(self._engine, self.owner, now_ms(), self._lease_ms, free)
                except Exception as exc:  # the database is away: try again at the next poll
                    log.warning("could not look for due tasks: %s", type(exc).__name__)
                    claimed = []
                for row in claimed:
                    work = asyncio.create_task(self._work(row), name=f"task-{row['id']}")
                    self._running.add(work)
                    work.add_done_callback(self._running.discard)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self._poll_s):
                    await self._wake.wait()
            self._wake.clear()

    async def _work(self, row: Row) -> None:
        lease = Lease(row["id"], self.owner)
        kind = self._kinds.get(row["kind"])
        if kind is None:
            log.error("task %s has an unknown kind %r", row["id"], row["kind"])
            return
        work = asyncio.current_task()
        assert work is not None
        keeper = asyncio.create_task(self._keep(lease, work))
        try:
            if kind.needs_work(row):
                await kind.work(row, lease)
            else:
                await deliver_step(self._engine, self._webhooks, row, lease, kind.webhook_body(row),
                                   self._webhook_attempts)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug in a kind must not lose the task: it is tried again later
            log.exception("task %s failed in its kind's work: %s", row["id"], type(exc).__name__)
            with contextlib.suppress(Exception):
                await store.release(self._engine, lease, {"due_ms": now_ms() + _RETRY_AFTER_BUG_MS})
        finally:
            keeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await keeper

    async def _keep(self, lease: Lease, work: asyncio.Task[None]) -> None:
        """Renew the lease every third of its length; cancel the work when it is lost."""
        while True:
            await asyncio.sleep(self._lease_ms / 3000)
            try:
                held = await store.renew(self._engine, lease, now_ms() + self._lease_ms)
            except Exception as exc:
                log.warning("could not renew the lease of task %s: %s", lease.task_id, type(exc).__name__)
                continue
            if not held:
                log.warning("lost the lease of task %s; another process has it", lease.task_id)
                work.cancel()
                return
