"""The embeddings use case: price, reserve, route, try channels in order, meter the answer.

The same rules as chat (``relay/chat.py``): the same price table and reservation (the estimate has no
output tokens), the same attempt and failover (``upstream/attempt.py``, ``upstream/failover.py``), one
usage record per call. Only channels
whose kind can embed are candidates (Anthropic cannot); a model that only such channels serve is
refused with ``400 embeddings_not_supported`` before anything is reserved.

When the client's embeddings dialect is the channel's, the client's bytes go upstream with only the
model name edited, and the answer comes back as it is; otherwise both go through the neutral model
(``core/embeddings.py``). Usage is the upstream's report (OpenAI's ``usage.prompt_tokens``); Gemini
reports none, so its inputs are counted with the offline tokenizer (``usage_source: estimated``).
"""

from __future__ import annotations

import dataclasses
import time

import orjson

from relaygate.billing.rules import EndReason
from relaygate.billing.tokenizer import count_embedding_inputs, decode_tokens
from relaygate.core.embeddings import EmbeddingsRequest
from relaygate.core.usage import Usage
from relaygate.core.wire import loads_or_none
from relaygate.dialects.base import EmbeddingsDialect
from relaygate.dialects.registry import embeddings_dialect
from relaygate.errors import InvalidRequest, ModelNotFound
from relaygate.meter.call import Call
from relaygate.providers.base import Ability
from relaygate.providers.registry import embeddings_provider_for
from relaygate.relay.services import Services
from relaygate.routing.records import ChannelRecord
from relaygate.upstream.attempt import Failure, Upstream, accounted
from relaygate.upstream.exchange import JsonResult
from relaygate.upstream.failover import settled, try_in_order


class EmbeddingsRelay:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._meter = services.meter
        settings = services.settings
        self._upstream = Upstream.of(services.health, services.http, settings)
        self._max_attempts = settings.max_attempts

    async def relay(self, call: Call, raw: bytes) -> JsonResult:
        """``call.dialect`` names the client's embeddings dialect (``dialects.registry.embeddings_dialect``)."""
        snapshot = self._services.snapshots.current
        candidates = snapshot.routers[Ability.EMBEDDINGS].candidates(call.model, self._max_attempts)
        if not candidates and not snapshot.router.serves(call.model):
            raise ModelNotFound(f"The model '{call.model}' does not exist or you do not have access to it.",
                                param="model")
        if not candidates:  # a chat model that no channel can embed with
            raise InvalidRequest(f"The model '{call.model}' does not serve embeddings: no channel of it can "
                                 "compute them.", param="model", code="embeddings_not_supported")
        self._meter.price_and_reserve(call, input_tokens=len(raw) // 4, output_tokens=0)
        bodies = _Bodies(call, raw, embeddings_dialect(call.dialect))

        async def attempt(channel: ChannelRecord, upstream_model: str) -> JsonResult | Failure:
            return await self._attempt(call, bodies, channel, upstream_model)

        return await settled(self._meter, call, try_in_order(call, candidates, attempt))

    async def _attempt(self, call: Call, bodies: _Bodies, channel: ChannelRecord,
                       upstream_model: str) -> JsonResult | Failure:
        ability = embeddings_provider_for(channel.type)
        assert ability is not None  # candidates were filtered on it
        upstream = embeddings_dialect(ability.embeddings_dialect(channel))
        try:
            body = bodies.for_upstream(upstream, upstream_model)
        except InvalidRequest as exc:  # this channel cannot take the input; another one may
            return Failure(exc, EndReason.REJECTED)
        request = ability.embeddings_request(channel, body, model=upstream_model)
        response = await self._upstream.send(channel, request, upstream.parse_upstream_error)
        if isinstance(response, Failure):
            return response
        payload = await self._upstream.read(channel, response)
        if isinstance(payload, Failure):
            return payload
        call.first_byte_at = time.monotonic()
        return await self._complete(call, bodies, channel, upstream, payload, response.content_type)

    async def _complete(self, call: Call, bodies: _Bodies, channel: ChannelRecord, upstream: EmbeddingsDialect,
                        payload: bytes, content_type: str) -> JsonResult | Failure:
        parsed = loads_or_none(payload)
        refused = self._upstream.error_answer(channel, upstream.error_status, upstream.parse_upstream_error, parsed,
                                              payload)
        if refused is not None:
            return refused
        if not isinstance(parsed, dict):
            return self._broken(channel)
        if upstream is bodies.client:
            usage = upstream.usage_of(parsed)
            estimated = None if usage is not None else bodies.estimated_usage()
        else:
            resp = upstream.response_to_core(parsed)
            if len(resp.vectors) != len(bodies.core.inputs):
                return self._broken(channel)
            usage = resp.usage
            estimated = None if usage is not None else bodies.estimated_usage()
            answer = dataclasses.replace(resp, usage=usage or estimated)
            payload = orjson.dumps(bodies.client.response_from_core(answer, bodies.core, call.model))
            content_type = "application/json"
        self._upstream.succeeded(channel)
        await accounted(self._meter.finish(call, EndReason.DONE, status=200, usage=usage, estimated=estimated,
                                           delivered=True))
        return JsonResult(200, payload, content_type or "application/json")

    def _broken(self, channel: ChannelRecord) -> Failure:
        return self._upstream.broken(channel, "The upstream's answer was not a valid embeddings response.")


class _Bodies:
    """Upstream bodies for one call, built once per (dialect, model): the client's bytes with the model
    edit when the dialects match, else a translation (token ids decoded to text, once, for dialects
    that take only text)."""

    def __init__(self, call: Call, raw: bytes, client: EmbeddingsDialect) -> None:
        self.client = client
        self._call = call
        self._raw = raw
        self._core: EmbeddingsRequest | None = None
        self._texts: EmbeddingsRequest | None = None
        self._built: dict[tuple[str, str], bytes] = {}

    @property
    def core(self) -> EmbeddingsRequest:
        if self._core is None:
            self._core = self.client.request_to_core(self._call.body, self._call.model)
        return self._core

    def estimated_usage(self) -> Usage:
        return Usage(input_tokens=count_embedding_inputs(self.core, self._call.model))

    def for_upstream(self, upstream: EmbeddingsDialect, model: str) -> bytes:
        """Raises ``InvalidRequest`` when the input cannot be written in ``upstream``'s dialect."""
        key = (upstream.name, model)
        body = self._built.get(key)
        if body is None:
            if upstream is self.client:
                body = self.client.passthrough_body(self._call.body, self._raw, model)
            else:
                request = self.core if upstream.takes_token_ids else self._as_texts()
                body = orjson.dumps(upstream.request_from_core(dataclasses.replace(request, model=model)))
            self._built[key] = body
        return body

    def _as_texts(self) -> EmbeddingsRequest:
        if self._texts is None:
            core = self.core
            try:
                inputs = tuple(dataclasses.replace(item, text=decode_tokens(item.tokens, self._call.model), tokens=None)
                               if item.tokens is not None else item for item in core.inputs)
            except ValueError as exc:
                raise InvalidRequest("'input' holds token ids outside this model's vocabulary; they cannot be "
                                     "sent as text to the channel that serves it.", param="input",
                                     code="invalid_value") from exc
            self._texts = dataclasses.replace(core, inputs=inputs)
        return self._texts
