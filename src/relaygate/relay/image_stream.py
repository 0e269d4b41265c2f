"""Streamed image generation and editing (``stream: true``; GPT image models' partial images).

A channel with OpenAI's images API is asked for a stream; its events are forwarded as they come
(``dialects/openai/image_stream.py``). A channel that does not stream (images made by an image-output
chat model, the mock, an upstream that answered JSON) is answered with the events OpenAI would have
sent for the finished images. Either way the stream runs through the one stream driver
(``upstream/stream.py``), as chat streams do: first chunk read before answering, record committed
before the last event, every other end billed.

Billing: the images completed (per-image prices) or the upstream's usage (token prices); a stream cut
before any image completed costs nothing per image, and its usage, if any arrived, is billed as for
chat streams (docs/billing.md).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Protocol

from relaygate.billing.rules import EndReason
from relaygate.core.images import ImageJob
from relaygate.core.usage import Usage
from relaygate.dialects.openai.adapter import OPENAI
from relaygate.dialects.openai.errors import parse_upstream_error as openai_error
from relaygate.dialects.openai.image_stream import ImageEventsTap, MadeImagesTap, completed_events
from relaygate.meter.call import Call
from relaygate.providers.registry import images_provider_for
from relaygate.relay.images import ImagesRelay, Made
from relaygate.relay.multipart import ImageForm
from relaygate.routing.records import ChannelRecord
from relaygate.upstream.attempt import Failure, Wait
from relaygate.upstream.failover import settled, try_in_order
from relaygate.upstream.stream import StreamDriver, StreamResult, StreamTap


class ImageTap(StreamTap, Protocol):
    """An image stream's tap, as its record reads it."""

    @property
    def usage(self) -> Usage | None: ...

    @property
    def images(self) -> int: ...


class _NothingToClose:
    """The upstream of a replayed stream: its answer was read whole and is closed already."""

    def close(self) -> None:
        return None


_REPLAYED = _NothingToClose()


class ImageStreams:
    def __init__(self, relay: ImagesRelay) -> None:
        self._relay = relay
        self._driver = StreamDriver(relay.services.streams)

    async def relay(self, call: Call, job: ImageJob, form: ImageForm | None, raw: bytes | None) -> StreamResult:
        candidates = self._relay.candidates(call)
        self._relay.admit(call, job)

        async def attempt(channel: ChannelRecord, upstream_model: str) -> StreamResult | Failure:
            return await self._attempt(call, job, form, raw, channel, upstream_model)

        return await settled(self._relay.meter, call, try_in_order(call, candidates, attempt))

    async def _attempt(self, call: Call, job: ImageJob, form: ImageForm | None, raw: bytes | None,
                       channel: ChannelRecord, upstream_model: str) -> StreamResult | Failure:
        ability = images_provider_for(channel.type)
        if ability is None:  # images made by an image-output model: answered as events once made
            made = await self._relay.gemini(call, job, form, channel, upstream_model)
            return made if isinstance(made, Failure) else self._replay(call, job, made)
        request = self._relay.openai_request(call, job, form, raw, channel, upstream_model, ability)
        request.headers["Accept"] = "text/event-stream"
        request.stream = True
        upstream = self._relay.upstream
        response = await upstream.send(channel, request, openai_error, Wait.STREAM)
        if isinstance(response, Failure):
            return response
        if not OPENAI.answers_stream(response.content_type):
            body = await upstream.read(channel, response)
            if isinstance(body, Failure):
                return body
            made = self._relay.made_from_json(channel, body)
            return made if isinstance(made, Failure) else self._replay(call, job, made)
        opened = await upstream.first_chunk(channel, response)
        if isinstance(opened, Failure):
            return opened
        call.first_byte_at = time.monotonic()
        chunks, first = opened
        return StreamResult(self._driver.run(call, response, chunks, first, ImageEventsTap(channel.scrubber),
                                             _ImageRecord(self._relay, job)))

    def _replay(self, call: Call, job: ImageJob, made: Made) -> StreamResult:
        """The events of images that were made whole."""
        frames = completed_events(job, made.payload, made.usage)
        tap = MadeImagesTap(len(frames), made.usage, made.images)
        return StreamResult(self._driver.run(call, _REPLAYED, _frames(frames[1:]), frames[0], tap,
                                             _ImageRecord(self._relay, job)))


class _ImageRecord:
    """An image stream's usage record: the images completed and the usage seen. A completed image is
    the client's however the stream ends (the tap sends it before any error event)."""

    def __init__(self, relay: ImagesRelay, job: ImageJob) -> None:
        self._relay = relay
        self._job = job

    async def __call__(self, call: Call, tap: ImageTap, reason: EndReason, *, delivered: bool,
                       error_code: str | None) -> None:
        await self._relay.finish(call, self._job, reason, Made(b"", tap.usage, tap.images),
                                 delivered=delivered or tap.images > 0, error_code=error_code)


async def _frames(frames: Sequence[bytes]) -> AsyncIterator[bytes]:
    for frame in frames:
        yield frame
