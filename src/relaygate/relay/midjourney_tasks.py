"""Following Midjourney tasks until they end: batch polls of each channel's upstream, the upstream's
own callbacks, timeouts, settlement, and the client's ``notifyHook``.

Polling is shared by every process through one named lease per channel (``mj-poll:<channel id>``,
``tasks/poller.py``): whoever holds it polls that channel every ``mj_poll_s``, asking for all of its
unfinished tasks with ``POST /mj/task/list-by-condition`` in batches.

Every observed change (status, progress, image, buttons) is applied only if it moves the task forward
(spec §7 order), so a late poll cannot undo a callback. The end of a task is one transaction (status,
usage record, ``cost − hold`` on the key) that only a task not yet final passes: a success keeps what
was charged at submit, a failure or a timeout refunds it, once. When the task has a ``notifyHook``, each
change leaves it due for the task engine, which delivers the task as its owner sees it. A task a
process left in the pre-submit status (``relay/midjourney_holds.py``) falls due for the engine too,
which ends it refunded.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from relaygate.billing.rules import EndReason
from relaygate.core.wire import loads_or_none
from relaygate.dialects.midjourney.codes import FINAL_STATUSES, status_rank
from relaygate.dialects.midjourney.task import scrubbed_task
from relaygate.errors import GatewayError
from relaygate.meter.call import Call, task_call
from relaygate.providers.registry import midjourney_provider_for
from relaygate.relay.midjourney import KIND, SURFACE, MidjourneyRelay
from relaygate.relay.midjourney_holds import SUBMITTING
from relaygate.relay.services import Services
from relaygate.routing.records import ChannelRecord
from relaygate.scrub import NO_CHANNEL
from relaygate.tasks import store
from relaygate.tasks.engine import TaskEngine
from relaygate.tasks.store import Lease, Row, now_ms
from relaygate.upstream.attempt import Failure, Wait

log = logging.getLogger("relaygate.tasks")

BATCH = 100  # ids per list-by-condition request
_WATCHED = ("status", "progress", "imageUrl", "imageUrls", "videoUrl", "videoUrls", "buttons", "failReason",
            "finishTime")


class MidjourneyTasks:
    """Follows Midjourney tasks: the poller's ``PolledKind`` (batch queries per channel), the upstreams'
    callbacks, and the engine's ``TaskKind`` ``midjourney`` (a left-behind submit's refund, the client's
    notifyHook)."""

    name = KIND
    lease_prefix = "mj-poll"

    def __init__(self, services: Services, relay: MidjourneyRelay) -> None:
        self._services = services
        self._relay = relay
        self.engine: TaskEngine | None = None

    # --- polling (the poller's PolledKind) ----------------------------------------------------------

    async def poll_channel(self, channel_id: int, tasks: list[Row]) -> None:
        now = now_ms()
        live: list[Row] = []
        for task in tasks:
            if now >= task["deadline_ms"]:
                await self.end(task, None, "FAILURE", "The task did not finish in time.", EndReason.TIMEOUT)
            elif task["upstream_task_id"]:
                live.append(task)
        channel = self._services.snapshots.current.channels.get(channel_id)
        if channel is None or not live:
            return
        for start in range(0, len(live), BATCH):
            batch = live[start:start + BATCH]
            found = await self._list(channel, [t["upstream_task_id"] for t in batch])
            if found is None:
                return
            for task in batch:
                upstream = found.get(task["upstream_task_id"])
                if upstream is not None:
                    await self.apply(task, upstream)

    async def _list(self, channel: ChannelRecord, upstream_ids: list[str]) -> dict[str, dict[str, Any]] | None:
        api = midjourney_provider_for(channel.type)
        if api is None:  # the channel's type was changed: its tasks end at their deadline
            log.warning("midjourney channel %s no longer serves Midjourney; its tasks are not polled", channel.name)
            return None
        payload = await self._relay.call_upstream(channel, api.list_request(channel, upstream_ids), Wait.POLL)
        if isinstance(payload, Failure):
            log.warning("midjourney channel %s could not be polled: %s (HTTP %s)", channel.name, payload.error.code,
                        payload.error.status)
            return None
        listed = loads_or_none(payload)
        if not isinstance(listed, list):
            log.warning("midjourney channel %s answered its poll with something else than a task list", channel.name)
            return None
        return {str(t["id"]): t for t in listed if isinstance(t, dict) and t.get("id") is not None}

    # --- applying what the upstream says ------------------------------------------------------------

    async def apply(self, task: Row, upstream: dict[str, Any]) -> None:
        """Take an upstream task object (from a poll or a callback) into the task, if it moves it on. It is
        scrubbed with its channel's scrubber first: what is stored is what a client may see."""
        channel = self._services.snapshots.current.channels.get(task["channel_id"] or -1)
        upstream = scrubbed_task(upstream, channel.scrubber if channel is not None else NO_CHANNEL)
        status = upstream.get("status")
        if not isinstance(status, str) or not status:
            return
        progress = upstream.get("progress") if isinstance(upstream.get("progress"), str) else task["progress"]
        old_rank = status_rank(task["status"], task["progress"])
        new_rank = status_rank(status, progress)
        if new_rank < old_rank:
            return  # an older answer than what we know (a late poll after a callback)
        if status == "MODAL" and (task["request"] or {}).get("modal_request_id"):
            return  # the modal was confirmed: a MODAL answer is from before the confirmation
        previous = task["result"] or {}
        if new_rank == old_rank and all(previous.get(k) == upstream.get(k) for k in _WATCHED):
            return
        if status in FINAL_STATUSES:
            reason = EndReason.DONE if status == "SUCCESS" else EndReason.UPSTREAM_ERROR
            fail = upstream.get("failReason") if status != "SUCCESS" else None
            await self.end(task, upstream, status, str(fail or ("cancelled" if status == "CANCEL" else "")), reason)
            return
        now = now_ms()
        values: dict[str, Any] = {"status": status, "progress": progress or "0%", "result": upstream,
                                  "updated_ms": now}
        if status == "IN_PROGRESS" and task["start_ms"] is None:
            values["start_ms"] = _int_or(upstream.get("startTime"), now)
        if task["webhook"]:
            values.update(webhook_state="pending", due_ms=now)
        if await store.update_open(self._services.engine, task["id"], values) and task["webhook"]:
            self._wake()

    async def end(self, task: Row, upstream: dict[str, Any] | None, status: str, fail_reason: str,
                  reason: EndReason) -> None:
        """Make the task final and settle it (keep the charge on success, refund otherwise), once."""
        now = now_ms()
        call = self._call_for(task)
        success = status == "SUCCESS"
        record = self._relay.meter.account(call, reason, status=200 if success else 502, delivered=success,
                                           charged=task["hold_nano"], span_ms=(task["submit_ms"], now),
                                           error_code=None if success else ("timeout" if reason is EndReason.TIMEOUT
                                                                             else "task_failed"))
        values: dict[str, Any] = {
            "status": status, "progress": "100%" if success else (task["progress"] if upstream is None
                                                                   else str(upstream.get("progress") or "")),
            "fail_reason": None if success else fail_reason, "finish_ms": now, "updated_ms": now,
            "hold_nano": 0, "cost_nano": record.cost_nano,
            "result": upstream if upstream is not None else task["result"],
        }
        if task["start_ms"] is None:
            values["start_ms"] = now
        values.update({"webhook_state": "pending", "due_ms": now} if task["webhook"] else {"due_ms": None})

        async def finish(delta: int) -> bool:
            return await store.finish(self._services.engine, task["id"], values, record, delta)

        if not await self._relay.meter.end_task(record, task["hold_nano"], finish):
            return
        if task["webhook"]:
            self._wake()

    def _call_for(self, task: Row) -> Call:
        call = task_call(self._services.snapshots.current.keys_by_id, task, SURFACE, {})
        self._relay.meter.price_at(call, self._relay.price(task["model"]))
        call.channel = self._services.snapshots.current.channels.get(task["channel_id"] or -1)
        call.upstream_model = task["model"]
        call.attempts = 1
        return call

    def _wake(self) -> None:
        if self.engine is not None:
            self.engine.wake()

    # --- callbacks ----------------------------------------------------------------------------------

    async def callback(self, channel_id: int, upstream: dict[str, Any]) -> bool:
        """An upstream's notifyHook call; False when it names no task of that channel."""
        upstream_id = upstream.get("id")
        if not isinstance(upstream_id, str | int):
            return False
        task = await store.by_upstream_id(self._services.engine, channel_id, str(upstream_id))
        if task is None or task["kind"] != KIND:
            return False
        if task["finish_ms"] is None:
            await self.apply(task, upstream)
        return True

    # --- the engine's TaskKind: a left-behind submit, the client's notifyHook -----------------------

    def needs_work(self, task: Row) -> bool:
        return bool(task["status"] == SUBMITTING)  # any other due task is due for its notifyHook

    async def work(self, task: Row, lease: Lease) -> None:
        """A submit left behind by a process that died before the upstream's answer was taken in: refunded."""
        error = GatewayError("The submit was interrupted before the upstream's answer was taken in; "
                             "it was refunded.", code="task_interrupted")
        await self._relay.holds.abandon(self._call_for(task), task["id"], task["hold_nano"],
                                        Failure(error, EndReason.UPSTREAM_ERROR), lease)

    def webhook_body(self, task: Row) -> bytes:
        origin = (task["request"] or {}).get("origin")  # where the client submitted it (signed media links)
        return orjson.dumps(self._relay.render(task, origin))


def _int_or(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default

