"""Gemini streamGenerateContent chunks to and from neutral stream events.

Upstream chunks are ``GenerateContentResponse`` objects (one per SSE ``data:`` line, or per element
of the streamed JSON array): text is a delta, ``usageMetadata`` is cumulative, ``finishReason`` comes
on the last chunk, and function calls arrive whole. Outbound chunks have the same shape; the edge
frames them as SSE or as a JSON array.
"""

from __future__ import annotations

from typing import Any

from relaygate.core.chat import FinishReason, TextPart, ThinkingPart, ToolCallPart
from relaygate.core.stream import (
    BlockStop,
    Finish,
    MessageStart,
    SignatureDelta,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallStart,
    WireEvent,
)
from relaygate.core.usage import Usage
from relaygate.core.wire import as_dict
from relaygate.dialects.gemini.parts import CallIds, parts_in, parts_out
from relaygate.dialects.gemini.response import first_candidate
from relaygate.dialects.gemini.shared import (
    D,
    error_in,
    error_out,
    finish_in,
    finish_out,
    usage_from_gemini,
    usage_to_gemini,
)


class GeminiStreamToCore:
    """Upstream chunks → core events (first candidate only). A whole ``functionCall`` part becomes a
    tool-call block with its arguments in one delta. ``Finish`` comes with the chunk that has both a
    finish reason and usage, or at ``close()``."""

    def __init__(self) -> None:
        self._ids: CallIds | None = None
        self._next = 0
        self._open: tuple[str, int] | None = None
        self._reason: Any = None
        self._blocked = False
        self._has_calls = False
        self._usage: Usage | None = None
        self._finished = False

    def feed(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        if self._finished:
            return []
        if "error" in chunk:
            message, kind = error_in(chunk["error"])
            return [StreamError(message, kind)]
        out: list[StreamEvent] = []
        self._usage = usage_from_gemini(chunk.get("usageMetadata")) or self._usage
        if self._ids is None:
            out.append(self._start(chunk))
        candidate = first_candidate(chunk)
        for part in parts_in(as_dict(candidate.get("content")).get("parts"), self._ids or CallIds()):
            self._part(part, out)
        if candidate.get("finishReason"):
            self._close(out)
            self._reason = candidate["finishReason"]
        elif not candidate and as_dict(chunk.get("promptFeedback")).get("blockReason"):
            self._blocked = True
        if (self._reason is not None or self._blocked) and self._usage is not None:
            out.extend(self.close())
        return out

    def close(self) -> list[StreamEvent]:
        """The end of the upstream body: the finish, if a reason came."""
        if self._finished or (self._reason is None and not self._blocked):
            return []
        self._finished = True
        if self._blocked:
            return [Finish(FinishReason.CONTENT_FILTER, self._usage)]
        reason, extra = finish_in(self._reason, self._has_calls)
        return [Finish(reason, self._usage, extras={D: extra} if extra else {})]

    def _start(self, chunk: dict[str, Any]) -> MessageStart:
        response_id = str(chunk.get("responseId") or "")
        self._ids = CallIds(response_id)
        usage = self._usage
        start = Usage(usage.input_tokens, cached_input_tokens=usage.cached_input_tokens) if usage else None
        return MessageStart(response_id, str(chunk.get("modelVersion") or ""), start)

    def _block(self, kind: str, out: list[StreamEvent]) -> int:
        if self._open is not None and self._open[0] == kind:
            return self._open[1]
        self._close(out)
        self._open = (kind, self._next)
        self._next += 1
        return self._open[1]

    def _close(self, out: list[StreamEvent]) -> None:
        if self._open is not None:
            out.append(BlockStop(self._open[1]))
            self._open = None

    def _part(self, part: object, out: list[StreamEvent]) -> None:
        if isinstance(part, ThinkingPart):
            if part.text:
                out.append(ThinkingDelta(self._block("thinking", out), part.text))
            if part.signature:
                out.append(SignatureDelta(self._block("thinking", out), part.signature, D))
        elif isinstance(part, TextPart) and part.text:
            out.append(TextDelta(self._block("text", out), part.text))
        elif isinstance(part, ToolCallPart):
            self._close(out)
            index = self._block("tool", out)
            self._has_calls = True
            out.extend((ToolCallStart(index, part.id, part.name), ToolCallDelta(index, part.arguments)))
            self._close(out)
        # Inline media (image-output models) and executable code have no stream event: dropped.


class CoreToGeminiStream:
    """Core events → ``GenerateContentResponse`` chunks for the client's ``model`` name: one chunk per
    text or thought delta, one per whole function call (its argument pieces are gathered until the
    block stops), and a last chunk with ``finishReason``. ``usageMetadata`` is on every chunk once the
    input count is known (from ``MessageStart``), and final on the last."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._id = ""
        self._input: Usage | None = None
        self._signature: str | None = None
        self._calls: dict[int, tuple[str, str, list[str]]] = {}

    def feed(self, event: StreamEvent) -> list[WireEvent]:
        if isinstance(event, StreamError):
            return [(None, error_out(event.message, event.kind))]
        if isinstance(event, MessageStart):
            self._id, self._input = event.id, event.usage
        elif isinstance(event, TextDelta):
            return [self._chunk([{"text": event.text}])]
        elif isinstance(event, ThinkingDelta):
            return [self._chunk([{"text": event.text, "thought": True}])]
        elif isinstance(event, SignatureDelta) and event.origin == D:
            self._signature = event.signature  # goes onto the next part, where Gemini had it
        elif isinstance(event, ToolCallStart):
            self._calls[event.index] = (event.id, event.name, [])
        elif isinstance(event, ToolCallDelta) and event.index in self._calls:
            self._calls[event.index][2].append(event.arguments)
        elif isinstance(event, BlockStop) and event.index in self._calls:
            return [self._call_chunk(event.index)]
        elif isinstance(event, Finish):
            out = [self._call_chunk(index) for index in list(self._calls)]
            last = self._chunk([{"text": ""}], finish_out(event.reason, event.extras.get(D) or {}), event.usage)
            return [*out, last]
        return []

    def _call_chunk(self, index: int) -> WireEvent:
        call_id, name, pieces = self._calls.pop(index)
        return self._chunk(parts_out((ToolCallPart(call_id, name, "".join(pieces) or "{}"),), {}, show_thoughts=True))

    def _chunk(self, parts: list[dict[str, Any]], finish: str | None = None, usage: Usage | None = None) -> WireEvent:
        if self._signature is not None and parts:
            parts = [{**parts[0], "thoughtSignature": self._signature}, *parts[1:]]
            self._signature = None
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish is not None:
            candidate["finishReason"] = finish
        chunk: dict[str, Any] = {"candidates": [candidate]}
        if usage is not None or self._input is not None:  # cumulative, as Gemini sends it on every chunk
            chunk["usageMetadata"] = usage_to_gemini(usage or self._input or Usage())
        chunk["modelVersion"] = self._model
        chunk["responseId"] = self._id
        return (None, chunk)


def gemini_stream_to_core() -> GeminiStreamToCore:
    return GeminiStreamToCore()


def core_stream_to_gemini(model: str) -> CoreToGeminiStream:
    return CoreToGeminiStream(model)
