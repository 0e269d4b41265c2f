"""Streams between two dialects: upstream SSE → core events → the client's events and framing.

``TranslatingTap`` has the passthrough taps' interface (``dialects.base.PassthroughTap``), so the
relay meters and ends a translated stream exactly like a passed-through one: the client dialect's
terminal event is held back until the usage record is committed, and the generated text is kept only as
a running token count.
"""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.billing.tokenizer import TokenTally
from relaygate.core.chat import TextPart, ThinkingPart, ToolCallPart
from relaygate.core.stream import (
    Finish,
    MessageStart,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallStart,
)
from relaygate.core.usage import Usage
from relaygate.dialects.base import Dialect
from relaygate.errors import GatewayError
from relaygate.scrub import Scrubber
from relaygate.sse import SSEDecoder, SSEEvent


class TranslatingTap:
    def __init__(self, upstream: Dialect, client: Dialect, *, model: str, include_usage: bool,
                 scrubber: Scrubber) -> None:
        self._upstream = upstream
        self._scrubber = scrubber
        self._sse = SSEDecoder()
        self._decoder = upstream.stream_decoder()
        self._client = client
        self._encoder = client.stream_encoder(model, include_usage)
        self._framing = client.sse_framing()
        self._held = b""
        self._start_usage: Usage | None = None
        self._tally = TokenTally(model)
        self.usage: Usage | None = None
        self.error: dict[str, Any] | None = None
        self.events = 0
        self.finished = False
        self.upstream_ended = False

    def feed(self, chunk: bytes) -> bytes:
        return b"".join(self._upstream_event(event) for event in self._sse.feed(chunk))

    def finish(self) -> bytes:
        out = [self._upstream_event(event) for event in self._sse.flush()]
        out.append(self._encode(self._decoder.close()))
        return b"".join(out)

    @property
    def completed(self) -> bool:
        return self.finished and self.error is None

    def produced_tokens(self) -> int:
        return self._tally.total()

    def final_frame(self) -> bytes:
        return self._held + self._framing.end()

    def error_frame(self, error: GatewayError, request_id: str) -> bytes:
        """The client dialect's in-stream error event for ``error``, framed as this stream's next event
        (in a JSON-array stream: the array's last element, whether or not anything came before it)."""
        _, body = self._client.error_body(error, request_id)
        return self._framing.frame(None, orjson.loads(body))

    def _upstream_event(self, event: SSEEvent) -> bytes:
        if event.data is None or self.upstream_ended:
            return b""
        if self._upstream.upstream_done(event.event, event.data):
            self.upstream_ended = True
        if event.data == b"[DONE]":
            return self._encode(self._decoder.close())
        try:
            payload = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return b""  # a malformed upstream event has no translation; the meter counts what came
        if not isinstance(payload, dict):
            return b""
        self.events += 1
        return self._encode(self._decoder.feed(payload))

    def _encode(self, events: list[StreamEvent]) -> bytes:
        out: list[bytes] = []
        for event in events:
            if isinstance(event, StreamError):  # the upstream's words: scrubbed here, for every pair
                event = StreamError(self._scrubber.text(event.message), event.kind)
            self._note(event)
            for name, payload in self._encoder.feed(event):
                frame = self._framing.frame(name, payload)
                if self._framing.terminal(name, payload):
                    self._held = frame
                else:
                    out.append(frame)
        return b"".join(out)

    def _note(self, event: StreamEvent) -> None:
        if isinstance(event, TextDelta | ThinkingDelta):
            self._tally.add(event.text)
        elif isinstance(event, ToolCallStart):
            self._tally.add(event.name)
        elif isinstance(event, ToolCallDelta):
            self._tally.add(event.arguments)
        elif isinstance(event, MessageStart):
            self._start_usage = event.usage
        elif isinstance(event, Finish):
            self.finished = True
            self.usage = event.usage or self._start_usage or self.usage  # never back to None
            if self.usage is not None:
                self._tally.stop()  # the upstream's count is billed
        elif isinstance(event, StreamError):
            self.error = {"message": event.message, "kind": event.kind}


def response_text(parts: tuple[Any, ...]) -> str:
    """Generated text of a translated response's parts (for the offline count)."""
    texts: list[str] = []
    for part in parts:
        if isinstance(part, TextPart | ThinkingPart):
            texts.append(part.text)
        elif isinstance(part, ToolCallPart):
            texts.append(part.name + part.arguments)
    return "".join(texts)
