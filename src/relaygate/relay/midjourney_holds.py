"""A Midjourney submit's task row and its hold, stored before the upstream is asked (docs/midjourney.md).

A submit that makes a task is stored first, in the pre-submit status ``SUBMITTING`` that no client
sees, with the action's price as its hold: charged to the key by ``tasks/store.py``'s conditional
update, so quota holds across processes and instances; the meter takes the hold, and every later
change of it, into its ledger (``meter/holds.py``). Only then is the submit sent. An accepted
submit turns the row into the client's task; a refusal or a failure ends it with a full refund and the
call's one usage record. A row left behind in ``SUBMITTING`` (the process died mid-submit) falls due
for the task engine after ``sweep_after_ms`` and is ended the same way.

A modal confirmation continues its parent task: the amount is added to the parent's hold (as
conditionally) before the upstream is asked, and taken back if the upstream refuses.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

from relaygate.errors import InsufficientQuota
from relaygate.meter.call import Call
from relaygate.meter.meter import Meter
from relaygate.relay.services import Services
from relaygate.settings import Settings
from relaygate.tasks import store
from relaygate.tasks.store import Lease
from relaygate.upstream.attempt import AccountingUnavailable, Failure

log = logging.getLogger("relaygate.midjourney")

SUBMITTING = "SUBMITTING"
_FREE_ID_TRIES = 5


def sweep_after_ms(settings: Settings) -> int:
    """How long a submit may take before its ``SUBMITTING`` row counts as left behind: every candidate's
    connect and first-byte timeouts, twice over, and a minute."""
    per_attempt = settings.connect_timeout_s + settings.first_byte_timeout_s
    return int(2 * settings.max_attempts * per_attempt * 1000) + 60_000


class TaskHolds:
    def __init__(self, services: Services, meter: Meter) -> None:
        self._services = services
        self._meter = meter

    async def store(self, call: Call, row: Mapping[str, Any], new_id: Callable[[int], str]) -> str:
        """Store the pre-submit task (``row`` without its ``id``; ``new_id(now)`` makes one) with its hold.
        Raises ``InsufficientQuota`` when the key's quota does not cover the hold, ``AccountingUnavailable``
        when the task cannot be stored; nothing is held then."""
        now = now_ms()
        try:
            return await self._meter.hold(call, row["hold_nano"], lambda: self._insert(row, new_id, now))
        except (InsufficientQuota, AccountingUnavailable):
            raise
        except Exception as exc:
            log.error("could not store a midjourney task: %s", type(exc).__name__)
            raise AccountingUnavailable("The task could not be stored; it was not billed.") from exc

    async def _insert(self, row: Mapping[str, Any], new_id: Callable[[int], str], now: int) -> str:
        for _ in range(_FREE_ID_TRIES):
            task_id = new_id(now)
            if await store.get(self._services.engine, task_id) is None:
                await store.insert_task(self._services.engine, {
                    **row, "id": task_id, "status": SUBMITTING, "due_ms": now + sweep_after_ms(self._services.settings),
                    "submit_ms": now, "updated_ms": now})
                return task_id
        raise AccountingUnavailable("No free task id could be found; retry.")

    async def accept(self, task_id: str, values: Mapping[str, Any]) -> None:
        """The upstream accepted: the row becomes the client's task (``values``: status, upstream id, channel)."""
        values = {**values, "due_ms": None, "updated_ms": now_ms()}
        try:
            accepted = await store.update_open(self._services.engine, task_id, values, expect_status=SUBMITTING)
        except Exception as exc:  # the row stays SUBMITTING: the sweep refunds it
            log.error("could not store an accepted midjourney task: %s", type(exc).__name__)
            accepted = False
        if not accepted:  # or the sweep ended it meanwhile (a submit slower than sweep_after_ms): refunded
            raise AccountingUnavailable("The task could not be stored; it was not billed.")

    async def abandon(self, call: Call, task_id: str, hold: int, failure: Failure, lease: Lease | None = None) -> None:
        """End a task the upstream never accepted: refunded, with the call's one usage record."""
        record = self._meter.account(call, failure.reason, status=failure.error.status,
                                     error_code=failure.error.code, charged=hold)
        now = now_ms()
        values = {"status": "FAILURE", "fail_reason": failure.error.message, "finish_ms": now, "updated_ms": now,
                  "hold_nano": 0, "cost_nano": record.cost_nano, "due_ms": None, "lease_owner": None,
                  "lease_until_ms": 0, "channel_id": call.channel.id if call.channel else None}

        async def finish(delta: int) -> bool:
            return await store.finish(self._services.engine, lease or task_id, values, record, delta,
                                      expect_status=SUBMITTING)

        try:
            await self._meter.end_task(record, hold, finish)
        except Exception as exc:  # the row stays SUBMITTING; the sweep ends it later
            log.error("could not end a refused midjourney task: %s", type(exc).__name__)

    async def hold_modal(self, call: Call, parent_id: str, amount: int) -> bool:
        """Charge a modal's amount to its parent while the parent waits for it (status MODAL); False when it
        does not. Raises ``InsufficientQuota`` when the key's quota does not cover it."""
        async def add() -> None:
            if not await store.add_hold(self._services.engine, parent_id, call.key.id, amount, "MODAL"):
                raise _NotWaiting

        try:
            await self._meter.hold(call, amount, add)
        except _NotWaiting:
            return False
        except InsufficientQuota:
            raise
        except Exception as exc:
            raise AccountingUnavailable("The task could not be stored; it was not billed.") from exc
        return True

    async def release_modal(self, call: Call, parent_id: str, amount: int) -> None:
        """The upstream refused the modal: take its amount back from the parent and the key."""
        try:
            await self._meter.release_hold(call.key.id, amount, lambda: store.drop_hold(
                self._services.engine, parent_id, call.key.id, amount))
        except Exception as exc:  # the parent's end refunds or keeps its whole hold, this amount included
            log.error("could not release a refused modal's hold: %s", type(exc).__name__)


class _NotWaiting(Exception):
    """The modal's parent no longer waits for it (not MODAL): nothing was held."""


def now_ms() -> int:
    return int(time.time() * 1000)
