"""The chat use case: price, reserve, route, try channels in order, and meter the answer.

A call is sent to its candidate channels one after another; a connect error, a timeout, a 429, a 5xx,
or an upstream that refuses our credentials moves on to the next candidate, as long as nothing has
been sent to the client. The client's dialect (``Call.dialect``) and each channel's may differ: the
request is then translated through the core model (once per target dialect and model name), and the
answer back (``relay/exchange.py``).
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any

import orjson

from relaygate.billing.pricing import estimate_cost
from relaygate.billing.rules import EndReason
from relaygate.core.chat import ChatRequest
from relaygate.core.media import inline_media
from relaygate.dialects.base import Dialect
from relaygate.dialects.registry import dialect
from relaygate.errors import (
    InsufficientQuota,
    ModelNotFound,
    NoChannelAvailable,
    PriceMissing,
    UpstreamError,
    UpstreamRejected,
)
from relaygate.providers.registry import provider_for
from relaygate.relay.call import Call
from relaygate.relay.exchange import (
    AccountingUnavailable,
    Exchange,
    Failure,
    JsonResult,
    Leg,
    RelayResult,
    StreamResult,
)
from relaygate.relay.media import MediaFetcher
from relaygate.relay.meter import Meter
from relaygate.relay.services import Services
from relaygate.storage.recorder import RecorderError

__all__ = ["AccountingUnavailable", "ChatRelay", "JsonResult", "RelayResult", "StreamResult"]

# Statuses after which the next channel is tried: the upstream is down, overloaded, or refuses our
# credentials or the model (a channel misconfiguration), none of which the client can fix.
_FAILOVER_STATUSES = frozenset({401, 403, 404, 408, 409, 429})


class ChatRelay:
    def __init__(self, services: Services, media: MediaFetcher) -> None:
        self._services = services
        self._meter = Meter(services)
        self._media = media
        settings = services.settings
        self._exchange = Exchange(self._meter, services.health, settings.max_upstream_body_bytes)
        self._max_attempts = settings.max_attempts
        self._connect_timeout = settings.connect_timeout_s
        self._first_byte_timeout = settings.first_byte_timeout_s
        self._stream_timeout = max(settings.first_byte_timeout_s, settings.stream_idle_timeout_s)

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
                await self._finish_failed(call, Failure(UpstreamError("internal error"), EndReason.UPSTREAM_ERROR))
            raise

    async def _try_candidates(self, call: Call, raw: bytes) -> RelayResult:
        candidates = self._services.snapshots.current.router.candidates(call.model, self._max_attempts)
        client = dialect(call.dialect)
        wants_usage = _wants_usage(call.body)
        bodies = _Bodies(call, raw, client, wants_usage, self._media)
        failure = Failure(NoChannelAvailable("No channel is available for this model right now."),
                          EndReason.NO_CHANNEL)
        for channel, upstream_model in candidates:
            call.attempts += 1
            call.channel, call.upstream_model = channel, upstream_model
            provider = provider_for(channel.type)
            leg = Leg(client, dialect(provider.dialect_for(channel)))
            body = await bodies.for_upstream(leg.upstream, upstream_model)
            request = provider.chat_request(channel, body, stream=call.stream, model=upstream_model,
                                            client_headers=call.client_headers)
            request.connect_timeout = self._connect_timeout
            request.read_timeout = self._stream_timeout if call.stream else self._first_byte_timeout
            transport = provider.transport_for(channel) or self._services.http
            outcome = await self._exchange.attempt(call, channel, leg, transport, request, wants_usage)
            if isinstance(outcome, Failure):
                failure = outcome
                if isinstance(outcome.error, UpstreamRejected) and outcome.error.status not in _FAILOVER_STATUSES:
                    break
                continue
            return outcome
        await self._finish_failed(call, failure)
        raise failure.error

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

    async def _finish_failed(self, call: Call, failure: Failure) -> None:
        # Nothing was billed; if the record cannot be stored the client still gets the upstream failure.
        with contextlib.suppress(RecorderError):
            await self._meter.finish(call, failure.reason, status=failure.error.status,
                                     error_code=failure.error.code)


class _Bodies:
    """Upstream bodies for one call, built once per (dialect, model): the client's bytes with the
    documented edits when the dialects match, else a translation (media fetched once if needed)."""

    def __init__(self, call: Call, raw: bytes, client: Dialect, wants_usage: bool, media: MediaFetcher) -> None:
        self._call = call
        self._raw = raw
        self._client = client
        self._wants_usage = wants_usage
        self._media = media
        self._core: ChatRequest | None = None
        self._inlined: dict[str, ChatRequest] = {}
        self._built: dict[tuple[str, str], bytes] = {}

    async def for_upstream(self, upstream: Dialect, model: str) -> bytes:
        key = (upstream.name, model)
        body = self._built.get(key)
        if body is None:
            call = self._call
            if upstream is self._client:
                body = self._client.passthrough_body(call.body, self._raw, model, call.stream, self._wants_usage)
            else:
                request = await self._translated(upstream)
                body = orjson.dumps(upstream.request_from_core(dataclasses.replace(request, model=model,
                                                                                   stream=call.stream)))
            self._built[key] = body
        return body

    async def _translated(self, upstream: Dialect) -> ChatRequest:
        if self._core is None:
            self._core = self._client.request_to_core(self._call.body, self._call.model, self._call.stream)
        request = self._inlined.get(upstream.name)
        if request is None:
            urls = upstream.urls_to_fetch(self._core)
            request = inline_media(self._core, await self._media.fetch_all(urls)) if urls else self._core
            self._inlined[upstream.name] = request
        return request


def _wants_usage(body: dict[str, Any]) -> bool:
    """Whether an OpenAI client asked for the usage chunk (other dialects always carry usage)."""
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
