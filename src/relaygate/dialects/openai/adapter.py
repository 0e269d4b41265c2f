"""The OpenAI chat-completions dialect as the relay sees it."""

from __future__ import annotations

import time
from typing import Any

import orjson

from relaygate.core.chat import ChatRequest
from relaygate.core.usage import Usage
from relaygate.dialects.base import Dialect, PassthroughTap, StreamEncoder
from relaygate.dialects.openai.convert import core_request_to_openai, openai_request_to_core, openai_urls_to_fetch
from relaygate.dialects.openai.errors import error_body, error_status, parse_upstream_error, stream_error_frame
from relaygate.dialects.openai.response_convert import core_response_to_openai, openai_response_to_core
from relaygate.dialects.openai.stream_convert import core_stream_to_openai, openai_stream_to_core
from relaygate.dialects.openai.stream_tap import OpenAIStreamTap
from relaygate.dialects.openai.usage import usage_from_openai
from relaygate.errors import GatewayError
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


def _encoder(model: str, include_usage: bool) -> StreamEncoder:
    return core_stream_to_openai(model, created=int(time.time()), include_usage=include_usage)


def _tap(client_wants_usage: bool, scrubber: Scrubber, model: str) -> PassthroughTap:
    return OpenAIStreamTap(client_wants_usage=client_wants_usage, scrubber=scrubber, model=model)


def _error(error: GatewayError, request_id: str) -> tuple[int, bytes]:
    return error.status, error_body(error, request_id)


OPENAI = Dialect(
    name="openai",
    request_to_core=lambda body, model, stream: openai_request_to_core(body),
    request_from_core=request_from_core,
    response_to_core=openai_response_to_core,
    response_from_core=lambda resp, model: core_response_to_openai(resp, model, created=int(time.time())),
    stream_decoder=openai_stream_to_core,
    stream_encoder=_encoder,
    sse_framing=OpenAIFraming,
    passthrough_tap=_tap,
    passthrough_body=passthrough_body,
    usage_of=usage_of,
    text_of=text_of,
    upstream_done=lambda name, data: data == b"[DONE]",
    urls_to_fetch=openai_urls_to_fetch,
    parse_upstream_error=parse_upstream_error,
    error_status=error_status,
    error_body=_error,
    stream_error_frame=stream_error_frame,
)
