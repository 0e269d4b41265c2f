"""The task store on SQLite and PostgreSQL: leases are exclusive across engines (processes), a task
ends and is billed once, and a lost lease cannot change a task."""

from __future__ import annotations

import asyncio
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from relaygate.errors import InsufficientQuota
from relaygate.storage import queries
from relaygate.storage.recorder import UsageRecord
from relaygate.storage.tables import api_keys, task_files, usage_records
from relaygate.tasks import store
from relaygate.tasks.store import Lease, StoredFile


async def _key(engine: AsyncEngine, quota: int | None = None) -> int:
    async with engine.begin() as conn:
        return await queries.insert_key(conn, {"name": "k", "key_hash": "h" * 64, "key_hint": "sk-…", "models": ["*"],
                                               "ip_allow": [], "quota_nano": quota, "expires_at": None})


def _task(task_id: str, key_id: int, *, due: int | None = 0, hold: int = 100) -> dict[str, Any]:
    return {"id": task_id, "kind": "image", "action": "generate", "request_id": "req-" + task_id, "key_id": key_id,
            "key_name": "k", "model": "dall-e-3", "status": "SUBMITTED", "progress": "0%",
            "request": {"operation": "generate", "params": {"prompt": "x"}}, "webhook_attempts": 0,
            "hold_nano": hold, "cost_nano": 0, "runs": 0, "due_ms": due, "lease_until_ms": 0, "submit_ms": 1,
            "deadline_ms": 10**12, "updated_ms": 1}


async def _used(engine: AsyncEngine, key_id: int) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(sa.select(api_keys.c.used_nano).where(api_keys.c.id == key_id))).scalar_one())


async def test_insert_holds_spend_and_keeps_files(engine: AsyncEngine) -> None:
    key_id = await _key(engine)
    await store.insert_task(engine, _task("t1", key_id), [StoredFile("image", "a.png", "image/png", b"\x89PNG..")])
    assert await _used(engine, key_id) == 100
    assert await store.files(engine, "t1") == [StoredFile("image", "a.png", "image/png", b"\x89PNG..")]
    assert (await store.get(engine, "t1") or {})["request"] == {"operation": "generate", "params": {"prompt": "x"}}


async def test_concurrent_claims_take_each_task_once(engine: AsyncEngine) -> None:
    key_id = await _key(engine)
    for n in range(12):
        await store.insert_task(engine, _task(f"t{n}", key_id))
    claims = await asyncio.gather(*(store.claim_due(engine, f"owner-{i}", 1_000, 30_000, 12) for i in range(4)))
    taken = [row["id"] for rows in claims for row in rows]
    assert sorted(taken) == sorted(f"t{n}" for n in range(12))  # every task once, none twice
    assert await store.claim_due(engine, "late", 2_000, 30_000, 12) == []  # leases still run


async def test_expired_lease_is_taken_over_and_old_holder_is_shut_out(engine: AsyncEngine) -> None:
    key_id = await _key(engine)
    await store.insert_task(engine, _task("t", key_id))
    assert len(await store.claim_due(engine, "a", 1_000, 5_000, 1)) == 1
    assert await store.claim_due(engine, "b", 3_000, 5_000, 1) == []
    [second] = await store.claim_due(engine, "b", 7_000, 5_000, 1)  # a's lease ran out at 6 000
    assert second["lease_owner"] == "b"
    assert not await store.renew(engine, Lease("t", "a"), 20_000)
    assert not await store.update(engine, Lease("t", "a"), {"progress": "50%"})
    assert await store.renew(engine, Lease("t", "b"), 20_000)


async def test_finish_bills_once_and_clears_files(engine: AsyncEngine) -> None:
    key_id = await _key(engine)
    await store.insert_task(engine, _task("t", key_id, hold=100), [StoredFile("image", "a.png", "image/png", b"x")])
    [row] = await store.claim_due(engine, "a", 1_000, 5_000, 1)
    lease = Lease("t", "a")
    record = UsageRecord(request_id="req-t", created_at_ms=1, surface="openai.images", model="dall-e-3", stream=False,
                         status=200, end_reason="done", key_id=key_id, cost_nano=40, images=1)
    values = {"status": "SUCCESS", "cost_nano": 40, "hold_nano": 0, "due_ms": None}
    assert await store.finish(engine, lease, values, record, 40 - 100)
    assert not await store.finish(engine, lease, values, record, 40 - 100)  # already final: nothing happens
    assert await _used(engine, key_id) == 40
    async with engine.connect() as conn:
        assert (await conn.execute(sa.select(sa.func.count()).select_from(usage_records))).scalar_one() == 1
        assert (await conn.execute(sa.select(sa.func.count()).select_from(task_files))).scalar_one() == 0
    assert (await store.get(engine, "t") or {})["status"] == "SUCCESS"
    assert row["status"] == "SUBMITTED"


async def test_concurrent_holds_never_pass_the_quota(engine: AsyncEngine) -> None:
    # The hold is a conditional update in the database: however many connections race, the tasks that are
    # stored are exactly those the quota covers, and a refused one leaves nothing behind.
    key_id = await _key(engine, quota=1_000)

    async def submit(n: int) -> bool:
        try:
            await store.insert_task(engine, _task(f"t{n}", key_id, hold=100),
                                    [StoredFile("image", "a.png", "image/png", b"x")])
        except InsufficientQuota:
            return False
        return True

    accepted = await asyncio.gather(*(submit(n) for n in range(40)))
    assert sum(accepted) == 10
    assert await _used(engine, key_id) == 1_000
    async with engine.connect() as conn:
        stored = (await conn.execute(sa.select(sa.func.count()).select_from(sa.table("tasks")))).scalar_one()
        files = (await conn.execute(sa.select(sa.func.count()).select_from(task_files))).scalar_one()
    assert stored == files == 10


async def test_a_hold_added_to_a_task_is_conditional_and_can_be_dropped(engine: AsyncEngine) -> None:
    key_id = await _key(engine, quota=250)
    await store.insert_task(engine, {**_task("t", key_id, hold=100), "status": "MODAL"})
    assert not await store.add_hold(engine, "t", key_id, 100, "SUBMITTED")  # not in that status: nothing held
    assert await store.add_hold(engine, "t", key_id, 100, "MODAL")
    try:
        await store.add_hold(engine, "t", key_id, 100, "MODAL")  # 300 > 250
    except InsufficientQuota:
        pass
    else:
        raise AssertionError("a hold beyond the quota was added")
    assert await _used(engine, key_id) == 200
    assert (await store.get(engine, "t") or {})["hold_nano"] == 200
    assert await store.drop_hold(engine, "t", key_id, 100)
    assert await _used(engine, key_id) == 100
    assert (await store.get(engine, "t") or {})["hold_nano"] == 100
