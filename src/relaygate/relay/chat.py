"""The chat use case: price, reserve, route, try channels in order, and meter the answer.

A call is sent to its candidate channels one after another; a connect error, a timeout, a 429, a 5xx,
or an upstream that refuses our credentials moves on to the next candidate, as long as nothing has
been sent to the client. The client's dialect (``Call.dialect``) and each channel's may differ: the
request is then translated through the core model (once per target dialect and model name), and the
answer back (``upstream/exchange.py``; sending, timeouts and failures: ``upstream/attempt.py``).
"""

from __future__ import annotations

import dataclasses

import orjson

from relaygate.core.chat import ChatRequest
from relaygate.core.media import inline_media
from relaygate.dialects.base import Dialect
from relaygate.dialects.registry import dialect
from relaygate.errors import ModelNotFound
from relaygate.infra.media import MediaFetcher, MediaFetchError
from relaygate.meter.call import Call
from relaygate.providers.registry import provider_for
from relaygate.relay.services import Services
from relaygate.routing.records import ChannelRecord
from relaygate.upstream.attempt import Failure, Upstream
from relaygate.upstream.exchange import Exchange, Leg, RelayResult
from relaygate.upstream.failover import settled, try_in_order
from relaygate.upstream.stream import StreamDriver


class ChatRelay:
    def __init__(self, services: Services, media: MediaFetcher) -> None:
        self._services = services
        self._meter = services.meter
        self._media = media
        settings = services.settings
        self._exchange = Exchange(self._meter, Upstream.of(services.health, services.http, settings),
                                  StreamDriver(services.streams))
        self._max_attempts = settings.max_attempts

    async def relay(self, call: Call, raw: bytes) -> RelayResult:
        snapshot = self._services.snapshots.current
        if not snapshot.router.serves(call.model):
            raise ModelNotFound(f"The model '{call.model}' does not exist or you do not have access to it.",
                                param="model")
        output_cap = dialect(call.dialect).max_output_tokens(call.body, self._services.settings.reserve_output_tokens)
        self._meter.price_and_reserve(call, input_tokens=len(raw) // 4, output_tokens=output_cap)
        return await settled(self._meter, call, self._try_candidates(call, raw))

    async def _try_candidates(self, call: Call, raw: bytes) -> RelayResult | Failure:
        candidates = self._services.snapshots.current.router.candidates(call.model, self._max_attempts)
        client = dialect(call.dialect)
        wants_usage = client.wants_usage(call.body)
        bodies = _Bodies(call, raw, client, wants_usage, self._media)

        async def attempt(channel: ChannelRecord, upstream_model: str) -> RelayResult | Failure:
            provider = provider_for(channel.type)
            leg = Leg(client, dialect(provider.dialect_for(channel)))
            try:
                body = await bodies.for_upstream(leg.upstream, upstream_model)
            except MediaFetchError:
                if call.attempts == 1:  # no upstream was tried: refused like any other bad input, unbilled
                    self._meter.refuse(call)  # and without a usage record (docs/billing.md)
                raise
            request = provider.chat_request(channel, body, stream=call.stream, model=upstream_model,
                                            client_headers=call.client_headers)
            return await self._exchange.attempt(call, channel, leg, request, wants_usage)

        return await try_in_order(call, candidates, attempt)


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
