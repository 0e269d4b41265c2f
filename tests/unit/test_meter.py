"""meter: each of its operations moves the money once, and exactly: admission, refusal, task holds
(taken, released on failure, ended, given back in part) and the record of a call's end."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from types import SimpleNamespace
from typing import Any

import pytest

from relaygate.auth.records import KeyRecord
from relaygate.billing.ledger import Ledger
from relaygate.billing.pricing import ImageBill, Price, PriceTable
from relaygate.billing.rules import EndReason
from relaygate.core.usage import Usage
from relaygate.errors import InsufficientQuota
from relaygate.meter.call import Call
from relaygate.meter.meter import Meter
from relaygate.storage.recorder import UsageRecord

QUOTA = 1_000_000
PER_CALL = Price(pattern="flat", per_call=300_000)
PER_IMAGE = Price(pattern="image", per_image=(("default", 40_000),))


class _Recorder:
    """The recorder's two doors the meter uses: the group commit, and changes made outside it."""

    def __init__(self) -> None:
        self.written: list[UsageRecord] = []
        self.outside = 0

    async def write(self, record: UsageRecord) -> None:
        self.written.append(record)

    @contextlib.asynccontextmanager
    async def outside_commit(self) -> AsyncIterator[None]:
        self.outside += 1
        yield


class _Log:
    def __init__(self) -> None:
        self.lines: list[dict[str, Any]] = []

    def write(self, fields: dict[str, Any]) -> None:
        self.lines.append(fields)


@pytest.fixture
def ledger() -> Ledger:
    return Ledger()


@pytest.fixture
def recorder() -> _Recorder:
    return _Recorder()


@pytest.fixture
def log() -> _Log:
    return _Log()


@pytest.fixture
def meter(ledger: Ledger, recorder: _Recorder, log: _Log) -> Meter:
    snapshots = SimpleNamespace(current=SimpleNamespace(prices=PriceTable([PER_CALL, PER_IMAGE])))
    return Meter(ledger, recorder, log, snapshots, reject_unpriced=True)  # type: ignore[arg-type]


def _call(model: str = "flat", quota: int | None = QUOTA) -> Call:
    key = KeyRecord(id=7, name="k", key_hash="h", quota_nano=quota)
    return Call(request_id="req_1", surface="openai", model=model, stream=False, key=key, client_ip=None, body={},
                client_request_id=None)


def test_admission_reserves_and_the_end_settles_once(meter: Meter, ledger: Ledger) -> None:
    call = _call()
    assert meter.price_and_reserve(call, input_tokens=10, output_tokens=10) == 300_000
    assert ledger.available(7, QUOTA) == 700_000
    record = meter.account(call, EndReason.DONE, status=200, delivered=True)
    assert call.finished and record.cost_nano == 300_000
    assert ledger.spent(7) == 300_000 and ledger.available(7, QUOTA) == 700_000


def test_a_refused_call_gives_its_reservation_back_and_writes_nothing(
        meter: Meter, ledger: Ledger, recorder: _Recorder, log: _Log) -> None:
    call = _call()
    meter.price_and_reserve(call, input_tokens=1, output_tokens=1)
    meter.refuse(call)
    assert call.finished and ledger.available(7, QUOTA) == QUOTA and ledger.spent(7) == 0
    assert recorder.written == [] and log.lines == []


async def test_finish_records_a_call_once(meter: Meter, recorder: _Recorder, log: _Log) -> None:
    call = _call()
    meter.price_and_reserve(call, input_tokens=1, output_tokens=1)
    await meter.finish(call, EndReason.DONE, status=200, delivered=True)
    await meter.finish(call, EndReason.UPSTREAM_ERROR, status=502)
    assert [r.end_reason for r in recorder.written] == ["done"] and len(log.lines) == 1


def test_reserve_at_a_price_the_use_case_chose(meter: Meter, ledger: Ledger) -> None:
    call = _call(model="mj_imagine")
    assert meter.reserve_at(call, Price(pattern="mj_imagine", per_call=QUOTA)) == QUOTA
    assert ledger.available(7, QUOTA) == 0
    with pytest.raises(InsufficientQuota):
        meter.reserve_at(_call(model="mj_imagine"), Price(pattern="mj_imagine", per_call=1))


async def test_a_stored_hold_becomes_committed_spend(meter: Meter, ledger: Ledger, recorder: _Recorder) -> None:
    call = _call()
    hold = meter.price_and_reserve(call, input_tokens=1, output_tokens=1)

    async def store() -> str:
        return "task-1"

    assert await meter.hold(call, hold, store) == "task-1"
    meter.hand_over_to_task(call)
    assert call.finished and recorder.outside == 1
    assert ledger.spent(7) == hold and ledger.available(7, QUOTA) == QUOTA - hold
    meter.release(call)  # the reservation is closed: nothing more to give back
    assert ledger.spent(7) == hold


async def test_a_hold_that_cannot_be_stored_releases_the_reservation(meter: Meter, ledger: Ledger) -> None:
    call = _call()
    hold = meter.price_and_reserve(call, input_tokens=1, output_tokens=1)

    async def store() -> None:
        raise InsufficientQuota("the database says no")

    with pytest.raises(InsufficientQuota):
        await meter.hold(call, hold, store)
    assert ledger.spent(7) == 0 and ledger.available(7, QUOTA) == QUOTA and not call.finished


async def test_a_task_end_settles_cost_minus_hold_only_when_the_task_ends_here(
        meter: Meter, ledger: Ledger, log: _Log) -> None:
    ledger.refreshed({7: 80_000})  # two images held at submit, committed
    deltas: list[int] = []

    async def finish(delta: int) -> bool:
        deltas.append(delta)
        return len(deltas) == 1  # a second end is refused by the store: the task is final already

    call = _call(model="image", quota=None)
    meter.price_at(call, PER_IMAGE)
    record = meter.account(call, EndReason.DONE, status=200, delivered=True, image=ImageBill(1),
                           span_ms=(1_000, 4_500))
    assert (record.cost_nano, record.images, record.created_at_ms, record.latency_ms) == (40_000, 1, 1_000, 3_500)
    assert await meter.end_task(record, 80_000, finish)
    assert not await meter.end_task(record, 80_000, finish)
    assert deltas == [-40_000, -40_000] and ledger.spent(7) == 40_000 and len(log.lines) == 1


async def test_a_failed_task_is_refunded_whole(meter: Meter, ledger: Ledger) -> None:
    ledger.refreshed({7: 300_000})
    call = _call(quota=None)
    meter.price_at(call, PER_CALL)
    record = meter.account(call, EndReason.UPSTREAM_ERROR, status=502, charged=300_000, usage=Usage())

    async def finish(delta: int) -> bool:
        return True

    assert record.cost_nano == 0
    assert await meter.end_task(record, 300_000, finish)
    assert ledger.spent(7) == 0


async def test_part_of_a_hold_given_back(meter: Meter, ledger: Ledger) -> None:
    ledger.refreshed({7: 500})

    async def dropped() -> bool:
        return True

    async def not_dropped() -> bool:
        return False

    assert not await meter.release_hold(7, 200, not_dropped)
    assert ledger.spent(7) == 500
    assert await meter.release_hold(7, 200, dropped)
    assert ledger.spent(7) == 300
