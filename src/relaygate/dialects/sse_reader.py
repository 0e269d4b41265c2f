"""Reading an upstream stream framed as server-sent events: the framing the three chat dialects share
on the wire today. Each dialect makes its reader with its own decoder and says which event is its last
(``dialects/<name>/adapter.py``); the relay sees only ``base.StreamReader``."""

from __future__ import annotations

from collections.abc import Callable

import orjson

from relaygate.core.stream import StreamEvent
from relaygate.dialects.base import StreamDecoder
from relaygate.dialects.sse import SSEDecoder, SSEEvent

# Whether an event (its name, its data) is the dialect's last: nothing after it is read.
EndsStream = Callable[[str | None, bytes], bool]


def never(name: str | None, data: bytes) -> bool:
    """For dialects whose streams end when the connection closes (Gemini)."""
    return False


class SSEStreamReader:
    def __init__(self, decoder: StreamDecoder, ends: EndsStream) -> None:
        self._sse = SSEDecoder()
        self._decoder = decoder
        self._ends = ends
        self._ended = False
        self.events = 0

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        """Raises ``sse.SSEEventTooLarge`` (a ``StreamFrameTooLarge``) for an event that never ends."""
        return [out for event in self._sse.feed(chunk) for out in self._event(event)]

    def finish(self) -> list[StreamEvent]:
        out = [out for event in self._sse.flush() for out in self._event(event)]
        out.extend(self._decoder.close())
        return out

    def _event(self, event: SSEEvent) -> list[StreamEvent]:
        if event.data is None or self._ended:
            return []
        if self._ends(event.event, event.data):
            self._ended = True
        if event.data == b"[DONE]":  # OpenAI's terminator, from whichever upstream sends it
            return self._decoder.close()
        try:
            payload = orjson.loads(event.data)
        except orjson.JSONDecodeError:
            return []  # a malformed upstream event has no translation; the meter counts what came
        if not isinstance(payload, dict):
            return []
        self.events += 1
        return self._decoder.feed(payload)
