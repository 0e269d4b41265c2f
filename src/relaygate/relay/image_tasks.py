"""Async image tasks: ``?async=true`` on generations and edits (spec/images-async.md §3).

Submit checks the request like a synchronous call, reserves what ``n`` images would cost and stores
the task with that hold (and an edit's files) in one transaction, then answers ``{"task_id": ...}``;
nothing goes upstream before the task is stored. The hold passes only while the key's quota in the
database covers it (``store.insert_task``), so it is exact across processes and instances.
The engine runs the task in whichever process takes its lease, through the same relay as a
synchronous call, and ends it in one transaction with its usage record: settled at the actual cost on
success, refunded on failure, timeout, or when it was interrupted ``task_max_runs`` times. The client's
webhook, if any, then receives the task as ``GET /v1/images/tasks/{id}`` shows it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

import orjson

from relaygate.auth.records import KeyRecord
from relaygate.billing.rules import EndReason
from relaygate.core.images import ImageJob, ImageOperation
from relaygate.dialects.openai.images import check_image_request
from relaygate.errors import GatewayError, InsufficientQuota, NotFound, UpstreamTimeout
from relaygate.meter.call import Call, task_call
from relaygate.relay.images import ImagesRelay, bill_for, estimated_usage
from relaygate.relay.multipart import ImageForm
from relaygate.relay.services import Services
from relaygate.tasks import store
from relaygate.tasks.engine import TaskEngine
from relaygate.tasks.store import Lease, Row, StoredFile, now_ms
from relaygate.tasks.webhook import check_webhook_url
from relaygate.upstream.attempt import AccountingUnavailable, Failure

log = logging.getLogger("relaygate.tasks")

KIND = "image"
SURFACE = "openai.images"


class ImageTasks:
    """Submits image tasks, shows them to their owner, and runs them (the engine's ``TaskKind``
    ``image``)."""

    name = KIND

    def __init__(self, services: Services, relay: ImagesRelay) -> None:
        self._services = services
        self._relay = relay
        self._meter = services.meter
        self.engine: TaskEngine | None = None  # set by the app once the engine exists

    # --- submit -------------------------------------------------------------------------------------

    async def submit(self, call: Call, job: ImageJob, form: ImageForm | None, webhook: str | None) -> str:
        """Store the task with its hold; its id. ``webhook``: where to deliver it once final."""
        if webhook is not None:
            check_webhook_url(webhook, allow_private=self._services.settings.allow_private_webhooks)
        self._relay.candidates(call)  # the model must be served now, or the submit is refused
        hold = self._relay.admit(call, job)
        task_id = os.urandom(16).hex()
        now = now_ms()
        settings = self._services.settings
        row = {
            "id": task_id, "kind": KIND, "action": job.operation.value, "request_id": call.request_id,
            "client_request_id": call.client_request_id,
            "key_id": call.key.id, "key_name": call.key.name, "model": call.model, "status": "SUBMITTED",
            "progress": "0%", "request": {"operation": job.operation.value, "params": job.params},
            "client_ip": call.client_ip, "webhook": webhook, "webhook_attempts": 0, "hold_nano": hold,
            "cost_nano": 0, "runs": 0, "due_ms": now, "lease_until_ms": 0, "submit_ms": now,
            "deadline_ms": now + int(settings.task_timeout_s * 1000), "updated_ms": now,
        }
        files = [StoredFile(*f) for f in form.file_tuples()] if form is not None else []
        try:
            await self._meter.hold(call, hold, lambda: store.insert_task(self._services.engine, row, files))
        except InsufficientQuota:  # other processes' holds used the quota this process did not see yet
            raise
        except Exception as exc:
            log.error("could not store an image task: %s", type(exc).__name__)
            raise AccountingUnavailable("The task could not be stored; it was not billed.") from exc
        self._meter.hand_over_to_task(call)
        if self.engine is not None:
            self.engine.wake()
        return task_id

    # --- queries ------------------------------------------------------------------------------------

    async def get(self, key: KeyRecord, task_id: str) -> dict[str, Any]:
        """The key's own task as ``GET /v1/images/tasks/{id}`` shows it (new-api's envelope). A foreign
        task is answered exactly like an unknown one: ids must not be probeable."""
        row = await store.get(self._services.engine, task_id) if len(task_id) <= 64 else None
        if row is None or row["kind"] != KIND or row["key_id"] != key.id:
            raise NotFound(f"No image task with the id '{task_id[:64]}'.", param="task_id", code="task_not_found")
        return task_envelope(row)

    # --- run (the engine's TaskKind) ------------------------------------------------------------------

    def needs_work(self, task: Row) -> bool:
        return task["status"] not in store.FINAL_STATUSES  # a final task is due only for its webhook

    def webhook_body(self, task: Row) -> bytes:
        return orjson.dumps(task_envelope(task))

    async def work(self, task: Row, lease: Lease) -> None:
        now = now_ms()
        if now >= task["deadline_ms"]:
            await self._end(task, lease, self._call(task),
                            Failure(UpstreamTimeout("The task did not finish in time."), EndReason.TIMEOUT))
            return
        if task["runs"] >= self._services.settings.task_max_runs:
            error = GatewayError("The task was interrupted too many times (restarts); it was refunded.",
                                 code="task_interrupted")
            await self._end(task, lease, self._call(task), Failure(error, EndReason.UPSTREAM_ERROR))
            return
        started = {"status": "IN_PROGRESS", "progress": "10%", "runs": task["runs"] + 1, "updated_ms": now,
                   "start_ms": task["start_ms"] or now}
        if not await store.update(self._services.engine, lease, started):
            return
        task.update(started)
        await self._make(task, lease)

    def _call(self, task: dict[str, Any]) -> Call:
        call = task_call(self._services.snapshots.current.keys_by_id, task, SURFACE, dict(task["request"]["params"]))
        self._meter.price_at(call, self._services.snapshots.current.prices.lookup(task["model"]))
        return call

    async def _make(self, task: dict[str, Any], lease: Lease) -> None:
        call = self._call(task)
        job = job_from_task(task)
        form = None
        if job.multipart:
            stored = await store.files(self._services.engine, task["id"])
            form = ImageForm.build(job.params, ((f.name, f.filename, f.content_type, f.data) for f in stored))
        try:
            remaining_s = max(0.001, (task["deadline_ms"] - now_ms()) / 1000)
            async with asyncio.timeout(remaining_s):
                candidates = self._relay.candidates(call)
                outcome = await self._relay.make(call, job, form, candidates)
        except GatewayError as exc:
            outcome = Failure(exc, EndReason.NO_CHANNEL)
        except TimeoutError:
            outcome = Failure(UpstreamTimeout("The task did not finish in time."), EndReason.TIMEOUT)
        finally:
            if form is not None:
                form.close()
        await self._end(task, lease, call, outcome, job)

    async def _end(self, task: dict[str, Any], lease: Lease, call: Call, outcome: Any,
                   job: ImageJob | None = None) -> None:
        """Make the task final and bill it, once, then deliver its webhook."""
        now = now_ms()
        values: dict[str, Any] = {"finish_ms": now, "updated_ms": now, "hold_nano": 0, "lease_owner": None,
                                  "lease_until_ms": 0, "channel_id": call.channel.id if call.channel else None}
        if isinstance(outcome, Failure):
            record = self._meter.account(call, outcome.reason, status=outcome.error.status,
                                         error_code=outcome.error.code, span_ms=(task["submit_ms"], now))
            values.update(status="FAILURE", fail_reason=str(outcome.error), progress=task["progress"])
        else:
            assert job is not None
            record = self._meter.account(call, EndReason.DONE, status=200, usage=outcome.usage,
                                         delivered=True, estimated=estimated_usage(job, outcome),
                                         image=bill_for(job, outcome.images), span_ms=(task["submit_ms"], now))
            values.update(status="SUCCESS", progress="100%", result=orjson.loads(outcome.payload))
        values["cost_nano"] = record.cost_nano
        if task["webhook"]:
            values.update(webhook_state="pending", due_ms=now)
        else:
            values["due_ms"] = None

        async def finish(delta: int) -> bool:
            return await store.finish(self._services.engine, lease, values, record, delta)

        if not await self._meter.end_task(record, task["hold_nano"], finish):
            return
        if task["webhook"] and self.engine is not None:
            self.engine.wake()  # the webhook is delivered as the task's next piece of work


def job_from_task(task: dict[str, Any]) -> ImageJob:
    """The job as it was checked at submit (the same checks pass again: the request is the same)."""
    request = task["request"]
    operation = ImageOperation(request["operation"])
    return check_image_request(operation, request["params"], form=operation is not ImageOperation.GENERATE)


def task_envelope(task: dict[str, Any]) -> dict[str, Any]:
    """new-api's task envelope (spec/images-async.md §3); times in unix seconds."""
    return {"code": "success", "message": "", "data": {
        "task_id": task["id"], "action": task["action"], "status": task["status"],
        "fail_reason": task["fail_reason"] or "", "submit_time": _seconds(task["submit_ms"]),
        "start_time": _seconds(task["start_ms"]), "finish_time": _seconds(task["finish_ms"]),
        "progress": task["progress"], "data": task["result"],
    }}


def _seconds(ms: int | None) -> int:
    return 0 if ms is None else ms // 1000
