"""The Gemini generateContent dialect as the relay sees it, in its two stream framings."""

from __future__ import annotations

import dataclasses
from typing import Any

import orjson

from relaygate.core.usage import Usage
from relaygate.dialects.base import Dialect, PassthroughTap
from relaygate.dialects.gemini.errors import (
    array_error_frame,
    error_body,
    error_status,
    parse_upstream_error,
    stream_error_frame,
)
from relaygate.dialects.gemini.request import core_request_to_gemini, gemini_request_to_core, gemini_urls_to_fetch
from relaygate.dialects.gemini.response import core_response_to_gemini, gemini_response_to_core
from relaygate.dialects.gemini.shared import usage_from_gemini
from relaygate.dialects.gemini.stream import core_stream_to_gemini, gemini_stream_to_core
from relaygate.scrub import Scrubber


def _has_finish(payload: dict[str, Any]) -> bool:
    candidates = payload.get("candidates")
    return isinstance(candidates, list) and any(
        isinstance(c, dict) and (c.get("finishReason") or c.get("finish_reason")) for c in candidates)


class GeminiSSEFraming:
    """``?alt=sse``: ``data: <json>`` chunks and no terminator; the chunk with the finish reason is last."""

    def frame(self, name: str | None, payload: dict[str, Any]) -> bytes:
        return b"data: " + orjson.dumps(payload) + b"\r\n\r\n"

    def terminal(self, name: str | None, payload: dict[str, Any]) -> bool:
        return _has_finish(payload)

    def end(self) -> bytes:
        return b""


class GeminiArrayFraming:
    """The default ``streamGenerateContent`` form: one JSON array delivered element by element. An error
    element (``{"error": ...}``) is the last one: it closes the array, so that the body stays one JSON
    array whether the stream ends normally or not."""

    def __init__(self) -> None:
        self._opened = False
        self._closed = False

    def frame(self, name: str | None, payload: dict[str, Any]) -> bytes:
        if self._closed:
            return b""
        prefix = b",\r\n" if self._opened else b"["
        self._opened = True
        if "error" in payload and "candidates" not in payload:
            self._closed = True
            return prefix + orjson.dumps(payload) + b"]"
        return prefix + orjson.dumps(payload)

    def terminal(self, name: str | None, payload: dict[str, Any]) -> bool:
        return _has_finish(payload)

    def end(self) -> bytes:
        if self._closed:
            return b""
        return b"]" if self._opened else b"[]"


def usage_of(parsed: Any) -> Usage | None:
    return usage_from_gemini(parsed.get("usageMetadata")) if isinstance(parsed, dict) else None


def text_of(parsed: Any) -> str:
    texts: list[str] = []
    candidates = parsed.get("candidates") if isinstance(parsed, dict) else None
    for candidate in candidates if isinstance(candidates, list) else ():
        content = candidate.get("content") if isinstance(candidate, dict) else None
        parts = content.get("parts") if isinstance(content, dict) else None
        for part in parts if isinstance(parts, list) else ():
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            call = part.get("functionCall") or part.get("function_call")
            if isinstance(call, dict):
                texts.append(str(call.get("name") or "") + orjson.dumps(call.get("args") or {}).decode())
    return "".join(texts)


def _tap(client_wants_usage: bool, scrubber: Scrubber, model: str) -> PassthroughTap:
    from relaygate.dialects.gemini.stream_tap import GeminiStreamTap

    tap: PassthroughTap = GeminiStreamTap(client_wants_usage=client_wants_usage, scrubber=scrubber, model=model)
    return tap


GEMINI = Dialect(
    name="gemini",
    request_to_core=lambda body, model, stream: gemini_request_to_core(body, model=model, stream=stream),
    request_from_core=core_request_to_gemini,
    response_to_core=gemini_response_to_core,
    response_from_core=core_response_to_gemini,
    stream_decoder=gemini_stream_to_core,
    stream_encoder=lambda model, include_usage: core_stream_to_gemini(model),
    sse_framing=GeminiSSEFraming,
    passthrough_tap=_tap,
    passthrough_body=lambda body, raw, model, stream, wants_usage: raw,  # the model is in the URL
    usage_of=usage_of,
    text_of=text_of,
    upstream_done=lambda name, data: False,  # Gemini streams end when the connection closes
    urls_to_fetch=gemini_urls_to_fetch,
    parse_upstream_error=parse_upstream_error,
    error_status=error_status,
    error_body=error_body,
    stream_error_frame=stream_error_frame,
)

# A client that streams without ``alt=sse`` reads one JSON array. Upstreams are always asked for SSE,
# so this variant is never the same object as a channel's dialect: its streams go through the core
# model and come out re-framed.
GEMINI_JSON_ARRAY = dataclasses.replace(GEMINI, sse_framing=GeminiArrayFraming, stream_error_frame=array_error_frame)
