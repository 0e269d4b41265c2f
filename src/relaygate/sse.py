"""Server-sent events at the edges: an incremental decoder for upstream bytes and frame encoders.

The decoder accepts ``\\n``, ``\\r\\n`` and ``\\r`` line ends and events split anywhere across reads.
It keeps each event's normalised bytes (``raw``) so a passthrough can forward them without building
them again.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SSEEvent:
    raw: bytes  # the event's lines, normalised to \n, without the blank line that ends it
    data: bytes | None  # data lines joined by \n; None for a comment-only event
    event: str | None = None

    def frame(self) -> bytes:
        return self.raw + b"\n\n"


class SSEDecoder:
    def __init__(self) -> None:
        self._buffer = b""
        self._pending_cr = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if self._pending_cr:
            chunk = b"\r" + chunk
            self._pending_cr = False
        if chunk.endswith(b"\r"):
            # Could be the first half of \r\n: wait for the next read to decide.
            chunk = chunk[:-1]
            self._pending_cr = True
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        buffer = self._buffer + chunk if self._buffer else chunk
        if b"\n\n" not in buffer:
            self._buffer = buffer
            return []
        parts = buffer.split(b"\n\n")
        self._buffer = parts.pop()
        return [event for part in parts if (event := parse_event(part)) is not None]

    def flush(self) -> list[SSEEvent]:
        """Whatever is left when the stream ends (an event missing its final blank line)."""
        rest, self._buffer = self._buffer, b""
        if self._pending_cr:
            self._pending_cr = False
        event = parse_event(rest.strip(b"\n"))
        return [event] if event is not None else []

    @property
    def has_partial(self) -> bool:
        return bool(self._buffer.strip())


def parse_event(block: bytes) -> SSEEvent | None:
    if not block:
        return None
    if block.startswith(b"data: ") and b"\n" not in block:  # the common case: one data line
        return SSEEvent(block, block[6:])
    data: list[bytes] = []
    name: str | None = None
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            data.append(value[1:] if value.startswith(b" ") else value)
        elif line.startswith(b"event:"):
            name = line[6:].strip().decode("utf-8", "replace")
    return SSEEvent(block, b"\n".join(data) if data else None, name)


def data_frame(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


def named_frame(event: str, payload: bytes) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + payload + b"\n\n"
