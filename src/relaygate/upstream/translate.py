"""Streams between two dialects: upstream frames → core events → the client's events and framing (each
dialect's reader and framing own the bytes; nothing here knows how a stream is framed).

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


class TranslatingTap:
    def __init__(self, upstream: Dialect, client: Dialect, *, model: str, include_usage: bool,
                 scrubber: Scrubber) -> None:
        self._reader = upstream.stream_reader()
        self._scrubber = scrubber
        self._client = client
        self._encoder = client.stream_encoder(model, include_usage)
        self._framing = client.framing()
        self._held = b""
        self._start_usage: Usage | None = None
        self._tally = TokenTally(model)
        self.usage: Usage | None = None
        self.error: dict[str, Any] | None = None
        self.finished = False

    @property
    def events(self) -> int:
        return self._reader.events

    def feed(self, chunk: bytes) -> bytes:
        return self._encode(self._reader.feed(chunk))

    def finish(self) -> bytes:
        return self._encode(self._reader.finish())

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
