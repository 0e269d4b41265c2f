"""OpenAI's image streams (``stream: true`` on generations and edits; GPT image models' partial images):
SSE events named ``image_generation.*`` / ``image_edit.*``, each image ending with a ``*.completed``
event that carries it (and, on the last, the usage).

Two taps for the relay's stream driver (``upstream/stream.py``), both holding the latest
``*.completed`` event back until the usage record is committed, as chat taps hold their last event:
``ImageEventsTap`` forwards an upstream's event stream as it comes; ``MadeImagesTap`` replays the
events OpenAI would have sent for images made whole (a channel that does not stream), one
``*.completed`` event per image and no partial images. A finished image is the client's however the
stream ends: the error frame that ends a broken stream comes after it.
"""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.core.images import ImageJob, ImageOperation
from relaygate.core.usage import Usage
from relaygate.core.wire import loads_or_none
from relaygate.dialects.openai.errors import scrubbed_error, stream_error_frame
from relaygate.dialects.openai.images import openai_images_usage, openai_usage
from relaygate.dialects.sse import SSEDecoder, SSEEvent, named_frame
from relaygate.errors import GatewayError
from relaygate.scrub import Scrubber


def event_prefix(job: ImageJob) -> str:
    return "image_edit" if job.operation is ImageOperation.EDIT else "image_generation"


class ImageEventsTap:
    """Forwards events as they come; keeps the latest ``*.completed`` event back until the next event
    or the end, counting images and reading usage."""

    def __init__(self, scrubber: Scrubber) -> None:
        self._decoder = SSEDecoder()
        self._scrubber = scrubber
        self._held = b""
        self.images = 0
        self.events = 0
        self.usage: Usage | None = None
        self.error = False

    @property
    def completed(self) -> bool:
        return self.images >= 1 and not self.error

    def feed(self, chunk: bytes) -> bytes:
        return self._take(self._decoder.feed(chunk))

    def finish(self) -> bytes:
        return self._take(self._decoder.flush())

    def final_frame(self) -> bytes:
        return self._held

    def error_frame(self, error: GatewayError, request_id: str) -> bytes:
        return self._held + stream_error_frame(error, request_id)

    def _take(self, events: list[SSEEvent]) -> bytes:
        out: list[bytes] = []
        for event in events:
            if event.data is None:
                continue  # comments (keep-alives) are not forwarded
            self.events += 1
            if self._held:
                out.append(self._held)
                self._held = b""
            name = event.event or ""
            if name.endswith(".completed") or (not name and b'.completed"' in event.data[:200]):
                self.images += 1
                self.usage = _event_usage(event.data) or self.usage
                self._held = event.frame()
            elif name == "error" or event.data.startswith(b'{"error"'):
                self.error = True
                out.append(self._error_frame(event.data))
            else:
                out.append(event.frame())
        return b"".join(out)

    def _error_frame(self, data: bytes) -> bytes:
        """The upstream's error event rebuilt from its known fields, scrubbed (never passed as it came)."""
        parsed = loads_or_none(data)
        error = parsed.get("error", parsed) if isinstance(parsed, dict) else {}
        return named_frame("error", orjson.dumps({"type": "error", "error": scrubbed_error(error, self._scrubber)}))


class MadeImagesTap:
    """The ``*.completed`` events of images made whole (``completed_events``), fed one frame at a time;
    the last is held back. ``usage`` and ``images`` are the whole answer's."""

    def __init__(self, frames: int, usage: Usage | None, images: int) -> None:
        self._frames = frames
        self._held = b""
        self.events = 0
        self.usage = usage
        self.images = images
        self.error = False

    @property
    def completed(self) -> bool:
        return self.events == self._frames

    def feed(self, chunk: bytes) -> bytes:
        self.events += 1
        if self.events == self._frames:
            self._held = chunk
            return b""
        return chunk

    def finish(self) -> bytes:
        return b""

    def final_frame(self) -> bytes:
        return self._held

    def error_frame(self, error: GatewayError, request_id: str) -> bytes:
        return self._held + stream_error_frame(error, request_id)


def completed_events(job: ImageJob, payload: bytes, usage: Usage | None) -> list[bytes]:
    """One ``*.completed`` event per image of a whole images response; the last carries the usage."""
    parsed = orjson.loads(payload)
    prefix = event_prefix(job)
    common = {k: parsed[k] for k in ("background", "output_format", "quality", "size") if k in parsed}
    items = [item for item in parsed.get("data", []) if isinstance(item, dict)]
    frames = []
    for index, item in enumerate(items):
        event: dict[str, Any] = {"type": f"{prefix}.completed", "created_at": parsed.get("created", 0), **common,
                                 **{k: item[k] for k in ("b64_json", "url", "revised_prompt") if k in item}}
        if index == len(items) - 1 and usage is not None:
            event["usage"] = openai_images_usage(usage)
        frames.append(named_frame(f"{prefix}.completed", orjson.dumps(event)))
    return frames


def _event_usage(data: bytes) -> Usage | None:
    parsed = loads_or_none(data)
    return openai_usage(parsed) if isinstance(parsed, dict) else None
