"""The Gemini generateContent dialect as the relay sees it, in its two stream framings."""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.core.chat import ChatRequest, ChatResponse
from relaygate.core.usage import Usage
from relaygate.core.wire import as_int
from relaygate.dialects.base import Dialect, Framing, PassthroughTap, StreamEncoder, StreamReader
from relaygate.dialects.gemini.errors import (
    array_error_frame,
    error_body,
    error_status,
    parse_upstream_error,
    stream_error_frame,
)
from relaygate.dialects.gemini.request import core_request_to_gemini, gemini_request_to_core, gemini_urls_to_fetch
from relaygate.dialects.gemini.response import core_response_to_gemini, gemini_response_to_core
from relaygate.dialects.gemini.shared import pick, usage_from_gemini
from relaygate.dialects.gemini.stream import core_stream_to_gemini, gemini_stream_to_core
from relaygate.dialects.openai.convert import core_request_to_openai
from relaygate.dialects.sse_reader import SSEStreamReader, never
from relaygate.errors import GatewayError, UpstreamRejected
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


def max_output_tokens(body: dict[str, Any], default: int) -> int:
    """``generationConfig.maxOutputTokens`` (either spelling; else ``default``) times ``candidateCount``."""
    config = pick(body, "generationConfig")
    config = config if isinstance(config, dict) else {}
    choices = max(1, as_int(pick(config, "candidateCount")) or 1)
    value = as_int(pick(config, "maxOutputTokens"))
    return (value if value is not None and value > 0 else default) * choices


class GeminiDialect:
    """Google's generateContent; upstreams are always asked for SSE (``alt=sse``): ``data:`` chunks with
    no terminator, the stream ends when the connection closes. A client's stream is framed the same way;
    ``GeminiArrayDialect`` frames it as the default JSON array instead."""

    name = "gemini"

    def request_to_core(self, body: dict[str, Any], model: str, stream: bool) -> ChatRequest:
        return gemini_request_to_core(body, model=model, stream=stream)

    def request_from_core(self, req: ChatRequest) -> dict[str, Any]:
        return core_request_to_gemini(req)

    def passthrough_body(self, body: dict[str, Any], raw: bytes, upstream_model: str, stream: bool,
                         client_wants_usage: bool) -> bytes:
        return raw  # the model is in the URL

    def urls_to_fetch(self, req: ChatRequest) -> list[str]:
        return gemini_urls_to_fetch(req)

    def max_output_tokens(self, body: dict[str, Any], default: int) -> int:
        return max_output_tokens(body, default)

    def wants_usage(self, body: dict[str, Any]) -> bool:
        return False  # Gemini reports usage on its chunks

    def counted_prompt(self, body: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
        return core_request_to_openai(self.request_to_core(body, model, stream))

    def response_to_core(self, parsed: dict[str, Any]) -> ChatResponse:
        return gemini_response_to_core(parsed)

    def response_from_core(self, resp: ChatResponse, model: str) -> dict[str, Any]:
        return core_response_to_gemini(resp, model)

    def usage_of(self, parsed: Any) -> Usage | None:
        return usage_of(parsed)

    def text_of(self, parsed: Any) -> str:
        return text_of(parsed)

    def answers_stream(self, content_type: str) -> bool:
        return content_type.startswith("text/event-stream")

    def stream_reader(self) -> StreamReader:
        return SSEStreamReader(gemini_stream_to_core(), never)

    def stream_encoder(self, model: str, include_usage: bool) -> StreamEncoder:
        return core_stream_to_gemini(model)

    def framing(self) -> Framing:
        return GeminiSSEFraming()

    def passthrough_tap(self, client_wants_usage: bool, scrubber: Scrubber, model: str) -> PassthroughTap:
        from relaygate.dialects.gemini.stream_tap import GeminiStreamTap

        return GeminiStreamTap(client_wants_usage=client_wants_usage, scrubber=scrubber, model=model)

    def parse_upstream_error(self, status: int, body: bytes, scrubber: Scrubber) -> UpstreamRejected:
        return parse_upstream_error(status, body, scrubber)

    def error_status(self, parsed: Any) -> int | None:
        return error_status(parsed)

    def error_body(self, error: GatewayError, request_id: str) -> tuple[int, bytes]:
        return error_body(error, request_id)

    def stream_error_frame(self, error: GatewayError, request_id: str) -> bytes:
        return stream_error_frame(error, request_id)


class GeminiArrayDialect(GeminiDialect):
    """A client that streams without ``alt=sse`` reads one JSON array. Upstreams are always asked for
    SSE, so this variant is never a channel's dialect: its streams go through the core model and come
    out re-framed (its ``name`` stays "gemini": the bodies it sends are Gemini's)."""

    def framing(self) -> Framing:
        return GeminiArrayFraming()

    def stream_error_frame(self, error: GatewayError, request_id: str) -> bytes:
        return array_error_frame(error, request_id)


GEMINI: Dialect = GeminiDialect()
GEMINI_JSON_ARRAY: Dialect = GeminiArrayDialect()
