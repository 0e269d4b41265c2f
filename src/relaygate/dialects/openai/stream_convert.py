"""OpenAI chat-completion chunks to and from neutral stream events.

Both directions are small state machines fed one item at a time: an upstream chunk (already parsed
from its ``data:`` line; ``[DONE]`` is not a chunk, call ``close()`` instead) → core events, and core
events → outbound chunks. The ``[DONE]`` terminator is the edge's to add.
"""

from __future__ import annotations

from typing import Any

from relaygate.core.chat import FinishReason
from relaygate.core.stream import (
    BlockStop,
    Finish,
    MessageStart,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallStart,
    WireEvent,
)
from relaygate.core.usage import Usage
from relaygate.core.wire import as_dict, as_int, as_list, as_str
from relaygate.dialects.openai.convert import FINISH_IN, FINISH_OUT
from relaygate.dialects.openai.response_convert import finish_out
from relaygate.dialects.openai.usage import usage_from_openai, usage_to_openai

D = "openai"

_KIND_IN = {"invalid_request_error": "invalid_request", "server_error": "server_error", "requests": "rate_limit",
            "tokens": "rate_limit", "insufficient_quota": "quota", "rate_limit_exceeded": "rate_limit"}
_KIND_OUT = {"invalid_request": "invalid_request_error", "authentication": "invalid_request_error",
             "permission": "invalid_request_error", "not_found": "invalid_request_error", "rate_limit": "requests",
             "quota": "insufficient_quota"}


class OpenAIStreamToCore:
    """Upstream ``chat.completion.chunk`` objects → core events (first choice only).

    ``Finish`` is emitted once both the finish reason and the usage are known (the usage chunk comes
    after the finish chunk), or at ``close()`` without usage.
    """

    def __init__(self) -> None:
        self._started = False
        self._next = 0
        self._open: tuple[str, int] | None = None  # (block key, core index)
        self._tools: dict[int, int] = {}  # OpenAI tool_calls index → core block index
        self._reason: str | None = None
        self._usage: Usage | None = None
        self._finished = False

    def feed(self, chunk: dict[str, Any]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        if self._finished:
            return out
        if "error" in chunk and not chunk.get("choices"):
            error = as_dict(chunk["error"])
            kind = _KIND_IN.get(str(error.get("type") or error.get("code")), "server_error")
            return [StreamError(str(error.get("message") or "upstream error"), kind)]
        if not self._started:
            self._started = True
            out.append(MessageStart(str(chunk.get("id") or ""), str(chunk.get("model") or "")))
        self._usage = usage_from_openai(chunk.get("usage")) or self._usage
        for choice in as_list(chunk.get("choices")):
            if as_dict(choice).get("index", 0) == 0:
                self._choice(as_dict(choice), out)
        if self._reason is not None and self._usage is not None:
            out.append(self._finish())
        return out

    def close(self) -> list[StreamEvent]:
        """The upstream ended (``[DONE]`` or end of body)."""
        return [self._finish()] if self._reason is not None and not self._finished else []

    def _finish(self) -> Finish:
        self._finished = True
        reason = self._reason or "stop"
        extras = {D: {"finish_reason": reason}} if reason not in FINISH_OUT.values() else {}
        return Finish(FINISH_IN.get(reason, FinishReason.STOP), self._usage, extras=extras)

    def _block(self, key: str, out: list[StreamEvent]) -> int:
        if self._open is not None and self._open[0] == key:
            return self._open[1]
        self._close(out)
        self._open = (key, self._next)
        self._next += 1
        return self._open[1]

    def _close(self, out: list[StreamEvent]) -> None:
        if self._open is not None:
            out.append(BlockStop(self._open[1]))
            self._open = None

    def _choice(self, choice: dict[str, Any], out: list[StreamEvent]) -> None:
        delta = as_dict(choice.get("delta"))
        reasoning = as_str(delta.get("reasoning_content"))
        if reasoning:
            out.append(ThinkingDelta(self._block("thinking", out), reasoning))
        for key in ("content", "refusal"):
            text = as_str(delta.get(key))
            if text:
                out.append(TextDelta(self._block("text", out), text))
        for position, call in enumerate(as_list(delta.get("tool_calls"))):
            self._tool_call(as_dict(call), position, out)
        reason = as_str(choice.get("finish_reason"))
        if reason:
            self._close(out)
            self._reason = reason

    def _tool_call(self, call: dict[str, Any], position: int, out: list[StreamEvent]) -> None:
        number = as_int(call.get("index"))
        number = position if number is None else number
        function = as_dict(call.get("function"))
        if number not in self._tools:
            self._tools[number] = self._block(f"tool:{number}", out)
            out.append(ToolCallStart(self._tools[number], str(call.get("id") or ""), str(function.get("name") or "")))
        arguments = as_str(function.get("arguments"))
        if arguments:
            out.append(ToolCallDelta(self._tools[number], arguments))


class CoreToOpenAIStream:
    """Core events → ``chat.completion.chunk`` payloads: a role chunk, deltas, a finish chunk with an
    empty delta, then (with ``include_usage``) a usage chunk with ``choices: []``.

    ``created`` is the Unix time to stamp on every chunk (the caller's clock). Thinking is shown as
    ``delta.reasoning_content``; signatures and redacted thinking have no OpenAI form and are dropped.
    A ``Finish`` without usage sends no usage chunk: the relay supplies usage before finishing.
    """

    def __init__(self, model: str, *, created: int = 0, include_usage: bool = False) -> None:
        self._model = model
        self._created = created
        self._include_usage = include_usage
        self._id = ""
        self._started = False
        self._tools: dict[int, int] = {}  # core block index → OpenAI tool_calls index

    def feed(self, event: StreamEvent) -> list[WireEvent]:
        if isinstance(event, StreamError):
            error = {"message": event.message, "type": _KIND_OUT.get(event.kind, "server_error"),
                     "param": None, "code": None}
            return [(None, {"error": error})]
        out: list[WireEvent] = []
        if isinstance(event, MessageStart) or not self._started:
            self._id = event.id if isinstance(event, MessageStart) else self._id
            self._started = True
            out.append(self._chunk({"role": "assistant", "content": ""}))
        if isinstance(event, Finish):
            out.append(self._chunk({}, finish_out(event.reason, event.extras.get(D) or {})))
            if self._include_usage and event.usage is not None:
                out.append(self._usage_chunk(event.usage))
            return out
        delta = self._delta(event)
        if delta is not None:
            out.append(self._chunk(delta))
        return out

    def _delta(self, event: StreamEvent) -> dict[str, Any] | None:
        if isinstance(event, TextDelta):
            return {"content": event.text}
        if isinstance(event, ThinkingDelta):
            return {"reasoning_content": event.text}
        if isinstance(event, ToolCallStart):
            self._tools[event.index] = number = len(self._tools)
            function = {"name": event.name, "arguments": ""}
            return {"tool_calls": [{"index": number, "id": event.id, "type": "function", "function": function}]}
        if isinstance(event, ToolCallDelta):
            number = self._tools.get(event.index, 0)
            return {"tool_calls": [{"index": number, "function": {"arguments": event.arguments}}]}
        return None

    def _base(self) -> dict[str, Any]:
        return {"id": self._id, "object": "chat.completion.chunk", "created": self._created, "model": self._model}

    def _chunk(self, delta: dict[str, Any], finish_reason: str | None = None) -> WireEvent:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        chunk = {**self._base(), "choices": [choice]}
        if self._include_usage:
            chunk["usage"] = None
        return (None, chunk)

    def _usage_chunk(self, usage: Usage) -> WireEvent:
        return (None, {**self._base(), "choices": [], "usage": usage_to_openai(usage)})


def openai_stream_to_core() -> OpenAIStreamToCore:
    return OpenAIStreamToCore()


def core_stream_to_openai(model: str, *, created: int = 0, include_usage: bool = False) -> CoreToOpenAIStream:
    return CoreToOpenAIStream(model, created=created, include_usage=include_usage)
