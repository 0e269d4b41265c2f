"""The chat use case: price, reserve, route, try channels in order, and meter the answer.

A call is sent to its candidate channels one after another; a connect error, a timeout, a 429, a 5xx,
or an upstream that refuses our credentials moves on to the next candidate, as long as nothing has
been sent to the client. For streams, the first upstream read happens before the client is answered,
so an upstream that fails at once still fails over.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson

from relaygate.billing.pricing import estimate_cost
from relaygate.billing.rules import EndReason
from relaygate.dialects.openai.errors import parse_upstream_error, stream_error_frame
from relaygate.dialects.openai.stream_tap import OpenAIStreamTap
from relaygate.dialects.openai.usage import usage_from_openai
from relaygate.errors import (
    GatewayError,
    InsufficientQuota,
    ModelNotFound,
    NoChannelAvailable,
    PriceMissing,
    RateLimited,
    UpstreamError,
    UpstreamRejected,
    UpstreamTimeout,
)
from relaygate.providers.base import (
    UpstreamBodyTooLarge,
    UpstreamConnectError,
    UpstreamReadTimeout,
    UpstreamResponse,
)
from relaygate.providers.registry import provider_for
from relaygate.relay.call import Call
from relaygate.relay.meter import Meter
from relaygate.relay.services import Services
from relaygate.routing.records import ChannelRecord
from relaygate.storage.recorder import RecorderError

_ERROR_BODY_LIMIT = 64 * 1024
_DONE_FRAME = b"data: [DONE]\n\n"
# Statuses after which the next channel is tried: the upstream is down, overloaded, or refuses our
# credentials or the model (a channel misconfiguration), none of which the client can fix.
_FAILOVER_STATUSES = frozenset({401, 403, 404, 408, 409, 429})


class AccountingUnavailable(GatewayError):
    status = 503
    code = "accounting_unavailable"
    kind = "overloaded"
    retryable = True


@dataclass(slots=True)
class JsonResult:
    status: int
    body: bytes
    content_type: str = "application/json"


@dataclass(slots=True)
class StreamResult:
    body: AsyncIterator[bytes]


RelayResult = JsonResult | StreamResult


@dataclass(slots=True)
class _Failure:
    """Why the last candidate failed; becomes the client's error when every candidate failed."""

    error: GatewayError
    reason: EndReason


class ChatRelay:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._meter = Meter(services)
        settings = services.settings
        self._max_attempts = settings.max_attempts
        self._connect_timeout = settings.connect_timeout_s
        self._first_byte_timeout = settings.first_byte_timeout_s
        self._stream_timeout = max(settings.first_byte_timeout_s, settings.stream_idle_timeout_s)
        self._body_limit = settings.max_upstream_body_bytes

    async def relay(self, call: Call, raw: bytes) -> RelayResult:
        snapshot = self._services.snapshots.current
        if not snapshot.router.serves(call.model):
            raise ModelNotFound(f"The model '{call.model}' does not exist or you do not have access to it.",
                                param="model")
        self._price_and_reserve(call, raw)
        try:
            return await self._try_candidates(call, raw)
        except BaseException:
            if not call.finished:  # an unexpected error: settle so that no reservation is left open
                await self._finish_failed(call, _Failure(UpstreamError("internal error"), EndReason.UPSTREAM_ERROR))
            raise

    async def _try_candidates(self, call: Call, raw: bytes) -> RelayResult:
        candidates = self._services.snapshots.current.router.candidates(call.model, self._max_attempts)
        client_wants_usage = _wants_usage(call.body)
        failure = _Failure(NoChannelAvailable("No channel is available for this model right now."),
                           EndReason.NO_CHANNEL)
        bodies: dict[str, bytes] = {}
        for channel, upstream_model in candidates:
            call.attempts += 1
            call.channel, call.upstream_model = channel, upstream_model
            body = bodies.get(upstream_model)
            if body is None:
                body = bodies[upstream_model] = self._upstream_body(call, raw, upstream_model, client_wants_usage)
            outcome = await self._attempt(call, channel, body, client_wants_usage)
            if isinstance(outcome, _Failure):
                failure = outcome
                if isinstance(outcome.error, UpstreamRejected) and outcome.error.status not in _FAILOVER_STATUSES:
                    break
                continue
            return outcome
        await self._finish_failed(call, failure)
        raise failure.error

    # --- before the first attempt -------------------------------------------------------------

    def _price_and_reserve(self, call: Call, raw: bytes) -> None:
        services = self._services
        price = services.snapshots.current.prices.lookup(call.model)
        if price is None and services.settings.unpriced_models == "reject":
            raise PriceMissing(f"The model '{call.model}' has no price set; ask the operator to add one.",
                               param="model")
        call.price = price
        quota = call.key.quota_nano
        if quota is None:
            return
        amount = 0
        if price is not None:
            amount = price.per_call if price.per_call is not None else estimate_cost(
                price, len(raw) // 4, _max_output_tokens(call.body, services.settings.reserve_output_tokens))
        reservation = services.ledger.reserve(call.key.id, quota, amount)
        if reservation is None:
            raise InsufficientQuota("You exceeded your current quota, please check your plan and billing details.")
        call.reservation = reservation

    @staticmethod
    def _upstream_body(call: Call, raw: bytes, upstream_model: str, client_wants_usage: bool) -> bytes:
        """The client's bytes untouched unless a documented edit is needed: the mapped model name, and
        ``stream_options.include_usage`` on streams so that the upstream reports usage."""
        needs_usage = call.stream and not client_wants_usage
        if upstream_model == call.model and not needs_usage:
            return raw
        body = dict(call.body)
        body["model"] = upstream_model
        if needs_usage:
            options = body.get("stream_options")
            body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
        return orjson.dumps(body)

    # --- one attempt --------------------------------------------------------------------------

    async def _attempt(self, call: Call, channel: ChannelRecord, body: bytes,
                       client_wants_usage: bool) -> RelayResult | _Failure:
        provider = provider_for(channel.type)
        request = provider.chat_request(channel, body, stream=call.stream, model=call.upstream_model or call.model,
                                        client_headers=call.client_headers)
        request.connect_timeout = self._connect_timeout
        request.read_timeout = self._stream_timeout if call.stream else self._first_byte_timeout
        transport = provider.transport_for(channel) or self._services.http
        health = self._services.health
        try:
            response = await transport.send(request)
        except UpstreamReadTimeout:
            health.failure(channel.id)
            return _Failure(UpstreamTimeout("The upstream did not answer in time."), EndReason.TIMEOUT)
        except UpstreamConnectError:
            health.failure(channel.id)
            return _Failure(UpstreamError("The upstream could not be reached."), EndReason.UPSTREAM_ERROR)
        if response.status >= 400:
            return await self._upstream_refused(channel, response)
        if call.stream and response.content_type.startswith("text/event-stream"):
            return await self._open_stream(call, channel, response, client_wants_usage)
        return await self._complete(call, channel, response)

    async def _upstream_refused(self, channel: ChannelRecord, response: UpstreamResponse) -> _Failure:
        try:
            raw = await response.read(_ERROR_BODY_LIMIT)
        except (UpstreamBodyTooLarge, UpstreamConnectError, UpstreamReadTimeout):
            raw = b""
        status = response.status
        health = self._services.health
        if status == 429:
            health.failure(channel.id)
            return _Failure(RateLimited("The upstream is rate limiting; try again shortly.",
                                        code="upstream_rate_limited"), EndReason.UPSTREAM_ERROR)
        if status >= 500:
            health.failure(channel.id)
            return _Failure(UpstreamError(f"The upstream failed (HTTP {status})."), EndReason.UPSTREAM_ERROR)
        if status in (401, 403):
            health.failure(channel.id)
            return _Failure(UpstreamError("The upstream refused the gateway's credentials for this channel.",
                                          code="upstream_auth_failed"), EndReason.UPSTREAM_ERROR)
        health.success(channel.id)
        return _Failure(parse_upstream_error(status, raw), EndReason.REJECTED)

    async def _complete(self, call: Call, channel: ChannelRecord,
                        response: UpstreamResponse) -> RelayResult | _Failure:
        try:
            payload = await response.read(self._body_limit)
        except UpstreamReadTimeout:
            self._services.health.failure(channel.id)
            return _Failure(UpstreamTimeout("The upstream did not finish its answer in time."), EndReason.TIMEOUT)
        except (UpstreamConnectError, UpstreamBodyTooLarge):
            self._services.health.failure(channel.id)
            return _Failure(UpstreamError("The upstream's answer was broken off or too large."),
                            EndReason.UPSTREAM_ERROR)
        self._services.health.success(channel.id)
        call.first_byte_at = time.monotonic()
        parsed = _loads_or_none(payload)
        usage = usage_from_openai(parsed.get("usage")) if isinstance(parsed, dict) else None
        try:
            # The answer's text is needed only for the offline count, when the upstream reported no usage.
            await self._meter.finish(call, EndReason.DONE, status=200, usage=usage,
                                     produced_text="" if usage is not None else _completion_text(parsed),
                                     delivered=True)
        except RecorderError as exc:
            raise AccountingUnavailable("The request could not be accounted for; it was not billed.") from exc
        return JsonResult(200, payload, response.content_type or "application/json")

    async def _open_stream(self, call: Call, channel: ChannelRecord, response: UpstreamResponse,
                           client_wants_usage: bool) -> RelayResult | _Failure:
        chunks = response.iter_chunks().__aiter__()
        try:
            first = await chunks.__anext__()
        except StopAsyncIteration:
            response.close()
            self._services.health.failure(channel.id)
            return _Failure(UpstreamError("The upstream closed the stream without sending anything."),
                            EndReason.UPSTREAM_ERROR)
        except UpstreamReadTimeout:
            response.close()
            self._services.health.failure(channel.id)
            return _Failure(UpstreamTimeout("The upstream did not start its answer in time."), EndReason.TIMEOUT)
        except UpstreamConnectError:
            response.close()
            self._services.health.failure(channel.id)
            return _Failure(UpstreamError("The upstream broke off before answering."), EndReason.UPSTREAM_ERROR)
        self._services.health.success(channel.id)
        call.first_byte_at = time.monotonic()
        tap = OpenAIStreamTap(client_wants_usage=client_wants_usage)
        return StreamResult(self._stream(call, response, chunks, first, tap))

    async def _stream(self, call: Call, response: UpstreamResponse, chunks: AsyncIterator[bytes],
                      first: bytes, tap: OpenAIStreamTap) -> AsyncIterator[bytes]:
        """Forward the stream; commit the usage record before the last frame; bill any other end."""
        reason = EndReason.CLIENT_GONE  # what it is if the consumer stops pulling before the end
        delivered = False
        try:
            out = tap.feed(first)
            if out:
                delivered = True
                yield out
            reason = EndReason.STREAM_CUT
            try:
                async for chunk in chunks:
                    out = tap.feed(chunk)
                    if out:
                        delivered = True
                        yield out
                out = tap.finish()
                if out:
                    yield out
                reason = (EndReason.DONE if tap.completed
                          else EndReason.UPSTREAM_ERROR if tap.error else EndReason.STREAM_CUT)
            except UpstreamReadTimeout:
                reason = EndReason.TIMEOUT
            except UpstreamConnectError:
                reason = EndReason.STREAM_CUT
            yield await self._stream_end(call, tap, reason, delivered)
        finally:
            response.close()
            if not call.finished:
                await self._meter.finish(call, EndReason.CLIENT_GONE, status=200, usage=tap.usage,
                                         produced_text=tap.generated_text(), delivered=delivered or bool(tap.events))

    async def _stream_end(self, call: Call, tap: OpenAIStreamTap, reason: EndReason, delivered: bool) -> bytes:
        """The last frame: ``[DONE]`` once the record is durable, or an error event the SDK raises on."""
        try:
            await self._meter.finish(call, reason, status=200, usage=tap.usage,
                                     produced_text=tap.generated_text(), delivered=delivered,
                                     error_code=None if reason is EndReason.DONE else reason.value)
        except RecorderError:
            return stream_error_frame(
                AccountingUnavailable("The request could not be accounted for; it was not billed."),
                call.request_id)
        if reason is EndReason.DONE:
            return _DONE_FRAME
        if reason is EndReason.UPSTREAM_ERROR:
            return b""  # the upstream's own error event has already been forwarded
        error: GatewayError = (UpstreamTimeout("The upstream stopped sending in the middle of the answer.")
                               if reason is EndReason.TIMEOUT
                               else UpstreamError("The upstream ended the stream before the answer was complete.",
                                                  code="stream_cut"))
        return stream_error_frame(error, call.request_id)

    async def _finish_failed(self, call: Call, failure: _Failure) -> None:
        # Nothing was billed; if the record cannot be stored the client still gets the upstream failure.
        with contextlib.suppress(RecorderError):
            await self._meter.finish(call, failure.reason, status=failure.error.status,
                                     error_code=failure.error.code)


def _wants_usage(body: dict[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def _max_output_tokens(body: dict[str, Any], default: int) -> int:
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value * max(1, _int_or(body.get("n"), 1))
    return default * max(1, _int_or(body.get("n"), 1))


def _int_or(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else default


def _loads_or_none(payload: bytes) -> Any:
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None


def _completion_text(parsed: Any) -> str:
    if not isinstance(parsed, dict) or not isinstance(parsed.get("choices"), list):
        return ""
    texts: list[str] = []
    for choice in parsed["choices"]:
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict):
            if isinstance(message.get("content"), str):
                texts.append(message["content"])
            tool_calls = message.get("tool_calls")
            for tool_call in tool_calls if isinstance(tool_calls, list) else ():
                fn = tool_call.get("function") if isinstance(tool_call, dict) else None
                if isinstance(fn, dict):
                    texts.append(str(fn.get("name") or "") + str(fn.get("arguments") or ""))
    return "".join(texts)
