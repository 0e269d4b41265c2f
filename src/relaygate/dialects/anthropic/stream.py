"""Anthropic Messages stream events to and from neutral stream events.

Both directions are small state machines fed one item at a time: an upstream event (the parsed
``data:`` JSON, whose ``type`` equals the SSE event name) → core events, and core events → outbound
``(event name, payload)`` pairs in Anthropic's exact order: ``message_start``, ``ping``, per block
``content_block_start`` / ``content_block_delta``* / ``content_block_stop``, ``message_delta`` with
usage, ``message_stop``.
"""

from __future__ import annotations

from typing import Any

from relaygate.core.chat import json_text
from relaygate.core.stream import (
    BlockStop,
    Finish,
    MessageStart,
    RedactedThinking,
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
from relaygate.core.wire import as_dict, as_int, as_str
from relaygate.dialects.anthropic.shared import (
    ERROR_KIND_IN,
    ERROR_KIND_OUT,
    D,
    input_usage_to_anthropic,
    stop_reason_in,
    stop_reason_out,
    usage_from_anthropic,
)

_NEUTRAL_BLOCKS = frozenset({"text", "thinking", "tool_use", "redacted_thinking"})


class AnthropicStreamToCore:
    """Upstream Messages stream events → core events. Blocks with no neutral meaning (server tool
    use and results) are skipped, leaving a gap in the indices. Usage: input and cache counts from
    ``message_start``, updated by the cumulative ``message_delta`` usage."""

    def __init__(self) -> None:
        self._usage: dict[str, Any] = {}
        self._blocks: dict[int, str] = {}
        self._reason: Any = None
        self._stop_sequence: str | None = None
        self._finished = False

    def feed(self, event: dict[str, Any]) -> list[StreamEvent]:
        kind = event.get("type")
        if self._finished:
            return []
        if kind == "message_start":
            message = as_dict(event.get("message"))
            self._usage = dict(as_dict(message.get("usage")))
            return [MessageStart(str(message.get("id") or ""), str(message.get("model") or ""),
                                 usage_from_anthropic(self._usage))]
        if kind == "content_block_start":
            return self._block_start(as_int(event.get("index")) or 0, as_dict(event.get("content_block")))
        if kind == "content_block_delta":
            return self._delta(as_int(event.get("index")) or 0, as_dict(event.get("delta")))
        if kind == "content_block_stop":
            index = as_int(event.get("index")) or 0
            return [BlockStop(index)] if self._blocks.get(index) in _NEUTRAL_BLOCKS else []
        if kind == "message_delta":
            self._message_delta(event)
            return []
        if kind == "message_stop":
            return self.close()
        if kind == "error":
            error = as_dict(event.get("error"))
            kind_out = ERROR_KIND_IN.get(str(error.get("type")), "server_error")
            return [StreamError(str(error.get("message") or "upstream error"), kind_out)]
        return []  # ping, and event types newer than this converter

    def close(self) -> list[StreamEvent]:
        """``message_stop``, or the end of the body: the finish, if a stop reason came."""
        if self._reason is None or self._finished:
            return []
        self._finished = True
        reason, extra = stop_reason_in(self._reason, self._stop_sequence)
        return [Finish(reason, usage_from_anthropic(self._usage), self._stop_sequence, {D: extra} if extra else {})]

    def _message_delta(self, event: dict[str, Any]) -> None:
        delta = as_dict(event.get("delta"))
        self._reason = delta.get("stop_reason") or self._reason
        self._stop_sequence = as_str(delta.get("stop_sequence")) or self._stop_sequence
        self._usage.update({k: v for k, v in as_dict(event.get("usage")).items() if v is not None})

    def _block_start(self, index: int, block: dict[str, Any]) -> list[StreamEvent]:
        kind = str(block.get("type"))
        self._blocks[index] = kind
        if kind == "tool_use":
            out: list[StreamEvent] = [ToolCallStart(index, str(block.get("id") or ""), str(block.get("name") or ""))]
            if as_dict(block.get("input")):
                out.append(ToolCallDelta(index, json_text(block["input"])))
            return out
        if kind == "redacted_thinking":
            return [RedactedThinking(index, str(block.get("data") or ""), D)]
        if kind == "text" and block.get("text"):
            return [TextDelta(index, str(block["text"]))]
        if kind == "thinking" and block.get("thinking"):
            return [ThinkingDelta(index, str(block["thinking"]))]
        return []

    def _delta(self, index: int, delta: dict[str, Any]) -> list[StreamEvent]:
        kind = delta.get("type")
        if kind == "text_delta":
            return [TextDelta(index, str(delta.get("text") or ""))]
        if kind == "thinking_delta":
            return [ThinkingDelta(index, str(delta.get("thinking") or ""))]
        if kind == "signature_delta":
            return [SignatureDelta(index, str(delta.get("signature") or ""), D)]
        if kind == "input_json_delta" and delta.get("partial_json") and self._blocks.get(index) == "tool_use":
            return [ToolCallDelta(index, str(delta["partial_json"]))]
        return []  # citations_delta, an empty input_json_delta, deltas of skipped blocks


class CoreToAnthropicStream:
    """Core events → Messages stream events for the client's ``model`` name. Blocks are renumbered;
    signatures and redacted thinking from another dialect are dropped (Anthropic would refuse them
    when sent back), and a thinking block with nothing left to show is not opened."""

    def __init__(self, model: str) -> None:
        self._model = model
        self._started = False
        self._start_usage: Usage | None = None
        self._next = 0
        self._open: tuple[int, int, str] | None = None  # (core index, outbound index, kind)

    def feed(self, event: StreamEvent) -> list[WireEvent]:
        if isinstance(event, StreamError):
            error = {"type": ERROR_KIND_OUT.get(event.kind, "api_error"), "message": event.message}
            return [("error", {"type": "error", "error": error})]
        out: list[WireEvent] = []
        if not self._started:
            out.extend(self._message_start(event if isinstance(event, MessageStart) else MessageStart("", "")))
        if isinstance(event, Finish):
            self._close(out)
            out.append(("message_delta", self._message_delta(event)))
            out.append(("message_stop", {"type": "message_stop"}))
        elif isinstance(event, BlockStop):
            if self._open is not None and self._open[0] == event.index:
                self._close(out)
        elif not isinstance(event, MessageStart):
            self._content(event, out)
        return out

    def _message_start(self, event: MessageStart) -> list[WireEvent]:
        self._started = True
        self._start_usage = event.usage
        usage = event.usage or Usage()
        message: dict[str, Any] = {
            "id": event.id, "type": "message", "role": "assistant", "model": self._model, "content": [],
            "stop_reason": None, "stop_sequence": None,
            "usage": {**input_usage_to_anthropic(usage), "output_tokens": usage.output_tokens}}
        return [("message_start", {"type": "message_start", "message": message}), ("ping", {"type": "ping"})]

    def _message_delta(self, event: Finish) -> dict[str, Any]:
        usage = event.usage or self._start_usage or Usage()
        out_usage: dict[str, int] = {"output_tokens": usage.output_tokens}
        start = self._start_usage
        if event.usage is not None and (start is None or input_usage_to_anthropic(start)
                                        != input_usage_to_anthropic(event.usage)):
            out_usage = {**input_usage_to_anthropic(event.usage), **out_usage}  # input learnt late (OpenAI)
        delta = {"stop_reason": stop_reason_out(event.reason, event.stop_sequence, event.extras.get(D) or {}),
                 "stop_sequence": event.stop_sequence}
        return {"type": "message_delta", "delta": delta, "usage": out_usage}

    def _content(self, event: StreamEvent, out: list[WireEvent]) -> None:
        if isinstance(event, TextDelta):
            index = self._ensure(event.index, "text", out)
            out.append(_delta(index, {"type": "text_delta", "text": event.text}))
        elif isinstance(event, ThinkingDelta):
            index = self._ensure(event.index, "thinking", out)
            out.append(_delta(index, {"type": "thinking_delta", "thinking": event.text}))
        elif isinstance(event, SignatureDelta) and event.origin == D:
            index = self._ensure(event.index, "thinking", out)
            out.append(_delta(index, {"type": "signature_delta", "signature": event.signature}))
        elif isinstance(event, RedactedThinking) and event.origin == D:
            self._ensure(event.index, "redacted_thinking", out, {"data": event.data})
            self._close(out)
        elif isinstance(event, ToolCallStart):
            index = self._ensure(event.index, "tool_use", out, {"id": event.id, "name": event.name, "input": {}})
            out.append(_delta(index, {"type": "input_json_delta", "partial_json": ""}))  # as Anthropic does
        elif isinstance(event, ToolCallDelta) and self._open is not None and self._open[0] == event.index:
            out.append(_delta(self._open[1], {"type": "input_json_delta", "partial_json": event.arguments}))

    def _ensure(self, core_index: int, kind: str, out: list[WireEvent], fields: dict[str, Any] | None = None) -> int:
        if self._open is not None and self._open[0] == core_index and self._open[2] == kind:
            return self._open[1]
        self._close(out)
        self._open = (core_index, self._next, kind)
        self._next += 1
        block = {"type": kind, **(fields if fields is not None else _EMPTY_BLOCKS.get(kind, {}))}
        out.append(("content_block_start", {"type": "content_block_start", "index": self._open[1],
                                            "content_block": block}))
        return self._open[1]

    def _close(self, out: list[WireEvent]) -> None:
        if self._open is not None:
            out.append(("content_block_stop", {"type": "content_block_stop", "index": self._open[1]}))
            self._open = None


_EMPTY_BLOCKS: dict[str, dict[str, Any]] = {"text": {"text": ""}, "thinking": {"thinking": "", "signature": ""}}


def _delta(index: int, delta: dict[str, Any]) -> WireEvent:
    return ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})


def anthropic_stream_to_core() -> AnthropicStreamToCore:
    return AnthropicStreamToCore()


def core_stream_to_anthropic(model: str) -> CoreToAnthropicStream:
    return CoreToAnthropicStream(model)
