"""The Anthropic Messages dialect as the relay sees it."""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.core.chat import ChatRequest, ChatResponse
from relaygate.core.usage import Usage
from relaygate.core.wire import as_int
from relaygate.dialects.anthropic.errors import error_body, error_status, parse_upstream_error, stream_error_frame
from relaygate.dialects.anthropic.request import (
    anthropic_request_to_core,
    anthropic_urls_to_fetch,
    core_request_to_anthropic,
)
from relaygate.dialects.anthropic.response import anthropic_response_to_core, core_response_to_anthropic
from relaygate.dialects.anthropic.shared import usage_from_anthropic
from relaygate.dialects.anthropic.stream import anthropic_stream_to_core, core_stream_to_anthropic
from relaygate.dialects.base import Dialect, Framing, PassthroughTap, StreamEncoder, StreamReader
from relaygate.dialects.openai.convert import core_request_to_openai
from relaygate.dialects.sse_reader import SSEStreamReader
from relaygate.errors import GatewayError, UpstreamRejected
from relaygate.scrub import Scrubber


class AnthropicFraming:
    """``event: <type>`` + ``data: <json>``; ``message_stop`` is the last event, and nothing follows it."""

    def frame(self, name: str | None, payload: dict[str, Any]) -> bytes:
        event = (name or str(payload.get("type", ""))).encode()
        return b"event: " + event + b"\ndata: " + orjson.dumps(payload) + b"\n\n"

    def terminal(self, name: str | None, payload: dict[str, Any]) -> bool:
        return name == "message_stop"

    def end(self) -> bytes:
        return b""


def passthrough_body(body: dict[str, Any], raw: bytes, upstream_model: str, stream: bool,
                     client_wants_usage: bool) -> bytes:
    """The client's bytes, with the model name replaced only when the channel maps it."""
    if upstream_model == body.get("model"):
        return raw
    return orjson.dumps({**body, "model": upstream_model})


def usage_of(parsed: Any) -> Usage | None:
    return usage_from_anthropic(parsed.get("usage")) if isinstance(parsed, dict) else None


def text_of(parsed: Any) -> str:
    blocks = parsed.get("content") if isinstance(parsed, dict) else None
    texts: list[str] = []
    for block in blocks if isinstance(blocks, list) else ():
        if not isinstance(block, dict):
            continue
        for name in ("text", "thinking"):
            if isinstance(block.get(name), str):
                texts.append(block[name])
        if block.get("type") == "tool_use":
            texts.append(str(block.get("name") or "") + orjson.dumps(block.get("input") or {}).decode())
    return "".join(texts)


class AnthropicDialect:
    """Anthropic's Messages API; streams are SSE ``event:``/``data:`` pairs ended by ``message_stop``."""

    name = "anthropic"

    def request_to_core(self, body: dict[str, Any], model: str, stream: bool) -> ChatRequest:
        return anthropic_request_to_core(body)

    def request_from_core(self, req: ChatRequest) -> dict[str, Any]:
        return core_request_to_anthropic(req)

    def passthrough_body(self, body: dict[str, Any], raw: bytes, upstream_model: str, stream: bool,
                         client_wants_usage: bool) -> bytes:
        return passthrough_body(body, raw, upstream_model, stream, client_wants_usage)

    def urls_to_fetch(self, req: ChatRequest) -> list[str]:
        return anthropic_urls_to_fetch(req)

    def max_output_tokens(self, body: dict[str, Any], default: int) -> int:
        """``max_tokens`` (required by Anthropic; ``default`` when absent or invalid); one choice."""
        value = as_int(body.get("max_tokens"))
        return value if value is not None and value > 0 else default

    def wants_usage(self, body: dict[str, Any]) -> bool:
        return False  # Anthropic streams always carry usage

    def counted_prompt(self, body: dict[str, Any], model: str, stream: bool) -> dict[str, Any]:
        return core_request_to_openai(self.request_to_core(body, model, stream))

    def response_to_core(self, parsed: dict[str, Any]) -> ChatResponse:
        return anthropic_response_to_core(parsed)

    def response_from_core(self, resp: ChatResponse, model: str) -> dict[str, Any]:
        return core_response_to_anthropic(resp, model)

    def usage_of(self, parsed: Any) -> Usage | None:
        return usage_of(parsed)

    def text_of(self, parsed: Any) -> str:
        return text_of(parsed)

    def answers_stream(self, content_type: str) -> bool:
        return content_type.startswith("text/event-stream")

    def stream_reader(self) -> StreamReader:
        return SSEStreamReader(anthropic_stream_to_core(), lambda name, data: name == "message_stop")

    def stream_encoder(self, model: str, include_usage: bool) -> StreamEncoder:
        return core_stream_to_anthropic(model)

    def framing(self) -> Framing:
        return AnthropicFraming()

    def passthrough_tap(self, client_wants_usage: bool, scrubber: Scrubber, model: str) -> PassthroughTap:
        from relaygate.dialects.anthropic.stream_tap import AnthropicStreamTap

        return AnthropicStreamTap(client_wants_usage=client_wants_usage, scrubber=scrubber, model=model)

    def parse_upstream_error(self, status: int, body: bytes, scrubber: Scrubber) -> UpstreamRejected:
        return parse_upstream_error(status, body, scrubber)

    def error_status(self, parsed: Any) -> int | None:
        return error_status(parsed)

    def error_body(self, error: GatewayError, request_id: str) -> tuple[int, bytes]:
        return error_body(error, request_id)

    def stream_error_frame(self, error: GatewayError, request_id: str) -> bytes:
        return stream_error_frame(error, request_id)


ANTHROPIC: Dialect = AnthropicDialect()
