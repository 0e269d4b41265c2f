"""The Anthropic Messages dialect as the relay sees it."""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.core.usage import Usage
from relaygate.dialects.anthropic.errors import error_body, error_status, parse_upstream_error, stream_error_frame
from relaygate.dialects.anthropic.request import (
    anthropic_request_to_core,
    anthropic_urls_to_fetch,
    core_request_to_anthropic,
)
from relaygate.dialects.anthropic.response import anthropic_response_to_core, core_response_to_anthropic
from relaygate.dialects.anthropic.shared import usage_from_anthropic
from relaygate.dialects.anthropic.stream import anthropic_stream_to_core, core_stream_to_anthropic
from relaygate.dialects.base import Dialect, PassthroughTap
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


def _tap(client_wants_usage: bool, scrubber: Scrubber, model: str) -> PassthroughTap:
    from relaygate.dialects.anthropic.stream_tap import AnthropicStreamTap

    tap: PassthroughTap = AnthropicStreamTap(client_wants_usage=client_wants_usage, scrubber=scrubber, model=model)
    return tap


ANTHROPIC = Dialect(
    name="anthropic",
    request_to_core=lambda body, model, stream: anthropic_request_to_core(body),
    request_from_core=core_request_to_anthropic,
    response_to_core=anthropic_response_to_core,
    response_from_core=core_response_to_anthropic,
    stream_decoder=anthropic_stream_to_core,
    stream_encoder=lambda model, include_usage: core_stream_to_anthropic(model),
    sse_framing=AnthropicFraming,
    passthrough_tap=_tap,
    passthrough_body=passthrough_body,
    usage_of=usage_of,
    text_of=text_of,
    upstream_done=lambda name, data: name == "message_stop",
    urls_to_fetch=anthropic_urls_to_fetch,
    parse_upstream_error=parse_upstream_error,
    error_status=error_status,
    error_body=error_body,
    stream_error_frame=stream_error_frame,
)
