"""Every query of the task tables. A task's state changes only through a conditional update that
names its lease holder, so two processes can never both finish (and bill) the same task.

Money: a task's ``hold_nano`` is added to the key's ``used_nano`` in the transaction that stores the
task, by a conditional update that passes only while the key's quota (in the database) covers it, so
any number of processes and instances together cannot overdraw a key with task holds; the
transaction that ends it writes its usage record and adds ``cost - hold`` (a refund when it failed),
and does so only if the task was not already final.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from relaygate.errors import QUOTA_EXCEEDED, InsufficientQuota
from relaygate.storage.recorder import UsageRecord
from relaygate.storage.tables import api_keys, leases, task_files, tasks, usage_records

FINAL_STATUSES = ("SUCCESS", "FAILURE")
Row = dict[str, Any]


def now_ms() -> int:
    """The clock of every task time (``due_ms``, leases, ``submit_ms``...): unix milliseconds."""
    return int(time.time() * 1000)


@dataclass(frozen=True, slots=True)
class StoredFile:
    name: str
    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True, slots=True)
class Lease:
    """Who holds a task: only this owner's updates take effect."""

    task_id: str
    owner: str


async def insert_task(engine: AsyncEngine, row: Mapping[str, Any], files: Iterable[StoredFile] = ()) -> None:
    """Store a new task, its files, and its hold on the key, in one transaction. Raises
    ``InsufficientQuota`` (and stores nothing) when the key's quota does not cover the hold."""
    async with engine.begin() as conn:
        # The hold first: on PostgreSQL it locks the key's row until the commit, on SQLite it takes the
        # write lock, so concurrent holds on one key are decided one after the other.
        await _hold(conn, row["key_id"], row["hold_nano"])
        await conn.execute(sa.insert(tasks).values(**row))
        file_rows = [{"task_id": row["id"], "seq": seq, "name": f.name, "filename": f.filename,
                      "content_type": f.content_type, "data": f.data} for seq, f in enumerate(files)]
        if file_rows:
            await conn.execute(sa.insert(task_files), file_rows)


async def claim_due(engine: AsyncEngine, owner: str, now_ms: int, lease_ms: int, limit: int) -> list[Row]:
    """Take up to ``limit`` tasks that need work now and whose lease ran out (or was never taken)."""
    async with engine.connect() as conn:
        due = (await conn.execute(
            sa.select(tasks.c.id, tasks.c.lease_until_ms)
            .where(tasks.c.due_ms.is_not(None), tasks.c.due_ms <= now_ms, tasks.c.lease_until_ms <= now_ms)
            .order_by(tasks.c.due_ms).limit(limit))).all()
    claimed: list[Row] = []
    for task_id, old_until in due:
        async with engine.begin() as conn:
            taken = await conn.execute(
                sa.update(tasks).where(tasks.c.id == task_id, tasks.c.lease_until_ms == old_until)
                .values(lease_owner=owner, lease_until_ms=now_ms + lease_ms))
            if taken.rowcount != 1:
                continue  # another process took it between our read and our update
            row = (await conn.execute(sa.select(tasks).where(tasks.c.id == task_id))).mappings().one()
            claimed.append(dict(row))
    return claimed


async def renew(engine: AsyncEngine, lease: Lease, until_ms: int) -> bool:
    """Extend the lease; False when it was lost (the work must stop: another process has the task)."""
    async with engine.begin() as conn:
        result = await conn.execute(_held(lease).values(lease_until_ms=until_ms))
        return result.rowcount == 1


async def update(engine: AsyncEngine, lease: Lease, values: Mapping[str, Any]) -> bool:
    async with engine.begin() as conn:
        result = await conn.execute(_held(lease).values(**values))
        return result.rowcount == 1


async def release(engine: AsyncEngine, lease: Lease, values: Mapping[str, Any]) -> bool:
    """Give the task back (its work is done for now), with changes such as the next ``due_ms``."""
    return await update(engine, lease, {**values, "lease_owner": None, "lease_until_ms": 0})


async def finish(engine: AsyncEngine, lease: Lease | str, values: Mapping[str, Any], record: UsageRecord,
                 spend_delta: int, *, expect_status: str | None = None) -> bool:
    """End the task (``values`` has its final status) and bill it, once: the usage record and the key's
    spend change commit with the status, or nothing does. False when the task was already final or the
    lease was lost. ``lease`` is the holder's lease, or just the task id for work that holds no task
    lease (a Midjourney poll, which holds its channel's lease): the final-status guard alone then
    keeps the end to one. ``expect_status``: only a task still in that status is ended."""
    task_id = lease.task_id if isinstance(lease, Lease) else lease
    query = _held(lease) if isinstance(lease, Lease) else sa.update(tasks).where(tasks.c.id == task_id)
    if expect_status is not None:
        query = query.where(tasks.c.status == expect_status)
    async with engine.begin() as conn:
        result = await conn.execute(query.where(tasks.c.status.not_in(FINAL_STATUSES)).values(**values))
        if result.rowcount != 1:
            return False
        await conn.execute(sa.insert(usage_records).values(**_record_values(record)))
        if spend_delta and record.key_id is not None:
            await _add_spend(conn, record.key_id, spend_delta)
        await conn.execute(sa.delete(task_files).where(task_files.c.task_id == task_id))
        return True


async def update_open(engine: AsyncEngine, task_id: str, values: Mapping[str, Any],
                      *, expect_updated_ms: int | None = None, expect_status: str | None = None) -> bool:
    """Change a task that is not final (``expect_updated_ms``: only if nobody changed it since;
    ``expect_status``: only if it is still in that status)."""
    query = sa.update(tasks).where(tasks.c.id == task_id, tasks.c.status.not_in(FINAL_STATUSES))
    if expect_updated_ms is not None:
        query = query.where(tasks.c.updated_ms == expect_updated_ms)
    if expect_status is not None:
        query = query.where(tasks.c.status == expect_status)
    async with engine.begin() as conn:
        return (await conn.execute(query.values(**values))).rowcount == 1


async def add_hold(engine: AsyncEngine, task_id: str, key_id: int, amount: int, status: str) -> bool:
    """Charge one more amount to a task in ``status`` (a Midjourney modal continuing its task), with the
    key. False when the task is not in that status; raises ``InsufficientQuota`` (and changes nothing)
    when the key's quota does not cover the amount."""
    async with engine.begin() as conn:
        result = await conn.execute(
            sa.update(tasks).where(tasks.c.id == task_id, tasks.c.status == status)
            .values(hold_nano=tasks.c.hold_nano + amount))
        if result.rowcount != 1:
            return False
        await _hold(conn, key_id, amount)  # raising rolls the task's change back too
        return True


async def drop_hold(engine: AsyncEngine, task_id: str, key_id: int, amount: int) -> bool:
    """Take back an amount ``add_hold`` charged to an open task (the upstream refused the modal), with
    the key. False when the task ended meanwhile: its end settled the whole hold, this amount included."""
    async with engine.begin() as conn:
        result = await conn.execute(
            sa.update(tasks).where(tasks.c.id == task_id, tasks.c.status.not_in(FINAL_STATUSES),
                                   tasks.c.hold_nano >= amount)
            .values(hold_nano=tasks.c.hold_nano - amount))
        if result.rowcount != 1:
            return False
        if amount:
            await _add_spend(conn, key_id, -amount)
        return True


async def release_if_unchanged(engine: AsyncEngine, lease: Lease, updated_ms: int, values: Mapping[str, Any]) -> bool:
    """Release with ``values`` only if the task did not change since ``updated_ms`` (a webhook delivered
    for that version); otherwise the caller releases it due again, so the newer version is delivered."""
    async with engine.begin() as conn:
        result = await conn.execute(_held(lease).where(tasks.c.updated_ms == updated_ms)
                                    .values(**values, lease_owner=None, lease_until_ms=0))
        return result.rowcount == 1


async def open_tasks(engine: AsyncEngine, kind: str, channel_id: int, limit: int) -> list[Row]:
    """Unfinished tasks of one kind on one channel, oldest first."""
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(tasks).where(tasks.c.kind == kind, tasks.c.channel_id == channel_id,
                                                         tasks.c.finish_ms.is_(None))
                                  .order_by(tasks.c.submit_ms).limit(limit))
        return [dict(r) for r in rows.mappings()]


async def open_channels(engine: AsyncEngine, kind: str) -> list[int]:
    """Channels with unfinished tasks of this kind."""
    async with engine.connect() as conn:
        rows = await conn.execute(sa.select(tasks.c.channel_id).where(tasks.c.kind == kind,
                                                                      tasks.c.finish_ms.is_(None)).distinct())
        return [int(r[0]) for r in rows if r[0] is not None]


async def by_upstream_id(engine: AsyncEngine, channel_id: int, upstream_task_id: str) -> Row | None:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(tasks).where(tasks.c.channel_id == channel_id,
                                                         tasks.c.upstream_task_id == upstream_task_id)
                                  .order_by(tasks.c.submit_ms.desc()).limit(1))).mappings().first()
    return dict(row) if row is not None else None


async def take_lease(engine: AsyncEngine, name: str, owner: str, now_ms: int, until_ms: int) -> bool:
    """Hold the named lease until ``until_ms`` if it is free, ran out, or is already ours."""
    async with engine.begin() as conn:
        taken = await conn.execute(sa.update(leases).where(
            leases.c.name == name, sa.or_(leases.c.owner == owner, leases.c.until_ms <= now_ms))
            .values(owner=owner, until_ms=until_ms))
        if taken.rowcount == 1:
            return True
        exists = (await conn.execute(sa.select(leases.c.name).where(leases.c.name == name))).first()
        if exists is not None:
            return False
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.insert(leases).values(name=name, owner=owner, until_ms=until_ms))
        return True
    except sa.exc.IntegrityError:
        return False  # another process created it first


async def get(engine: AsyncEngine, task_id: str) -> Row | None:
    async with engine.connect() as conn:
        row = (await conn.execute(sa.select(tasks).where(tasks.c.id == task_id))).mappings().first()
    return dict(row) if row is not None else None


async def get_many(engine: AsyncEngine, task_ids: Sequence[str], key_id: int | None = None) -> list[Row]:
    query = sa.select(tasks).where(tasks.c.id.in_(list(task_ids)))
    if key_id is not None:
        query = query.where(tasks.c.key_id == key_id)
    async with engine.connect() as conn:
        return [dict(r) for r in (await conn.execute(query)).mappings()]


async def files(engine: AsyncEngine, task_id: str) -> list[StoredFile]:
    async with engine.connect() as conn:
        rows = (await conn.execute(sa.select(task_files).where(task_files.c.task_id == task_id)
                                   .order_by(task_files.c.seq))).mappings()
        return [StoredFile(r["name"], r["filename"], r["content_type"], bytes(r["data"])) for r in rows]


def _held(lease: Lease) -> Any:
    return sa.update(tasks).where(tasks.c.id == lease.task_id, tasks.c.lease_owner == lease.owner)


async def _hold(conn: AsyncConnection, key_id: int, amount: int) -> None:
    """Add a task's hold to the key's spend, in the caller's transaction, only if the key's quota covers
    it: the one check of task holds that holds across processes and instances (the in-memory ledger
    only refuses early). Raises ``InsufficientQuota`` when it does not."""
    if not amount:
        return
    keys = api_keys.c
    result = await conn.execute(
        sa.update(api_keys)
        .where(keys.id == key_id, sa.or_(keys.quota_nano.is_(None), keys.used_nano + amount <= keys.quota_nano))
        .values(used_nano=keys.used_nano + amount))
    if result.rowcount != 1:
        raise InsufficientQuota(QUOTA_EXCEEDED)


async def _add_spend(conn: AsyncConnection, key_id: int, amount: int) -> None:
    await conn.execute(sa.update(api_keys).where(api_keys.c.id == key_id)
                       .values(used_nano=api_keys.c.used_nano + amount))


def _record_values(record: UsageRecord) -> dict[str, Any]:
    return record._asdict()
