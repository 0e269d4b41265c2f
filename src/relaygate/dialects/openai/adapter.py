"""The OpenAI chat-completions dialect as the relay sees it."""

from __future__ import annotations

import time
from typing import Any

import orjson

from relaygate.core.chat import ChatRequest, ChatResponse
from relaygate.core.usage import Usage
from relaygate.core.wire import as_int
from relaygate.dialects.base import Dialect, Framing, PassthroughTap, StreamEncoder, StreamReader
from relaygate.dialects.openai.convert import core_request_to_openai, openai_request_to_core, openai_urls_to_fetch
from relaygate.dialects.openai.errors import error_body, error_status, parse_upstream_error, stream_error_frame
from relaygate.dialects.openai.response_convert import core_response_to_openai, openai_response_to_core
from relaygate.dialects.openai.stream_convert import core_stream_to_openai, openai_stream_to_core
from relaygate.dialects.openai.stream_tap import OpenAIStreamTap
from relaygate.dialects.openai.usage import usage_from_openai
from relaygate.dialects.sse_reader import SSEStreamReader
from relaygate.errors import GatewayError, UpstreamRejected
from relaygate.scrub import Scrubber

DONE_FRAME = b"data: [DONE]\n\n"


class OpenAIFraming:
    """``data: <json>`` events; the stream ends with ``data: [DONE]``."""

    def frame(self, name: str | None, payload: dict[str, Any]) -> bytes:
        return b"data: " + orjson.dumps(payload) + b"\n\n"

    def terminal(self, name: str | None, payload: dict[str, Any]) -> bool:
        return False

    def end(self) -> bytes:
        return DONE_FRAME


def passthrough_body(body: dict[str, Any], raw: bytes, upstream_model: str, stream: bool,
                     client_wants_usage: bool) -> bytes:
    """The client's bytes untouched unless a documented edit is needed: the mapped model name, and
    ``stream_options.include_usage`` on streams so that the upstream reports usage."""
    needs_usage = stream and not client_wants_usage
    if upstream_model == body.get("model") and not needs_usage:
        return raw
    edited = dict(body)
    edited["model"] = upstream_model
    if needs_usage:
        options = edited.get("stream_options")
        edited["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return orjson.dumps(edited)


def request_from_core(req: ChatRequest) -> dict[str, Any]:
    body = core_request_to_openai(req)
    if req.stream:  # the relay's one edit: always ask the upstream for usage
        options = body.get("stream_options")
        body["stream_options"] = {**(options if isinstance(options, dict) else {}), "include_usage": True}
    return body


def usage_of(parsed: Any) -> Usage | None:
    return usage_from_openai(parsed.get("usage")) if isinstance(parsed, dict) else None


def text_of(parsed: Any) -> str:
    """Generated text and tool-call arguments of a ``chat.completion`` (for the offline count)."""
    if not isinstance(parsed, dict) or not isinstance(parsed.get("choices"), list):
        return ""
    texts: list[str] = []
    for choice in parsed["choices"]:
        message = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(message, dict):
            continue
        if isinstance(message.get("content"), str):
            texts.append(message["content"])
        tool_calls = message.get("tool_calls")
        for tool_call in tool_calls if isinstance(tool_calls, list) else ():
            fn = tool_call.get("function") if isinstance(tool_call, dict) else None
            if isinstance(fn, dict):
                texts.append(str(fn.get("name") or "") + str(fn.get("arguments") or ""))
    return "".join(texts)


def max_output_tokens(body: dict[str, Any], default: int) -> int:
    """``max_completion_tokens`` (else the older ``max_tokens``, else ``default``) times ``n``."""
    choices = max(1, as_int(body.get("n")) or 1)
    for name in ("max_completion_tokens", "max_tokens"):
        value = as_int(body.get(name))
        if value is not None and value > 0:
            return value * choices
    return default * choices


def wants_usage(body: dict[str, Any]) -> bool:
    """Whether the client asked for the usage chunk (``stream_options.include_usage``)."""
    options = body.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


class OpenAIDialect:
    """OpenAI's chat completions; streams are SSE ``data:`` events ended by ``data: [DONE]``."""

    name = "openai"

    def request_to_core(self, body: dict[str, Any], model: str, stream: bool) -> ChatRequest:
        return openai_request_to_core(body)

    def request_from_core(self, req: ChatRequest) -> dict[str, Any]:
        return request_from_core(req)

    def passthrough_body(self, body: dict[str, Any], raw: bytes, upstream_model: str, stream: bool,
                         client_wants_usage: bool) -> bytes:
        return passthrough_body(body, raw, upstream_model, stream, client_wants_usage)

    def urls_to_fetch(self, req: ChatRequest) -> list[str]:
        return openai_urls_to_fetch(req)

    def max_output_tokens(self, body: dict[str, Any], default: int) -> int:
        return max_output_tokens(body, default)

    def wants_usage(self, body: dict[str, Any]) -> bool:
        return wants_usage(body)

    def counted_prompt(self, body: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
        return body  # already the form the count reads

    def response_to_core(self, parsed: dict[str, Any]) -> ChatResponse:
        return openai_response_to_core(parsed)

    def response_from_core(self, resp: ChatResponse, model: str) -> dict[str, Any]:
        return core_response_to_openai(resp, model, created=int(time.time()))

    def usage_of(self, parsed: Any) -> Usage | None:
        return usage_of(parsed)

    def text_of(self, parsed: Any) -> str:
        return text_of(parsed)

    def answers_stream(self, content_type: str) -> bool:
        return content_type.startswith("text/event-stream")

    def stream_reader(self) -> StreamReader:
        return SSEStreamReader(openai_stream_to_core(), lambda name, data: data == b"[DONE]")

    def stream_encoder(self, model: str, include_usage: bool) -> StreamEncoder:
        return core_stream_to_openai(model, created=int(time.time()), include_usage=include_usage)

    def framing(self) -> Framing:
        return OpenAIFraming()

    def passthrough_tap(self, client_wants_usage: bool, scrubber: Scrubber, model: str) -> PassthroughTap:
        return OpenAIStreamTap(client_wants_usage=client_wants_usage, scrubber=scrubber, model=model)

    def parse_upstream_error(self, status: int, body: bytes, scrubber: Scrubber) -> UpstreamRejected:
        return parse_upstream_error(status, body, scrubber)

    def error_status(self, parsed: Any) -> int | None:
        return error_status(parsed)

    def error_body(self, error: GatewayError, request_id: str) -> tuple[int, bytes]:
        return error.status, error_body(error, request_id)

    def stream_error_frame(self, error: GatewayError, request_id: str) -> bytes:
        return stream_error_frame(error, request_id)


OPENAI: Dialect = OpenAIDialect()
