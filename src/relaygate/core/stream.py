"""Provider-neutral stream events, and folding them into a :class:`ChatResponse`.

A stream is ``MessageStart``, then content blocks, then ``Finish`` (or ``StreamError``). Each block
has an ``index``: text and thinking blocks open with their first delta, tool-call blocks with
``ToolCallStart``; ``BlockStop`` closes a block. Indices rise in order but may skip numbers (a source
block with no neutral meaning leaves a gap); encoders number their own output.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TypeAlias

from relaygate.core.chat import (
    ChatResponse,
    Extras,
    FinishReason,
    Part,
    RedactedThinkingPart,
    TextPart,
    ThinkingPart,
    ToolCallPart,
)
from relaygate.core.usage import Usage


@dataclass(frozen=True, slots=True)
class MessageStart:
    id: str
    model: str
    usage: Usage | None = None  # input (and cache) counts, when the source knows them this early


@dataclass(frozen=True, slots=True)
class TextDelta:
    index: int
    text: str


@dataclass(frozen=True, slots=True)
class ThinkingDelta:
    index: int
    text: str


@dataclass(frozen=True, slots=True)
class SignatureDelta:
    """The opaque signature of thinking block ``index``; valid only for ``origin``."""

    index: int
    signature: str
    origin: str | None = None


@dataclass(frozen=True, slots=True)
class RedactedThinking:
    """A whole redacted-thinking block (it has no deltas)."""

    index: int
    data: str
    origin: str | None = None


@dataclass(frozen=True, slots=True)
class ToolCallStart:
    index: int
    id: str
    name: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of the JSON text of the arguments of the call opened at block ``index``."""

    index: int
    arguments: str


@dataclass(frozen=True, slots=True)
class BlockStop:
    index: int


@dataclass(frozen=True, slots=True)
class Finish:
    reason: FinishReason
    usage: Usage | None = None
    stop_sequence: str | None = None
    extras: Extras = field(default_factory=dict)  # e.g. the source's own finish reason when the neutral one loses it


@dataclass(frozen=True, slots=True)
class StreamError:
    """An error after the stream started. ``kind`` uses ``GatewayError.kind`` words (``overloaded``,
    ``rate_limit``, ``invalid_request``, ``server_error``...). The message is the upstream's, as it
    said it: the relay's ``TranslatingTap`` scrubs it with the channel's scrubber before any client
    dialect encodes it."""

    message: str
    kind: str = "server_error"


StreamEvent: TypeAlias = (
    MessageStart | TextDelta | ThinkingDelta | SignatureDelta | RedactedThinking | ToolCallStart | ToolCallDelta
    | BlockStop | Finish | StreamError
)

class StreamFrameTooLarge(ValueError):
    """An upstream stream event grew past its framing's bound without ending: the stream is broken.
    Each framing raises its own subclass (``sse.SSEEventTooLarge``); the relay names only this one."""


WireEvent: TypeAlias = tuple[str | None, dict[str, Any]]
"""An outbound event: the SSE ``event:`` name (None for data-only dialects) and its JSON payload.
SSE bytes are made at the edge, not here."""


@dataclass(slots=True)
class _Block:
    kind: str
    text: list[str] = field(default_factory=list)
    signature: str | None = None
    origin: str | None = None
    call_id: str = ""
    name: str = ""


def _block_part(block: _Block) -> Part:
    if block.kind == "text":
        return TextPart("".join(block.text))
    if block.kind == "thinking":
        return ThinkingPart("".join(block.text), block.signature, block.origin)
    if block.kind == "redacted":
        return RedactedThinkingPart("".join(block.text), block.origin)
    return ToolCallPart(block.call_id, block.name, "".join(block.text) or "{}")


def _apply(blocks: dict[int, _Block], event: StreamEvent) -> None:
    if isinstance(event, TextDelta):
        blocks.setdefault(event.index, _Block("text")).text.append(event.text)
    elif isinstance(event, ThinkingDelta):
        blocks.setdefault(event.index, _Block("thinking")).text.append(event.text)
    elif isinstance(event, SignatureDelta):
        block = blocks.setdefault(event.index, _Block("thinking"))
        block.signature = (block.signature or "") + event.signature
        block.origin = event.origin
    elif isinstance(event, RedactedThinking):
        blocks[event.index] = _Block("redacted", [event.data], origin=event.origin)
    elif isinstance(event, ToolCallStart):
        blocks[event.index] = _Block("tool", call_id=event.id, name=event.name)
    elif isinstance(event, ToolCallDelta):
        blocks.setdefault(event.index, _Block("tool")).text.append(event.arguments)


def accumulate(events: Iterable[StreamEvent]) -> ChatResponse:
    """The response a whole stream amounts to (for a non-streaming caller of a streaming upstream, and
    for tests). A stream that never finished ends with reason ``error``."""
    blocks: dict[int, _Block] = {}
    start = MessageStart("", "")
    finish = Finish(FinishReason.ERROR)
    for event in events:
        if isinstance(event, MessageStart):
            start = event
        elif isinstance(event, Finish):
            finish = event
        elif isinstance(event, StreamError):
            finish = Finish(FinishReason.ERROR, finish.usage)
        else:
            _apply(blocks, event)
    parts = tuple(_block_part(blocks[index]) for index in sorted(blocks))
    usage = finish.usage or start.usage
    return ChatResponse(start.id, start.model, parts, finish.reason, usage, finish.stop_sequence,
                        extras=finish.extras)
