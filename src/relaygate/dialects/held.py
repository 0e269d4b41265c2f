"""What a passthrough tap holds back until the usage record is committed: its dialect's last event
(OpenAI's ``[DONE]`` aside, which is made, not held), and anything an upstream sends after it."""

from __future__ import annotations

HELD_LIMIT = 64 * 1024  # bytes kept after the last event (nothing should follow it)


class HeldFrames:
    """The first frame always; what follows it up to ``HELD_LIMIT`` bytes, the rest dropped, so that an
    upstream that goes on after its end cannot grow what the tap holds."""

    __slots__ = ("_bytes", "_frames")

    def __init__(self) -> None:
        self._frames: list[bytes] = []
        self._bytes = 0

    def add(self, frame: bytes) -> None:
        if frame and (not self._frames or self._bytes + len(frame) <= HELD_LIMIT):
            self._frames.append(frame)
            self._bytes += len(frame)

    def __bool__(self) -> bool:
        return bool(self._frames)

    def joined(self) -> bytes:
        return b"".join(self._frames)
