"""Task holds: money a stored task holds on its key, in the database, until the task ends.

A task's hold is added to the key's spend by a conditional update in the transaction that stores the
task (``tasks/store.py``), so the quota holds exactly across processes; the ledger takes each committed
change in once. Every such change, and the ledger's update for it, happen inside the recorder's
``outside_commit``, so that no re-read of the balances falls between the two (docs/billing.md).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from relaygate.meter.books import Books
from relaygate.meter.call import Call
from relaygate.storage.recorder import UsageRecord

T = TypeVar("T")


class Holds(Books):
    async def hold(self, call: Call, amount: int, store: Callable[[], Awaitable[T]]) -> T:
        """Take ``amount`` as the call's task hold: ``store()`` writes the task (or adds to one) with that
        hold in one transaction, raising when it cannot (``InsufficientQuota`` when the key's quota in the
        database does not cover it). When it returns, the call's reservation becomes that committed spend;
        when it raises, the reservation is released and the error raised. Returns what ``store`` returned."""
        async with self._recorder.outside_commit():
            try:
                stored = await store()
            except BaseException:
                self.release(call)
                raise
            if call.reservation is not None:
                self._ledger.charge_committed(call.reservation, amount)
        return stored

    async def end_task(self, record: UsageRecord, hold: int, finish: Callable[[int], Awaitable[bool]]) -> bool:
        """Settle a task that ended, with its one usage record (``account``): ``finish(delta)`` makes the
        task final, stores the record and adds ``delta`` (its cost minus its hold: what is owed beyond the
        hold, or the refund) to the key's spend, in one transaction that only a task not yet final passes.
        False when it did not pass (another process ended the task first): nothing changes then."""
        delta = record.cost_nano - hold
        async with self._recorder.outside_commit():
            if not await finish(delta):
                return False
            if record.key_id is not None:
                self._ledger.adjust_committed(record.key_id, delta)
        self._log(record)
        return True

    async def release_hold(self, key_id: int, amount: int, drop: Callable[[], Awaitable[bool]]) -> bool:
        """Give back ``amount`` of a task's hold (a Midjourney modal the upstream refused): ``drop()`` takes
        it from the task and the key's spend in one transaction, False when it did not (the task ended
        meanwhile, and its end settled the amount with the rest)."""
        async with self._recorder.outside_commit():
            if not await drop():
                return False
            self._ledger.adjust_committed(key_id, -amount)
        return True
