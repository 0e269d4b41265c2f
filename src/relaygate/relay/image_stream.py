"""Streamed image generation and editing (``stream: true``; GPT image models' partial images).

An OpenAI-format channel's SSE stream is forwarded event by event as it comes; the tap notes each
``*.completed`` event (an image, and the usage it carries) and holds the last one back until the usage
record is committed, as chat streams hold back their terminal frame. A channel that does not stream
(Gemini, the mock, an upstream that answered JSON) is answered with the events OpenAI would have sent
for the finished images: one ``*.completed`` event per image, no partial images.

Billing: the images completed (per-image prices) or the upstream's usage (token prices); a stream cut
before any image completed costs nothing per image, and its usage, if any arrived, is billed as for
chat streams (docs/billing.md).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import orjson

from relaygate.billing.rules import EndReason
from relaygate.core.images import ImageJob, ImageOperation
from relaygate.core.usage import Usage
from relaygate.dialects.gemini.images import openai_images_usage
from relaygate.dialects.openai.adapter import OPENAI
from relaygate.dialects.openai.errors import parse_upstream_error as openai_error
from relaygate.dialects.openai.errors import scrubbed_error
from relaygate.errors import UpstreamError
from relaygate.providers.base import UpstreamConnectError, UpstreamReadTimeout, UpstreamResponse
from relaygate.providers.registry import images_provider_for, transport_for
from relaygate.relay.call import Call
from relaygate.relay.exchange import (
    AccountingUnavailable,
    Failure,
    StreamResult,
    broken_stream_error,
    cut_reason,
    loads_or_none,
)
from relaygate.relay.failover import settled, try_in_order
from relaygate.relay.images import ImagesRelay, Made, bill_for, estimated_usage, openai_usage
from relaygate.relay.multipart import ImageForm
from relaygate.routing.records import ChannelRecord
from relaygate.scrub import Scrubber
from relaygate.sse import SSEDecoder, SSEEventTooLarge, named_frame
from relaygate.storage.recorder import RecorderError

_NOT_ACCOUNTED = "The request could not be accounted for; it was not billed."


def event_prefix(job: ImageJob) -> str:
    return "image_edit" if job.operation is ImageOperation.EDIT else "image_generation"


class ImageStreamTap:
    """Forwards events as they come; keeps the latest ``*.completed`` event back until the next event
    or the end, counting images and reading usage."""

    def __init__(self, scrubber: Scrubber) -> None:
        self._decoder = SSEDecoder()
        self._scrubber = scrubber
        self._held = b""
        self.images = 0
        self.usage: Usage | None = None
        self.error = False
        self.delivered = False

    def feed(self, chunk: bytes) -> bytes:
        return self._take(self._decoder.feed(chunk))

    def finish(self) -> bytes:
        return self._take(self._decoder.flush())

    def held(self) -> bytes:
        return self._held

    def _take(self, events: list[Any]) -> bytes:
        out: list[bytes] = []
        for event in events:
            if event.data is None:
                continue  # comments (keep-alives) are not forwarded
            if self._held:
                out.append(self._held)
                self._held = b""
            name = event.event or ""
            if name.endswith(".completed") or (not name and b'.completed"' in event.data[:200]):
                self.images += 1
                self.usage = _event_usage(event.data) or self.usage
                self._held = event.frame()
            else:
                if name == "error" or event.data.startswith(b'{"error"'):
                    self.error = True
                    out.append(self._error_frame(event.data))
                else:
                    out.append(event.frame())
        if out:
            self.delivered = True
        return b"".join(out)


    def _error_frame(self, data: bytes) -> bytes:
        """The upstream's error event rebuilt from its known fields, scrubbed (never passed as it came)."""
        parsed = loads_or_none(data)
        error = parsed.get("error", parsed) if isinstance(parsed, dict) else {}
        return named_frame("error", orjson.dumps({"type": "error", "error": scrubbed_error(error, self._scrubber)}))


class ImageStreams:
    def __init__(self, relay: ImagesRelay) -> None:
        self._relay = relay

    async def relay(self, call: Call, job: ImageJob, form: ImageForm | None, raw: bytes | None) -> StreamResult:
        candidates = self._relay.candidates(call)
        self._relay.admit(call, job)

        async def attempt(channel: ChannelRecord, upstream_model: str) -> StreamResult | Failure:
            return await self._attempt(call, job, form, raw, channel, upstream_model)

        return await settled(self._relay.meter, call, try_in_order(call, candidates, attempt))

    async def _attempt(self, call: Call, job: ImageJob, form: ImageForm | None, raw: bytes | None,
                       channel: ChannelRecord, upstream_model: str) -> StreamResult | Failure:
        ability = images_provider_for(channel.type)
        transport = transport_for(channel) or self._relay.services.http
        if ability is None:  # images made by an image-output model: answered as events once made
            made = await self._relay.gemini(call, job, form, channel, upstream_model, transport)
            return made if isinstance(made, Failure) else StreamResult(self._replay(call, job, made))
        request = self._relay.openai_request(call, job, form, raw, channel, upstream_model, ability)
        request.headers["Accept"] = "text/event-stream"
        request.stream = True
        exchange = self._relay.exchange
        response = await exchange.send(channel, transport, request, openai_error)
        if isinstance(response, Failure):
            return response
        if not response.content_type.startswith("text/event-stream"):
            body = await exchange.read(channel, response)
            if isinstance(body, Failure):
                return body
            made = self._relay.made_from_json(channel, body)
            return made if isinstance(made, Failure) else StreamResult(self._replay(call, job, made))
        chunks = response.iter_chunks().__aiter__()
        try:
            first = await chunks.__anext__()
        except (StopAsyncIteration, UpstreamReadTimeout, UpstreamConnectError):
            response.close()
            self._relay.services.health.failure(channel.id)
            return Failure(UpstreamError("The upstream closed the stream before answering."), EndReason.UPSTREAM_ERROR)
        self._relay.services.health.success(channel.id)
        call.first_byte_at = time.monotonic()
        return StreamResult(self._forward(call, job, response, chunks, first, channel.scrubber))

    async def _forward(self, call: Call, job: ImageJob, response: UpstreamResponse, chunks: AsyncIterator[bytes],
                       first: bytes, scrubber: Scrubber) -> AsyncIterator[bytes]:
        tap = ImageStreamTap(scrubber)
        streams = self._relay.services.streams
        streams.add(response)
        try:
            out = tap.feed(first)
            if out:
                yield out
            reason = EndReason.STREAM_CUT
            try:
                async for chunk in chunks:
                    out = tap.feed(chunk)
                    if out:
                        yield out
                out = tap.finish()
                if out:
                    yield out
                reason = (EndReason.UPSTREAM_ERROR if tap.error
                          else EndReason.DONE if tap.images >= 1 else EndReason.STREAM_CUT)
            except UpstreamReadTimeout:
                reason = EndReason.TIMEOUT
            except (UpstreamConnectError, SSEEventTooLarge):  # an event that never ends is a broken stream
                reason = EndReason.STREAM_CUT
            reason = cut_reason(reason, streams)
            if reason is not EndReason.DONE and tap.held():
                yield tap.held()  # a finished image is the client's even if the stream broke after it
            yield await self._end(call, job, reason, tap.usage, tap.images, tap.delivered or bool(tap.images))
            if reason is EndReason.DONE:
                yield tap.held()
        finally:
            streams.discard(response)
            response.close()
            if not call.finished:
                with contextlib.suppress(RecorderError):
                    await self._finish(call, job, cut_reason(EndReason.CLIENT_GONE, streams), tap.usage, tap.images,
                                       tap.delivered)

    async def _replay(self, call: Call, job: ImageJob, made: Made) -> AsyncIterator[bytes]:
        """The events of images that were made whole."""
        frames = completed_events(job, made)
        try:
            for frame in frames[:-1]:
                yield frame
            error = await self._end(call, job, EndReason.DONE, made.usage, made.images, True)
            yield error or frames[-1]
        finally:
            if not call.finished:
                with contextlib.suppress(RecorderError):
                    await self._finish(call, job, cut_reason(EndReason.CLIENT_GONE, self._relay.services.streams),
                                       made.usage, made.images, True)

    async def _end(self, call: Call, job: ImageJob, reason: EndReason, usage: Usage | None, images: int,
                   delivered: bool) -> bytes:
        """Commit the record; b"" to go on with the last event, else the client's in-stream error."""
        try:
            await self._finish(call, job, reason, usage, images, delivered)
        except RecorderError:
            return OPENAI.stream_error_frame(AccountingUnavailable(_NOT_ACCOUNTED), call.request_id)
        if reason in (EndReason.DONE, EndReason.UPSTREAM_ERROR):
            return b""  # done, or the upstream's own error event was forwarded
        return OPENAI.stream_error_frame(broken_stream_error(reason), call.request_id)

    async def _finish(self, call: Call, job: ImageJob, reason: EndReason, usage: Usage | None, images: int,
                      delivered: bool) -> None:
        made = Made(b"", usage, images)
        await self._relay.meter.finish(call, reason, status=200, usage=usage, delivered=delivered,
                                       estimated=estimated_usage(job, made), image=bill_for(job, images),
                                       error_code=None if reason is EndReason.DONE else reason.value)


def completed_events(job: ImageJob, made: Made) -> list[bytes]:
    """One ``*.completed`` event per image of a whole images response; the last carries the usage."""
    parsed = orjson.loads(made.payload)
    prefix = event_prefix(job)
    common = {k: parsed[k] for k in ("background", "output_format", "quality", "size") if k in parsed}
    items = [item for item in parsed.get("data", []) if isinstance(item, dict)]
    frames = []
    for index, item in enumerate(items):
        event: dict[str, Any] = {"type": f"{prefix}.completed", "created_at": parsed.get("created", 0), **common,
                                 **{k: item[k] for k in ("b64_json", "url", "revised_prompt") if k in item}}
        if index == len(items) - 1 and made.usage is not None:
            event["usage"] = openai_images_usage(made.usage)
        frames.append(named_frame(f"{prefix}.completed", orjson.dumps(event)))
    return frames


def _event_usage(data: bytes) -> Usage | None:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return openai_usage(parsed) if isinstance(parsed, dict) else None
