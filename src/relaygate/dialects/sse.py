"""Server-sent events at the edges: an incremental decoder for upstream bytes and frame encoders.

The decoder accepts ``\\n``, ``\\r\\n`` and ``\\r`` line ends and events split anywhere across reads.
It keeps each event's normalised bytes (``raw``) so a passthrough can forward them without building
them again.
"""

from __future__ import annotations

from dataclasses import dataclass

from relaygate.core.stream import StreamFrameTooLarge


@dataclass(slots=True)
class SSEEvent:
    raw: bytes  # the event's lines, normalised to \n, without the blank line that ends it
    data: bytes | None  # data lines joined by \n; None for a comment-only event
    event: str | None = None

    def frame(self) -> bytes:
        return self.raw + b"\n\n"


class SSEEventTooLarge(StreamFrameTooLarge):
    """An upstream event grew past ``MAX_EVENT_BYTES`` without ending: the stream is treated as broken."""


# One event (a whole partial image of an image stream is the largest seen: a few MiB of base64) may
# not exceed this; an upstream that never ends its event cannot make the decoder hold more.
MAX_EVENT_BYTES = 32 * 1024 * 1024


class SSEDecoder:
    def __init__(self, max_event_bytes: int = MAX_EVENT_BYTES) -> None:
        # The unfinished event, as the reads that brought it: joined only once its blank line arrives,
        # so an event spread over many reads costs one copy, not one per read.
        self._pending: list[bytes] = []
        self._pending_bytes = 0
        self._pending_cr = False
        self._max_event_bytes = max_event_bytes

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        return [event for block in self.blocks(chunk) if (event := parse_event(block)) is not None]

    def blocks(self, chunk: bytes) -> list[bytes]:
        """The events that ``chunk`` completes, as their normalised bytes (``SSEEvent.raw``; possibly
        empty blocks): for a tap that looks into most events only with a byte search."""
        if self._pending_cr:
            chunk = b"\r" + chunk
            self._pending_cr = False
        if chunk.endswith(b"\r"):
            # Could be the first half of \r\n: wait for the next read to decide.
            chunk = chunk[:-1]
            self._pending_cr = True
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        if not self._ends_an_event(chunk):
            self._keep(chunk)
            return []
        buffer = b"".join((*self._pending, chunk)) if self._pending else chunk
        parts = buffer.split(b"\n\n")
        rest = parts.pop()
        self._pending, self._pending_bytes = ([rest], len(rest)) if rest else ([], 0)
        return parts

    def _ends_an_event(self, chunk: bytes) -> bool:
        """Whether a blank line ends in ``chunk``, also one whose first newline came with the last read."""
        if b"\n\n" in chunk:
            return True
        return bool(self._pending) and chunk.startswith(b"\n") and self._pending[-1].endswith(b"\n")

    def _keep(self, chunk: bytes) -> None:
        if not chunk:
            return
        self._pending_bytes += len(chunk)
        if self._pending_bytes > self._max_event_bytes:
            self._pending, self._pending_bytes = [], 0
            raise SSEEventTooLarge(f"an upstream event is longer than {self._max_event_bytes} bytes")
        self._pending.append(chunk)

    def flush(self) -> list[SSEEvent]:
        """Whatever is left when the stream ends (an event missing its final blank line)."""
        event = parse_event(self.flush_block())
        return [event] if event is not None else []

    def flush_block(self) -> bytes:
        """``flush`` as the event's normalised bytes (empty when nothing was left)."""
        rest = b"".join(self._pending)
        self._pending, self._pending_bytes, self._pending_cr = [], 0, False
        return rest.strip(b"\n")

    @property
    def has_partial(self) -> bool:
        return any(piece.strip() for piece in self._pending)


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
