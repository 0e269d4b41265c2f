"""The Midjourney use case: submits relayed to the operator's midjourney-proxy upstreams, every task
kept in relaygate's task table, queries served from it (spec/midjourney.md; docs/midjourney.md).

A submit is checked (``dialects/midjourney/requests.py``), priced per action (``mj_imagine``... the
operator's price, else the spec's default), and sent to a Midjourney channel that serves the action's
price name — or, for a follow-up (action, modal, change), to the channel that made the parent task,
with the parent's upstream id. Before anything is sent, the task is stored with the action's price as
its hold (``relay/midjourney_holds.py``: charged only while the key's quota in the database covers
it). An accepted submit (code 1, 21, 22) makes that row the client's task, settled or refunded, once,
when it ends (``relay/midjourney_tasks.py`` follows it); a refused submit (code 3, 4, 23, 24...) ends it
refunded and is relayed with a matching HTTP status: it costs nothing.

Clients see relaygate's own task ids, never the upstream's: ids are only meaningful to their owner
key, and a follow-up can be routed without trusting an id the client made up.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from relaygate.auth.gate import check_model
from relaygate.auth.records import KeyRecord
from relaygate.billing.money import usd_to_nano
from relaygate.billing.pricing import Price
from relaygate.billing.rules import EndReason
from relaygate.core.wire import loads_or_none
from relaygate.dialects.midjourney import codes
from relaygate.dialects.midjourney.errors import upstream_http_status
from relaygate.dialects.midjourney.pricing import DEFAULT_PRICES_USD
from relaygate.dialects.midjourney.requests import Endpoint, MjSubmit
from relaygate.dialects.midjourney.task import (
    client_task,
    filtered_properties,
    rewrite_media,
    scrubbed_task,
    submit_result,
)
from relaygate.errors import (
    InvalidRequest,
    NoChannelAvailable,
    NotFound,
    UpstreamError,
    UpstreamRejected,
)
from relaygate.infra.signed_media import SignedLinks
from relaygate.meter.call import Call
from relaygate.meter.meter import Meter
from relaygate.providers.base import Ability, MidjourneyApi, UpstreamRequest
from relaygate.providers.registry import midjourney_provider_for
from relaygate.relay.midjourney_holds import SUBMITTING, TaskHolds
from relaygate.relay.services import Services
from relaygate.routing.records import ChannelRecord
from relaygate.scrub import NO_CHANNEL, Scrubber
from relaygate.tasks import store
from relaygate.tasks.store import Row
from relaygate.tasks.webhook import check_webhook_url
from relaygate.upstream.attempt import Failure, Upstream, Wait, accounted
from relaygate.upstream.failover import finish_failed, try_in_order

KIND = "midjourney"
SURFACE = "midjourney"

PATHS: Mapping[Endpoint, str] = {
    Endpoint.IMAGINE: "/mj/submit/imagine", Endpoint.ACTION: "/mj/submit/action",
    Endpoint.BLEND: "/mj/submit/blend", Endpoint.MODAL: "/mj/submit/modal",
    Endpoint.DESCRIBE: "/mj/submit/describe", Endpoint.SHORTEN: "/mj/submit/shorten",
    Endpoint.SWAP_FACE: "/mj/insight-face/swap", Endpoint.VIDEO: "/mj/submit/video",
    Endpoint.UPLOAD: "/mj/submit/upload-discord-images", Endpoint.CHANGE: "/mj/submit/change",
    Endpoint.SIMPLE_CHANGE: "/mj/submit/simple-change", Endpoint.EDITS: "/mj/submit/edits",
}
# Parents a legacy change may act on (MJP-OSS).
_CHANGEABLE = ("IMAGINE", "VARIATION", "REROLL", "BLEND")
_ACCEPTED = (codes.SUCCESS, codes.EXISTED, codes.IN_QUEUE)


class MjRefused(UpstreamRejected):
    """The upstream refused a submit with its own result code: relayed as it said it (its description and
    properties scrubbed with the channel's scrubber), unbilled."""

    def __init__(self, status: int, answer: Mapping[str, Any], scrubber: Scrubber) -> None:
        description = answer.get("description")
        super().__init__(status, scrubber, message=description if isinstance(description, str) and description
                         else "The upstream refused the task.", code="upstream_refused")
        raw_code = answer.get("code")
        self.answer = submit_result(raw_code if isinstance(raw_code, int) else codes.FAILURE, self.message, None,
                                    _properties(answer, scrubber))


@dataclass(slots=True)
class Answer:
    status: int
    body: Any


@dataclass(slots=True)
class _Accepted:
    answer: dict[str, Any]


class MidjourneyRelay:
    def __init__(self, services: Services, links: SignedLinks) -> None:
        self._services = services
        self._meter = services.meter
        self._links = links
        self._upstream = Upstream.of(services.health, services.http, services.settings)
        self._callback_key = services.box.signing_key("mj-callback")
        self._holds = TaskHolds(services, self._meter)

    @property
    def holds(self) -> TaskHolds:
        return self._holds

    @property
    def meter(self) -> Meter:
        return self._meter

    async def call_upstream(self, channel: ChannelRecord, request: UpstreamRequest,
                            wait: Wait = Wait.ANSWER) -> bytes | Failure:
        """A Midjourney upstream's whole answer, or why it failed (a refusal read as the proxies write it)."""
        return await self._upstream.fetch(channel, request, _refusal, wait)

    # --- submit -------------------------------------------------------------------------------------

    async def submit(self, call: Call, submit: MjSubmit, mode: str | None, origin: str | None = None) -> Answer:
        """Submit a task. ``origin`` is the base URL the client called (``scheme://host``): kept with the
        task so that its notifyHook bodies can carry signed media links when no ``public_url`` is set."""
        settings = self._services.settings
        if submit.notify_hook is not None:
            check_webhook_url(submit.notify_hook, allow_private=settings.allow_private_webhooks, param="notifyHook")
        parent = await self._parent(call.key, submit) if submit.parent_id is not None else None
        call.model = submit.price_model
        check_model(call.key, call.model)
        candidates = self._candidates(call, parent)
        amount = self._meter.reserve_at(call, self.price(call.model))
        if submit.endpoint is Endpoint.UPLOAD:
            outcome = await self._attempts(call, submit, parent, candidates, mode)
            if isinstance(outcome, Failure):
                await finish_failed(self._meter, call, outcome)
                raise outcome.error
            return await self._uploaded(call, outcome.answer)
        if parent is not None and submit.endpoint is Endpoint.MODAL:
            return await self._confirm_modal(call, submit, parent, candidates, amount, mode)
        return await self._submit_task(call, submit, parent, candidates, amount, mode, origin)

    async def _attempts(self, call: Call, submit: MjSubmit, parent: Row | None,
                        candidates: list[tuple[ChannelRecord, str]], mode: str | None) -> _Accepted | Failure:
        async def attempt(channel: ChannelRecord, upstream_model: str) -> _Accepted | Failure:
            return await self._send(call, submit, parent, channel, mode)

        try:
            return await try_in_order(call, candidates, attempt)
        except BaseException:
            self._meter.release(call)
            raise

    async def _submit_task(self, call: Call, submit: MjSubmit, parent: Row | None,
                           candidates: list[tuple[ChannelRecord, str]], amount: int, mode: str | None,
                           origin: str | None) -> Answer:
        """Store the task with its hold, then send the submit; nothing reaches the upstream unpaid."""
        row = self._pending_row(call, submit, parent, amount, mode, origin)
        task_id = await self._holds.store(call, row, new_task_id)
        outcome = await self._attempts(call, submit, parent, candidates, mode)
        if isinstance(outcome, Failure):
            await self._holds.abandon(call, task_id, amount, outcome)
            raise outcome.error
        status, modal = _accepted_status(submit, outcome.answer)
        assert call.channel is not None
        await self._holds.accept(task_id, {"status": status, "channel_id": call.channel.id,
                                           "upstream_task_id": str(outcome.answer.get("result") or "")})
        self._meter.hand_over_to_task(call)
        scrubber = call.channel.scrubber
        return Answer(200, submit_result(codes.EXISTED if modal else codes.SUCCESS,
                                         _description(outcome.answer, scrubber), task_id,
                                         _properties(outcome.answer, scrubber)))

    async def _confirm_modal(self, call: Call, submit: MjSubmit, parent: Row,
                             candidates: list[tuple[ChannelRecord, str]], amount: int, mode: str | None) -> Answer:
        """The modal continues its task (one more charge on it, held before it is sent), also when the
        upstream gives the confirmed work a new id: the client goes on polling the id it has."""
        if not await self._holds.hold_modal(call, parent["id"], amount):
            raise _not_modal()
        outcome = await self._attempts(call, submit, parent, candidates, mode)
        if isinstance(outcome, Failure):
            await self._holds.release_modal(call, parent["id"], amount)
            await finish_failed(self._meter, call, outcome)
            raise outcome.error
        status, modal = _accepted_status(submit, outcome.answer)
        values = {"status": status, "progress": "0%", "model": call.model, "updated_ms": _now_ms(),
                  "upstream_task_id": str(outcome.answer.get("result") or ""),
                  "request": {**parent["request"], "modal_request_id": call.request_id}}
        if not await store.update_open(self._services.engine, parent["id"], values):
            raise _not_modal()  # the task ended meanwhile; its end settled this charge with the rest
        self._meter.hand_over_to_task(call)
        scrubber = _scrubber_of(call.channel)
        return Answer(200, submit_result(codes.EXISTED if modal else codes.SUCCESS,
                                         _description(outcome.answer, scrubber), parent["id"],
                                         _properties(outcome.answer, scrubber)))

    def _pending_row(self, call: Call, submit: MjSubmit, parent: Row | None, amount: int,
                     mode: str | None, origin: str | None) -> dict[str, Any]:
        """The task as stored before its submit is sent (``TaskHolds.store`` adds id, status and times)."""
        request = {"endpoint": submit.endpoint.value, "mode": mode, "prompt": submit.prompt,
                   "parent_id": parent["id"] if parent is not None else None, "custom_id": submit.custom_id,
                   "state": submit.body.get("state") if isinstance(submit.body.get("state"), str) else None,
                   "origin": origin}
        return {
            "kind": KIND, "action": submit.action, "request_id": call.request_id,
            "client_request_id": call.client_request_id, "key_id": call.key.id, "key_name": call.key.name,
            "model": call.model, "progress": "0%", "request": request, "channel_id": None,
            "upstream_task_id": None, "client_ip": call.client_ip, "webhook": submit.notify_hook,
            "webhook_attempts": 0, "hold_nano": amount, "cost_nano": 0, "runs": 0, "lease_until_ms": 0,
            "deadline_ms": _now_ms() + int(self._services.settings.mj_task_timeout_s * 1000),
        }

    def price(self, name: str) -> Price:
        """The operator's price for an action's price name, else the spec's default."""
        found = self._services.snapshots.current.prices.lookup(name)
        if found is not None:
            return found
        default = DEFAULT_PRICES_USD.get(name, "0")
        return Price(pattern=name, per_call=usd_to_nano(default))

    async def _parent(self, key: KeyRecord, submit: MjSubmit) -> Row:
        assert submit.parent_id is not None
        parent = await self.owned_task(key, submit.parent_id)
        status = parent["status"]
        if submit.endpoint is Endpoint.MODAL:
            if status != "MODAL":
                raise InvalidRequest(f"The task '{submit.parent_id}' is not waiting for a modal confirmation "
                                     f"(it is {status}).", param="taskId", code="task_status_not_modal")
            return parent
        if status != "SUCCESS":
            raise InvalidRequest(f"The task '{submit.parent_id}' has not succeeded (it is {status}); only a "
                                 "finished task can be acted on.", param="taskId", code="task_status_not_success")
        if submit.endpoint is Endpoint.ACTION:
            buttons = (parent["result"] or {}).get("buttons") or []
            known = {b.get("customId") for b in buttons if isinstance(b, dict)}
            if submit.custom_id not in known:
                raise InvalidRequest("The customId is not one of the task's buttons.", param="customId",
                                     code="unknown_custom_id")
        if submit.endpoint in (Endpoint.CHANGE, Endpoint.SIMPLE_CHANGE) and parent["action"] not in _CHANGEABLE:
            raise InvalidRequest(f"A {parent['action']} task cannot be changed with U/V/R.", param="taskId",
                                 code="task_status_not_success")
        return parent

    def _candidates(self, call: Call, parent: Row | None) -> list[tuple[ChannelRecord, str]]:
        snapshot = self._services.snapshots.current
        if parent is not None:
            channel = snapshot.channels.get(parent["channel_id"] or -1)
            if channel is None or not channel.enabled:
                raise NoChannelAvailable("The channel that made this task is no longer available.")
            return [(channel, call.model)]
        candidates = snapshot.routers[Ability.MIDJOURNEY].candidates(call.model, self._services.settings.max_attempts)
        if not candidates:
            raise NoChannelAvailable(f"No Midjourney channel serves '{call.model}'.")
        return candidates

    async def _send(self, call: Call, submit: MjSubmit, parent: Row | None, channel: ChannelRecord,
                    mode: str | None) -> _Accepted | Failure:
        body = self._upstream_body(submit, parent, channel)
        request = self.api(channel).request(channel, "POST", PATHS[submit.endpoint], body, mode=mode)
        response = await self.call_upstream(channel, request)
        if isinstance(response, Failure):
            return response
        answer = loads_or_none(response)
        code = answer.get("code") if isinstance(answer, dict) else None
        if not isinstance(code, int) or isinstance(code, bool):
            return self._upstream.broken(channel, "The upstream's answer was not a Midjourney submit result.")
        assert isinstance(answer, dict)
        if code in _ACCEPTED:
            self._upstream.succeeded(channel)
            return _Accepted(answer)
        if code == codes.NOT_FOUND and parent is None:  # "no account instance": another channel may have one
            return self._upstream.failed(channel, MjRefused(503, answer, channel.scrubber), EndReason.UPSTREAM_ERROR)
        return Failure(MjRefused(upstream_http_status(code), answer, channel.scrubber), EndReason.REJECTED)

    def _upstream_body(self, submit: MjSubmit, parent: Row | None, channel: ChannelRecord) -> dict[str, Any]:
        body = dict(submit.body)
        # Which Discord accounts serve a task is the operator's business (new-api strips it too).
        body.pop("accountFilter", None)
        if parent is not None:
            upstream_id = parent["upstream_task_id"]
            if submit.endpoint is Endpoint.SIMPLE_CHANGE:
                body["content"] = " ".join([upstream_id, *str(body.get("content", "")).split()[1:]])
            else:
                body["taskId"] = upstream_id
        callback = self.callback_url(channel)
        if callback is not None:
            body["notifyHook"] = callback
        return body

    def api(self, channel: ChannelRecord) -> MidjourneyApi:
        """The channel's midjourney-proxy API; a channel whose type lost it (changed since it made a task)
        is no longer available."""
        api = midjourney_provider_for(channel.type)
        if api is None:
            raise NoChannelAvailable("The channel that made this task no longer serves Midjourney.")
        return api

    def callback_url(self, channel: ChannelRecord) -> str | None:
        """relaygate's own notify hook for the upstream, when the channel asks for callbacks."""
        public = self._services.settings.public_url
        if public is None or not self.api(channel).wants_callbacks(channel):
            return None
        return f"{public.rstrip('/')}/mj/notify/{channel.id}/{self.callback_token(channel.id)}"

    def callback_token(self, channel_id: int) -> str:
        return hmac.new(self._callback_key, str(channel_id).encode(), hashlib.sha256).hexdigest()[:32]

    async def _uploaded(self, call: Call, answer: dict[str, Any]) -> Answer:
        """Uploads make no task: the call is billed and recorded at once."""
        await accounted(self._meter.finish(call, EndReason.DONE, status=200, delivered=True))
        scrubber = _scrubber_of(call.channel)
        return Answer(200, submit_result(codes.SUCCESS, _description(answer, scrubber), answer.get("result"),
                                         _properties(answer, scrubber)))

    # --- queries ------------------------------------------------------------------------------------

    async def owned_task(self, key: KeyRecord, task_id: str) -> Row:
        """The key's own Midjourney task; any other id, including another key's task, is not found."""
        row = await store.get(self._services.engine, task_id) if 0 < len(task_id) <= 64 else None
        if row is None or row["kind"] != KIND or row["key_id"] != key.id or row["status"] == SUBMITTING:
            raise NotFound(f"No task with the id '{task_id[:64]}'.", param="taskId", code="task_not_found")
        return row

    async def tasks(self, key: KeyRecord, ids: Sequence[str]) -> list[Row]:
        wanted = [i for i in dict.fromkeys(ids) if isinstance(i, str) and 0 < len(i) <= 64]
        rows = {r["id"]: r for r in await store.get_many(self._services.engine, wanted, key.id)
                if r["kind"] == KIND and r["status"] != SUBMITTING}
        return [rows[i] for i in wanted if i in rows]

    async def fetch(self, key: KeyRecord, task_id: str, origin: str | None) -> dict[str, Any]:
        """``GET /mj/task/{id}/fetch``: the key's own task as it sees it."""
        return self.render(await self.owned_task(key, task_id), origin)

    async def listed(self, key: KeyRecord, ids: Sequence[str], origin: str | None) -> list[dict[str, Any]]:
        """``POST /mj/task/list-by-condition``: the key's own tasks among ``ids``, in their order."""
        return [self.render(task, origin) for task in await self.tasks(key, ids)]

    def render(self, task: Row, origin: str | None) -> dict[str, Any]:
        """The task as its owner sees it; media links signed when the channel proxies them."""
        request = task["request"] or {}
        channel = self._services.snapshots.current.channels.get(task["channel_id"] or -1)
        # Scrubbed when stored too; again here for what was stored before, and for a channel's new secrets.
        scrubber = _scrubber_of(channel)
        result = scrubbed_task(task["result"], scrubber) if task["result"] else None
        fail_reason = scrubber.text(task["fail_reason"]) if task["fail_reason"] else None
        shown = client_task(result, task_id=task["id"], action=task["action"], status=task["status"],
                            progress=task["progress"], submit_ms=task["submit_ms"], start_ms=task["start_ms"],
                            finish_ms=task["finish_ms"], fail_reason=fail_reason,
                            prompt=request.get("prompt"), parent_id=request.get("parent_id"), image_url=None)
        if not shown.get("state") and request.get("state"):
            shown["state"] = request["state"]  # the client's own, when the upstream does not echo it
        base = self._services.settings.public_url or origin
        api = midjourney_provider_for(channel.type) if channel is not None else None
        if channel is not None and api is not None and api.proxies_media(channel) and base:
            root = base.rstrip("/")
            links = self._links
            rewrite_media(shown, lambda media, _url: f"{root}/mj/image/{task['id']}?{links.query(task['id'], media)}")
        return shown

    async def image_seed(self, key: KeyRecord, task_id: str) -> Answer:
        task = await self.owned_task(key, task_id)
        channel = self._services.snapshots.current.channels.get(task["channel_id"] or -1)
        if channel is None:
            raise NoChannelAvailable("The channel that made this task is no longer available.")
        request = self.api(channel).request(channel, "GET", f"/mj/task/{task['upstream_task_id']}/image-seed")
        response = await self._upstream.send(channel, request, _refusal)
        if isinstance(response, Failure):
            if isinstance(response.error, MjRefused):
                return Answer(response.error.status, response.error.answer)
            raise response.error
        payload = await self._upstream.read(channel, response)
        if isinstance(payload, Failure):
            raise payload.error
        answer = loads_or_none(payload)
        if not isinstance(answer, dict):
            raise UpstreamError("The upstream's answer was not a Midjourney result.")
        return Answer(200, submit_result(int(answer.get("code") or codes.FAILURE),
                                         _description(answer, channel.scrubber), answer.get("result"),
                                         _properties(answer, channel.scrubber)))


def _accepted_status(submit: MjSubmit, answer: Mapping[str, Any]) -> tuple[str, bool]:
    """The task's status after the upstream accepted (code 1, 21 or 22), and whether it waits for a modal."""
    raw_properties = answer.get("properties")
    properties: dict[str, Any] = raw_properties if isinstance(raw_properties, dict) else {}
    modal = answer.get("code") == codes.EXISTED and (submit.needs_modal or properties.get("remix") is True)
    status = "MODAL" if modal else "NOT_START" if answer.get("code") == codes.IN_QUEUE else "SUBMITTED"
    return status, modal


def _not_modal() -> InvalidRequest:
    return InvalidRequest("The task is no longer waiting for a modal confirmation.", param="taskId",
                          code="task_status_not_modal")


def new_task_id(now_ms: int) -> str:
    """A decimal id like the proxies' own (epoch ms and random digits), 19 digits."""
    return f"{now_ms}{int.from_bytes(os.urandom(3), 'big') % 1_000_000:06d}"


def _refusal(status: int, raw: bytes, scrubber: Scrubber) -> UpstreamRejected:
    """An upstream 4xx: a proxy's own submit result when it sent one, else a plain refusal."""
    answer = loads_or_none(raw)
    if isinstance(answer, dict) and isinstance(answer.get("code"), int):
        return MjRefused(status, answer, scrubber)
    return UpstreamRejected(status, scrubber, message=f"The upstream refused the request (HTTP {status}).")


def _description(answer: Mapping[str, Any], scrubber: Scrubber) -> str:
    value = answer.get("description")
    return scrubber.text(value) if isinstance(value, str) else ""


def _properties(answer: Mapping[str, Any], scrubber: Scrubber) -> dict[str, Any]:
    """The allowed ``properties`` of an upstream answer, their strings scrubbed of the channel's secrets."""
    return dict(scrubber.deep(filtered_properties(answer.get("properties"))))


def _scrubber_of(channel: ChannelRecord | None) -> Scrubber:
    return channel.scrubber if channel is not None else NO_CHANNEL


def _now_ms() -> int:
    return int(time.time() * 1000)
