"""The group-commit recorder on a real database: one row per request, the keys' spend equal to the sum
of their records, failures reported to the waiters and the ledger, and nothing lost at stop."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from relaygate.billing.ledger import Ledger
from relaygate.storage import queries
from relaygate.storage.recorder import Recorder, RecorderError, UsageRecord
from relaygate.storage.tables import api_keys, usage_records


class CountingLedger(Ledger):
    """The real ledger, counting the recorder's calls."""

    def __init__(self) -> None:
        super().__init__()
        self.commits: list[dict[int, int]] = []
        self.failures: list[dict[int, int]] = []

    def committed(self, spend_by_key: dict[int, int]) -> None:
        self.commits.append(dict(spend_by_key))
        super().committed(spend_by_key)

    def failed(self, spend_by_key: dict[int, int]) -> None:
        self.failures.append(dict(spend_by_key))
        super().failed(spend_by_key)


def record(request_id: str, key_id: int | None, cost: int, **fields: object) -> UsageRecord:
    values: dict[str, object] = {"request_id": request_id, "created_at_ms": 1_700_000_000_000,
                                 "surface": "openai.chat", "model": "gpt-4o", "stream": False, "status": 200,
                                 "end_reason": "done", "usage_source": "upstream", "key_id": key_id,
                                 "key_name": "k", "input_tokens": 10, "output_tokens": 5, "cost_nano": cost}
    values.update(fields)
    return UsageRecord(**values)  # type: ignore[arg-type]


async def _key(engine: AsyncEngine, name: str, used: int = 0) -> int:
    async with engine.begin() as conn:
        return await queries.insert_key(conn, {"name": name, "key_hash": name.ljust(64, "0"), "key_hint": "sk-…",
                                               "used_nano": used})


async def _rows(engine: AsyncEngine) -> list[dict[str, object]]:
    async with engine.connect() as conn:
        result = await conn.execute(sa.select(usage_records).order_by(usage_records.c.id))
        return [dict(r._mapping) for r in result]


async def _used(engine: AsyncEngine) -> dict[int, int]:
    async with engine.connect() as conn:
        return await queries.key_balances(conn)


async def _settle_and_write(recorder: Recorder, ledger: Ledger, r: UsageRecord) -> None:
    """What the meter does: settle the call's reservation with its cost, then wait for the commit."""
    assert r.key_id is not None
    reservation = ledger.reserve(r.key_id, 10**12, 0)
    assert reservation is not None
    ledger.settle(reservation, r.cost_nano)
    await recorder.write(r)


@pytest.fixture
async def ledger() -> CountingLedger:
    return CountingLedger()


@pytest.fixture
async def recorder(engine: AsyncEngine, ledger: CountingLedger) -> AsyncIterator[Recorder]:
    rec = Recorder(engine, ledger, refresh_every_s=3600)
    rec.start()
    yield rec
    await rec.stop()


async def test_many_concurrent_writes_make_one_row_each_and_few_commits(
        engine: AsyncEngine, ledger: CountingLedger, recorder: Recorder) -> None:
    keys = [await _key(engine, f"k{i}", used=7) for i in range(3)]
    records = [record(f"r{i}", keys[i % 3], cost=1_000 + i) for i in range(300)]
    await asyncio.gather(*(_settle_and_write(recorder, ledger, r) for r in records))
    rows = await _rows(engine)
    assert sorted(str(r["request_id"]) for r in rows) == sorted(r.request_id for r in records)
    used = await _used(engine)
    for key_id in keys:
        expected = sum(r.cost_nano for r in records if r.key_id == key_id)
        assert used[key_id] == 7 + expected
        assert ledger.spent(key_id) == expected  # the ledger saw each batch once (it started at 0)
    assert 1 <= len(ledger.commits) <= 10, "writes queued together should share commits"
    assert ledger.failures == []


async def test_a_waiter_cancelled_before_the_commit_leaves_its_record_to_be_committed(
        engine: AsyncEngine, ledger: CountingLedger, recorder: Recorder) -> None:
    """A client that leaves while its record waits for the commit cancels only its wait: the record and
    the key's spend are committed, and the writer goes on with the next ones."""
    key_id = await _key(engine, "gone")
    waiting = asyncio.create_task(recorder.write(record("left", key_id, cost=500)))
    await asyncio.sleep(0)  # queued, not yet committed
    waiting.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiting
    await recorder.write(record("next", key_id, cost=250))
    assert [str(r["request_id"]) for r in await _rows(engine)] == ["left", "next"]
    assert (await _used(engine))[key_id] == 750
    assert ledger.failures == []


async def test_records_without_a_key_or_cost_touch_no_balance(engine: AsyncEngine, ledger: CountingLedger,
                                                               recorder: Recorder) -> None:
    key_id = await _key(engine, "free")
    await asyncio.gather(recorder.write(record("anon", None, 0)), recorder.write(record("zero", key_id, 0)))
    assert len(await _rows(engine)) == 2
    assert (await _used(engine))[key_id] == 0
    assert all(spend == {} for spend in ledger.commits)


async def test_every_field_round_trips(engine: AsyncEngine, recorder: Recorder) -> None:
    key_id = await _key(engine, "fields")
    written = record("full", key_id, 123_456_789_012, stream=True, status=499, end_reason="client_gone",
                     usage_source="estimated", upstream_model="gpt-4o-2024-08-06", channel_id=3,
                     channel_name="main", cached_input_tokens=4, cache_write_tokens=2, reasoning_tokens=1,
                     attempts=2, latency_ms=1234, first_byte_ms=56, client_ip="::1", error_code="stream_cut")
    await recorder.write(written)
    async with engine.connect() as conn:
        row = await queries.usage_by_request_id(conn, "full")
    assert row is not None
    row.pop("id")
    row["stream"] = bool(row["stream"])
    assert row == _as_dict(written)


def _as_dict(r: UsageRecord) -> dict[str, object]:
    return r._asdict()


async def test_records_sharing_a_client_request_id_are_all_stored(
        engine: AsyncEngine, ledger: CountingLedger, recorder: Recorder) -> None:
    # The client's id is kept beside relaygate's own and is not unique: two keys (or one key twice) may
    # send the same one, and every call is stored and billed once.
    key_id = await _key(engine, "dup")
    batch = [record(f"req_{n}", key_id, cost, client_request_id="same") for n, cost in enumerate((10, 1, 1000))]
    await asyncio.gather(*(_settle_and_write(recorder, ledger, r) for r in batch))
    rows = await _rows(engine)
    assert sorted(str(r["request_id"]) for r in rows) == ["req_0", "req_1", "req_2"]
    assert [r["client_request_id"] for r in rows] == ["same"] * 3
    assert (await _used(engine))[key_id] == 1011
    assert ledger.failures == []


async def test_a_record_that_cannot_be_stored_fails_its_waiter_only(
        engine: AsyncEngine, ledger: CountingLedger, recorder: Recorder) -> None:
    key_id = await _key(engine, "bad")
    bad = record("broken", key_id, 500, model=None)  # violates NOT NULL
    results = await asyncio.gather(_settle_and_write(recorder, ledger, bad),
                                   _settle_and_write(recorder, ledger, record("fine", key_id, 7)),
                                   return_exceptions=True)
    assert isinstance(results[0], RecorderError)
    assert results[1] is None
    assert [r["request_id"] for r in await _rows(engine)] == ["fine"]
    assert (await _used(engine))[key_id] == 7
    assert ledger.failures == [{key_id: 500}]
    assert ledger.spent(key_id) == 7  # the failed call's cost is not owed
    await _settle_and_write(recorder, ledger, record("after", key_id, 1))  # the writer is still alive
    assert (await _used(engine))[key_id] == 8
    assert ledger.spent(key_id) == 8


async def test_stop_commits_what_is_queued(engine: AsyncEngine, ledger: CountingLedger) -> None:
    key_id = await _key(engine, "stop")
    rec = Recorder(engine, ledger, refresh_every_s=3600)
    rec.start()
    writes = [asyncio.create_task(rec.write(record(f"s{i}", key_id, 3))) for i in range(50)]
    await asyncio.sleep(0)  # queued, not yet committed
    await rec.stop()
    await asyncio.gather(*writes)
    assert len(await _rows(engine)) == 50
    assert (await _used(engine))[key_id] == 150


async def test_refresh_reads_the_committed_spend_into_the_ledger(engine: AsyncEngine) -> None:
    key_id = await _key(engine, "refresh", used=4_000)
    ledger = Ledger()
    rec = Recorder(engine, ledger, refresh_every_s=3600)
    await rec.refresh_now()
    assert ledger.spent(key_id) == 4_000
    assert ledger.available(key_id, 10_000) == 6_000


async def test_a_refresh_never_reads_between_an_outside_commit_and_its_ledger_update(
        engine: AsyncEngine, ledger: CountingLedger) -> None:
    # A task's hold is committed outside the group commit and then taken into the ledger; a refresh that
    # read the balance in between would count it twice (read back, then added).
    key_id = await _key(engine, "held")
    recorder = Recorder(engine, ledger, refresh_every_s=10)
    reservation = ledger.reserve(key_id, 1_000, 100)
    assert reservation is not None
    async with recorder.outside_commit():
        async with engine.begin() as conn:
            await conn.execute(sa.update(api_keys).where(api_keys.c.id == key_id).values(used_nano=100))
        refresh = asyncio.create_task(recorder.refresh_now())
        await asyncio.sleep(0.2)
        assert not refresh.done()  # it waits for the ledger's update
        ledger.charge_committed(reservation, 100)
    await refresh
    assert ledger.spent(key_id) == 100
    assert ledger.available(key_id, 1_000) == 900
