"""The images use case: generations, edits and variations, price per image or per token, routed like
chat, tried in order; also what an async image task runs (``relay/image_tasks.py``).

A channel whose kind makes images in OpenAI's format (OpenAI, Azure, the mock) gets the client's
request as it is: the JSON body (re-encoded only when the model name changes), or the multipart form
re-emitted from its spool with the upstream model name, files byte for byte. A Gemini channel gets one
``generateContent`` call per image asked for (``dialects/gemini/images.py``), and the answer comes back
as OpenAI's images response with ``b64_json`` images.

Billing (docs/billing.md): a per-call price wins; else a per-image price by size and quality times the
images delivered; else the upstream's token usage (``gpt-image-*``: text and image input tokens, image
output tokens). The reservation is made for the ``n`` images asked for.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson

from relaygate.billing.pricing import ImageBill
from relaygate.billing.rules import EndReason
from relaygate.billing.tokenizer import count_text
from relaygate.core.images import ImageJob, ImageOperation
from relaygate.core.usage import Usage
from relaygate.core.wire import loads_or_none
from relaygate.dialects.gemini.images import (
    NO_IMAGE,
    GeminiImages,
    ImageInput,
    gemini_images_response,
    images_request_to_gemini,
    openai_images_response,
    sum_usage,
)
from relaygate.dialects.openai.errors import error_status as openai_error_status
from relaygate.dialects.openai.errors import parse_upstream_error as openai_error
from relaygate.dialects.openai.images import openai_usage
from relaygate.dialects.registry import dialect
from relaygate.errors import InvalidRequest, ModelNotFound, UpstreamRejected
from relaygate.meter.call import Call
from relaygate.meter.meter import Meter
from relaygate.providers.base import Ability, ImagePayload, ImagesProvider, UpstreamRequest
from relaygate.providers.registry import chat_images_provider_for, images_provider_for, provider_for
from relaygate.relay.multipart import ImageForm
from relaygate.relay.services import Services
from relaygate.routing.records import ChannelRecord
from relaygate.upstream.attempt import Failure, Upstream, accounted
from relaygate.upstream.exchange import JsonResult
from relaygate.upstream.failover import settled, try_in_order

# Reserved output tokens per image for token-priced image models (gpt-image-1 at high quality and
# 1024x1024 produces 4160; larger sizes up to about 1.5 times that).
_RESERVE_TOKENS_PER_IMAGE = 6240

Candidates = list[tuple[ChannelRecord, str]]


@dataclass(slots=True)
class Made:
    """Images an upstream made: the client's answer (OpenAI images response), its usage, how many."""

    payload: bytes
    usage: Usage | None
    images: int


class ImagesRelay:
    def __init__(self, services: Services) -> None:
        self._services = services
        self._meter = services.meter
        settings = services.settings
        self._upstream = Upstream.of(services.health, services.http, settings)
        self._max_attempts = settings.max_attempts

    @property
    def meter(self) -> Meter:
        return self._meter

    @property
    def services(self) -> Services:
        return self._services

    @property
    def upstream(self) -> Upstream:
        return self._upstream

    def candidates(self, call: Call) -> Candidates:
        """Channels that can make images for the call's model; raises when there are none."""
        snapshot = self._services.snapshots.current
        found = snapshot.routers[Ability.IMAGES].candidates(call.model, self._max_attempts)
        if not found and not snapshot.router.serves(call.model):
            raise ModelNotFound(f"The model '{call.model}' does not exist or you do not have access to it.",
                                param="model")
        if not found:  # a chat model that no channel makes images with
            raise InvalidRequest(f"The model '{call.model}' does not make images: no channel of it has an images "
                                 "API.", param="model", code="images_not_supported")
        return found

    def admit(self, call: Call, job: ImageJob) -> int:
        """Price the call and reserve what ``n`` images would cost; returns that amount."""
        prompt_tokens = count_text(job.prompt or "", "gpt-4o")
        return self._meter.price_and_reserve(call, input_tokens=prompt_tokens,
                                             output_tokens=_RESERVE_TOKENS_PER_IMAGE * job.n,
                                             image=bill_for(job, job.n))

    async def relay(self, call: Call, job: ImageJob, form: ImageForm | None, raw: bytes | None = None) -> JsonResult:
        """A synchronous image call: the answer, billed and recorded. ``raw`` is the client's JSON body
        (generations), forwarded as it is when the model name does not change."""
        candidates = self.candidates(call)
        self.admit(call, job)
        made = await settled(self._meter, call, self.make(call, job, form, candidates, raw))
        await accounted(self.finish(call, job, EndReason.DONE, made, delivered=True))
        return JsonResult(200, made.payload)

    async def finish(self, call: Call, job: ImageJob, reason: EndReason, made: Made, *, delivered: bool,
                     error_code: str | None = None) -> None:
        """Meter an image call that ended (``made``: its usage and images; the payload is not read)."""
        await self._meter.finish(call, reason, status=200, usage=made.usage, delivered=delivered,
                                 estimated=estimated_usage(job, made), image=bill_for(job, made.images),
                                 error_code=error_code)

    async def make(self, call: Call, job: ImageJob, form: ImageForm | None, candidates: Candidates,
                   raw: bytes | None = None) -> Made | Failure:
        """Try the candidates in order; the images of the first that answers, or why none did."""

        async def attempt(channel: ChannelRecord, upstream_model: str) -> Made | Failure:
            api = images_provider_for(channel.type)
            if api is None:  # candidates make images one way or the other: this one by an image-output model
                return await self.gemini(call, job, form, channel, upstream_model)
            return await self._openai(call, job, form, raw, channel, upstream_model, api)

        return await try_in_order(call, candidates, attempt)

    # --- OpenAI's images API ----------------------------------------------------------------------

    async def _openai(self, call: Call, job: ImageJob, form: ImageForm | None, raw: bytes | None,
                      channel: ChannelRecord, upstream_model: str, ability: ImagesProvider) -> Made | Failure:
        request = self.openai_request(call, job, form, raw, channel, upstream_model, ability)
        body = await self._upstream.fetch(channel, request, openai_error)
        if isinstance(body, Failure):
            return body
        return self.made_from_json(channel, body)

    def openai_request(self, call: Call, job: ImageJob, form: ImageForm | None, raw: bytes | None,
                       channel: ChannelRecord, upstream_model: str, ability: ImagesProvider) -> UpstreamRequest:
        fields = {**job.params, "model": upstream_model}
        if form is None:
            # The client's bytes when they already name the upstream model; else one re-encoding.
            json_body = raw if raw is not None and call.body.get("model") == upstream_model else orjson.dumps(fields)
            payload = ImagePayload("application/json", fields, body=json_body)
        else:
            encoded = form.encode({"model": upstream_model})
            payload = ImagePayload(encoded.content_type, fields, chunks=encoded.chunks, length=encoded.length)
        return ability.images_request(channel, job.operation.value, payload, model=upstream_model)

    def made_from_json(self, channel: ChannelRecord, body: bytes) -> Made | Failure:
        parsed = loads_or_none(body)
        refused = self._upstream.error_answer(channel, openai_error_status, openai_error, parsed, body)
        if refused is not None:
            return refused
        data = parsed.get("data") if isinstance(parsed, dict) else None
        if not isinstance(data, list) or not data:
            return self._upstream.broken(channel, "The upstream's answer was not an images response.")
        self._upstream.succeeded(channel)
        return Made(body, openai_usage(parsed), len(data))

    # --- Gemini image-output models ---------------------------------------------------------------

    async def gemini(self, call: Call, job: ImageJob, form: ImageForm | None, channel: ChannelRecord,
                     upstream_model: str) -> Made | Failure:
        if job.operation is ImageOperation.VARIATION:
            return Failure(InvalidRequest("Image variations are not offered by Gemini channels.", param="model",
                                          code="images_not_supported"), EndReason.REJECTED)
        try:
            images, mask = _inputs(form)
            body = orjson.dumps(images_request_to_gemini(job.params, images, mask))
        except InvalidRequest as exc:
            return Failure(exc, EndReason.REJECTED)
        ability = chat_images_provider_for(channel.type)
        assert ability is not None  # a candidate without OpenAI's images API has this one
        request = ability.chat_images_request(channel, body, model=upstream_model)
        results = await asyncio.gather(*(self._gemini_one(channel, request) for _ in range(job.n)))
        failures = [r for r in results if isinstance(r, Failure)]
        if failures:
            return failures[0]
        made = [r for r in results if isinstance(r, GeminiImages)]
        answer = openai_images_response(made, created=int(time.time()),
                                        output_format=_text_or_none(job.params.get("output_format")))
        self._upstream.succeeded(channel)
        usage = sum_usage(m.usage for m in made)
        return Made(orjson.dumps(answer), usage, sum(len(m.images) for m in made))

    async def _gemini_one(self, channel: ChannelRecord, request: UpstreamRequest) -> GeminiImages | Failure:
        # The channel's own dialect reads its errors (a 4xx, or an error answered with HTTP 200).
        errors = dialect(provider_for(channel.type).dialect_for(channel))
        body = await self._upstream.fetch(channel, request, errors.parse_upstream_error)
        if isinstance(body, Failure):
            return body
        parsed = loads_or_none(body)
        refused = self._upstream.error_answer(channel, errors.error_status, errors.parse_upstream_error, parsed, body)
        if refused is not None:
            return refused
        if not isinstance(parsed, dict):
            return self._upstream.broken(channel, "The upstream's answer was not valid JSON.")
        result = gemini_images_response(parsed)
        if not result.images:
            reason = result.blocked_reason or NO_IMAGE
            if result.content_filtered:
                return Failure(UpstreamRejected(400, channel.scrubber, message=f"The model refused to make this "
                                                f"image ({reason}); change the prompt.",
                                                code="content_policy_violation", param="prompt",
                                                error_type="invalid_request_error"), EndReason.REJECTED)
            return self._upstream.broken(channel, f"The model answered without an image ({reason}).")
        return result


def bill_for(job: ImageJob, count: int) -> ImageBill:
    return ImageBill(count, job.size, job.quality)


def estimated_usage(job: ImageJob, made: Made) -> Usage | None:
    """For token-priced image models whose upstream reported nothing: the prompt, counted offline (the
    image output cannot be counted, so it is not billed; docs/billing.md)."""
    if made.usage is not None:
        return None
    return Usage(input_tokens=count_text(job.prompt or "", "gpt-4o"))


def _inputs(form: ImageForm | None) -> tuple[list[ImageInput], ImageInput | None]:
    if form is None:
        return [], None
    images = [ImageInput(form.read_file(part), part.content_type) for part in form.images()]
    mask_part = form.mask()
    mask = ImageInput(form.read_file(mask_part), mask_part.content_type) if mask_part is not None else None
    return images, mask


def _text_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None
