"""The built-in offline upstream: deterministic replies, streamed in realistic pieces, with real token
counts, in any of the three dialects. Lets a new operator try every surface without a provider
account.

Behaviour (documented in docs/providers.md):
- a plain conversation gets ``Mock reply from <model>: <the last user text>``;
- when tools are offered and the last message is the user's, it calls the first tool (or the one the
  tool choice names), filling the tool's required parameters with ``"mock"``; after a tool result it
  answers in text;
- a max-tokens limit cuts the reply by words (finish reason ``length``);
- options: ``mock_chunk_delay_ms`` (default 10) between streamed pieces, and ``dialect``
  (``openai``, the default; ``anthropic``: the Messages API; ``gemini``: generateContent);
- embeddings (``mock_embeddings.py``) in the OpenAI format, or Gemini's with ``dialect: gemini``;
- images (``mock_images.py``): generations, edits and variations in the OpenAI format, real PNGs.

The request is read with its dialect's converter, the reply is made once in neutral terms (a core
``ChatResponse`` and its stream events), and the dialect's encoder writes it: every dialect gets the
same answer in its exact wire format.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import orjson

from relaygate.billing.tokenizer import count_chat_prompt, count_text
from relaygate.core.chat import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    Message,
    Role,
    TextPart,
    Tool,
    ToolCallPart,
    ToolChoiceMode,
    json_text,
    synthetic_call_id,
)
from relaygate.core.stream import (
    BlockStop,
    Finish,
    MessageStart,
    StreamEvent,
    TextDelta,
    ToolCallDelta,
    ToolCallStart,
    WireEvent,
)
from relaygate.core.usage import Usage
from relaygate.dialects.anthropic.request import anthropic_request_to_core
from relaygate.dialects.anthropic.response import core_response_to_anthropic
from relaygate.dialects.anthropic.stream import core_stream_to_anthropic
from relaygate.dialects.gemini.request import gemini_request_to_core
from relaygate.dialects.gemini.response import core_response_to_gemini
from relaygate.dialects.gemini.shared import error_out
from relaygate.dialects.gemini.stream import core_stream_to_gemini
from relaygate.dialects.openai.convert import core_request_to_openai, openai_request_to_core
from relaygate.dialects.openai.response_convert import core_response_to_openai
from relaygate.dialects.openai.stream_convert import core_stream_to_openai
from relaygate.dialects.sse import data_frame, named_frame
from relaygate.providers import mock_embeddings
from relaygate.providers.base import (
    IMAGE_PATHS,
    ImagePayload,
    Provider,
    Transport,
    UpstreamBodyTooLarge,
    UpstreamRequest,
)
from relaygate.providers.gemini import model_segment
from relaygate.providers.mock_images import images_reply
from relaygate.routing.records import ChannelRecord

DIALECTS = ("openai", "anthropic", "gemini")
FINGERPRINT = "fp_relaygate_mock"
DEFAULT_DELAY_MS = 10
_TEXT_LIMIT = 500  # characters of the user's text echoed back


class MockProvider:
    kind = "mock"

    def dialect_for(self, channel: ChannelRecord) -> str:
        dialect = channel.options.get("dialect", "openai")
        return dialect if dialect in DIALECTS else "openai"  # check_options refuses others at load

    def chat_request(self, channel: ChannelRecord, body: bytes, *, stream: bool, model: str,
                     client_headers: Mapping[str, str]) -> UpstreamRequest:
        dialect = self.dialect_for(channel)
        delay = float(channel.options.get("mock_chunk_delay_ms", DEFAULT_DELAY_MS)) / 1000
        return UpstreamRequest("POST", _chat_url(dialect, model, stream), {}, body, stream,
                               meta={"delay": str(delay), "dialect": dialect, "model": model})

    def transport_for(self, channel: ChannelRecord) -> Transport | None:
        return MockTransport()

    def embeddings_dialect(self, channel: ChannelRecord) -> str:
        return "gemini" if self.dialect_for(channel) == "gemini" else "openai"  # Anthropic has no embeddings

    def embeddings_request(self, channel: ChannelRecord, body: bytes, *, model: str) -> UpstreamRequest:
        dialect = self.embeddings_dialect(channel)
        url = (f"mock://v1beta/models/{model_segment(model)}:batchEmbedContents" if dialect == "gemini"
               else "mock://v1/embeddings")
        return UpstreamRequest("POST", url, {}, body, meta={"dialect": dialect, "model": model, "call": "embeddings"})

    def images_request(self, channel: ChannelRecord, operation: str, payload: ImagePayload, *,
                       model: str) -> UpstreamRequest:
        fields = orjson.dumps({**payload.fields, "model": model}).decode()
        return UpstreamRequest("POST", f"mock://v1/{IMAGE_PATHS[operation]}", {}, b"",
                               meta={"call": "images", "operation": operation, "fields": fields})

    def models_request(self, channel: ChannelRecord) -> UpstreamRequest | None:
        return UpstreamRequest("GET", "mock://models", {}, b"", meta={"dialect": self.dialect_for(channel)})

    def check_options(self, options: Mapping[str, Any]) -> str | None:
        if options.get("dialect", "openai") not in DIALECTS:
            return f"dialect must be one of {', '.join(DIALECTS)}"
        delay = options.get("mock_chunk_delay_ms", DEFAULT_DELAY_MS)
        try:
            valid = not isinstance(delay, bool) and 0 <= float(delay) < float("inf")
        except (TypeError, ValueError):
            valid = False
        return None if valid else "mock_chunk_delay_ms must be a number of milliseconds, 0 or more"


def _chat_url(dialect: str, model: str, stream: bool) -> str:
    if dialect == "anthropic":
        return "mock://v1/messages"
    if dialect == "gemini":
        method = "streamGenerateContent?alt=sse" if stream else "generateContent"
        return f"mock://v1beta/models/{model_segment(model)}:{method}"
    return "mock://v1/chat/completions"


class MockTransport:
    async def send(self, request: UpstreamRequest) -> MockResponse:
        codec = _CODECS.get(request.meta.get("dialect", "openai"), _CODECS["openai"])
        if request.method == "GET":
            return MockResponse(200, "application/json", [orjson.dumps(codec.models())], 0.0)
        if request.meta.get("call") == "embeddings":
            status, answer = mock_embeddings.reply(codec.name, request.body, request.meta.get("model", ""))
            return MockResponse(status, "application/json", [orjson.dumps(answer)], 0.0)
        if request.meta.get("call") == "images":
            images = images_reply(request.meta["operation"], orjson.loads(request.meta["fields"]))
            return MockResponse(200, "application/json", [orjson.dumps(images)], 0.0)
        try:
            body = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            error = codec.error("The request body must be a JSON object.")
            return MockResponse(400, "application/json", [orjson.dumps(error)], 0.0)
        req, stream = codec.read(body, request)
        reply = make_reply(req, prompt_tokens=_prompt_tokens(codec, body, req), ids=codec.new_ids())
        if stream:
            delay = float(request.meta.get("delay", "0"))
            return MockResponse(200, "text/event-stream", codec.stream(reply, body), delay)
        return MockResponse(200, "application/json", [orjson.dumps(codec.response(reply))], 0.0)


class MockResponse:
    def __init__(self, status: int, content_type: str, parts: list[bytes], delay: float) -> None:
        self.status = status
        self.content_type = content_type
        self._parts = parts
        self._delay = delay

    async def read(self, limit: int) -> bytes:
        data = b"".join(self._parts)
        if len(data) > limit:
            raise UpstreamBodyTooLarge()
        return data

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        for i, part in enumerate(self._parts):
            if i and self._delay:
                await asyncio.sleep(self._delay)
            yield part

    def close(self) -> None:
        self._parts = []


# -- the reply, in neutral terms ---------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Reply:
    id: str
    model: str
    created: int
    pieces: tuple[str, ...]  # the text, word by word (empty with a tool call)
    call: ToolCallPart | None
    finish: FinishReason
    usage: Usage

    @property
    def text(self) -> str:
        return " ".join(self.pieces)

    def response(self) -> ChatResponse:
        parts = (self.call,) if self.call is not None else (TextPart(self.text),)
        return ChatResponse(self.id, self.model, parts, self.finish, self.usage, created=self.created)

    def events(self) -> list[StreamEvent]:
        """The stream: input usage up front (as Anthropic and Gemini report it), a word per text delta
        (or one whole tool call), and the finish with the full usage."""
        events: list[StreamEvent] = [MessageStart(self.id, self.model, Usage(input_tokens=self.usage.input_tokens))]
        if self.call is not None:
            events += [ToolCallStart(0, self.call.id, self.call.name), ToolCallDelta(0, self.call.arguments)]
        else:
            events += [TextDelta(0, piece if i == 0 else " " + piece) for i, piece in enumerate(self.pieces)]
        return [*events, BlockStop(0), Finish(self.finish, self.usage)]


def make_reply(req: ChatRequest, *, prompt_tokens: int, ids: tuple[str, str]) -> Reply:
    """The mock's answer to ``req``; ``ids`` are the response id and the tool-call id to use."""
    model = req.model or "mock"
    call = _tool_call(req, ids[1])
    pieces = tuple(f"Mock reply from {model}: {_last_user_text(req.messages)[:_TEXT_LIMIT]}".strip().split(" "))
    finish = FinishReason.TOOL_CALLS if call is not None else FinishReason.STOP
    limit = req.sampling.max_tokens
    if call is not None:
        pieces = ()
    elif limit is not None and 0 < limit < len(pieces):
        pieces, finish = pieces[:limit], FinishReason.LENGTH
    generated = call.name + call.arguments if call is not None else " ".join(pieces)
    usage = Usage(input_tokens=prompt_tokens, output_tokens=count_text(generated, model))
    return Reply(ids[0], model, int(time.time()), pieces, call, finish, usage)


def _last_user_text(messages: tuple[Message, ...]) -> str:
    for message in reversed(messages):
        if message.role is Role.USER:
            return " ".join(part.text for part in message.parts if isinstance(part, TextPart))
    return ""


def _chosen_tool(req: ChatRequest) -> Tool:
    choice = req.tool_choice
    if choice is not None and choice.mode is ToolChoiceMode.TOOL:
        return next((tool for tool in req.tools if tool.name == choice.name), req.tools[0])
    return req.tools[0]


def _tool_call(req: ChatRequest, call_id: str) -> ToolCallPart | None:
    if not req.tools or not req.messages or req.messages[-1].role is not Role.USER:
        return None
    if req.tool_choice is not None and req.tool_choice.mode is ToolChoiceMode.NONE:
        return None
    tool = _chosen_tool(req)
    required = (tool.parameters or {}).get("required")
    args = {str(name): "mock" for name in required} if isinstance(required, list) else {}
    return ToolCallPart(call_id, tool.name or "tool", json_text(args))


def _prompt_tokens(codec: Codec, body: dict[str, Any], req: ChatRequest) -> int:
    """Counted like an OpenAI prompt (the offline tokenizer's accounting), on the request as an OpenAI
    client would have sent it."""
    view = body if codec.name == "openai" else core_request_to_openai(req)
    messages = view.get("messages")
    return count_chat_prompt(messages if isinstance(messages, list) else [], req.model, view.get("tools"))


def _hex(n: int) -> str:
    return uuid.uuid4().hex[:n]


# -- one codec per dialect ---------------------------------------------------------------------------

class Codec(Protocol):
    name: str

    def read(self, body: dict[str, Any], request: UpstreamRequest) -> tuple[ChatRequest, bool]:
        """The neutral request, and whether the reply streams (as the real upstream would decide)."""
        ...

    def new_ids(self) -> tuple[str, str]: ...

    def response(self, reply: Reply) -> dict[str, Any]: ...

    def stream(self, reply: Reply, body: dict[str, Any]) -> list[bytes]:
        """The stream's bytes, one item per neutral event (the delay falls between items)."""
        ...

    def error(self, message: str) -> dict[str, Any]: ...

    def models(self) -> dict[str, Any]: ...


def _framed(events: list[StreamEvent], encode: Callable[[StreamEvent], list[WireEvent]],
            frame: Callable[[WireEvent], bytes]) -> list[bytes]:
    parts = [b"".join(frame(wire) for wire in encode(event)) for event in events]
    return [part for part in parts if part]


class OpenAICodec:
    name = "openai"

    def read(self, body: dict[str, Any], request: UpstreamRequest) -> tuple[ChatRequest, bool]:
        return openai_request_to_core(body), bool(body.get("stream"))

    def new_ids(self) -> tuple[str, str]:
        return "chatcmpl-mock" + _hex(20), "call_" + _hex(24)

    def response(self, reply: Reply) -> dict[str, Any]:
        body = core_response_to_openai(reply.response(), reply.model, created=reply.created)
        return {**body, "system_fingerprint": FINGERPRINT}

    def stream(self, reply: Reply, body: dict[str, Any]) -> list[bytes]:
        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        encoder = core_stream_to_openai(reply.model, created=reply.created, include_usage=include_usage)

        def frame(wire: WireEvent) -> bytes:
            return data_frame(orjson.dumps({**wire[1], "system_fingerprint": FINGERPRINT}))

        return [*_framed(reply.events(), encoder.feed, frame), b"data: [DONE]\n\n"]

    def error(self, message: str) -> dict[str, Any]:
        return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}

    def models(self) -> dict[str, Any]:
        return {"object": "list", "data": []}


class AnthropicCodec:
    name = "anthropic"

    def read(self, body: dict[str, Any], request: UpstreamRequest) -> tuple[ChatRequest, bool]:
        return anthropic_request_to_core(body), body.get("stream") is True

    def new_ids(self) -> tuple[str, str]:
        return "msg_mock" + _hex(20), "toolu_mock" + _hex(20)

    def response(self, reply: Reply) -> dict[str, Any]:
        return core_response_to_anthropic(reply.response(), reply.model)

    def stream(self, reply: Reply, body: dict[str, Any]) -> list[bytes]:
        encoder = core_stream_to_anthropic(reply.model)
        return _framed(reply.events(), encoder.feed, lambda wire: named_frame(str(wire[0]), orjson.dumps(wire[1])))

    def error(self, message: str) -> dict[str, Any]:
        return {"type": "error", "error": {"type": "invalid_request_error", "message": message}}

    def models(self) -> dict[str, Any]:
        return {"data": [], "has_more": False, "first_id": None, "last_id": None}


class GeminiCodec:
    name = "gemini"

    def read(self, body: dict[str, Any], request: UpstreamRequest) -> tuple[ChatRequest, bool]:
        # Gemini carries the model and the stream flag in the URL, not the body.
        model = request.meta.get("model") or "mock"
        return gemini_request_to_core(body, model=model, stream=request.stream), request.stream

    def new_ids(self) -> tuple[str, str]:
        response_id = "mock" + _hex(20)
        return response_id, synthetic_call_id(response_id, 0)  # Gemini's calls come without ids

    def response(self, reply: Reply) -> dict[str, Any]:
        return core_response_to_gemini(reply.response(), reply.model)

    def stream(self, reply: Reply, body: dict[str, Any]) -> list[bytes]:
        encoder = core_stream_to_gemini(reply.model)
        return _framed(reply.events(), encoder.feed, lambda wire: data_frame(orjson.dumps(wire[1])))

    def error(self, message: str) -> dict[str, Any]:
        return error_out(message, "invalid_request")

    def models(self) -> dict[str, Any]:
        return {"models": []}


_CODECS: dict[str, Codec] = {"openai": OpenAICodec(), "anthropic": AnthropicCodec(), "gemini": GeminiCodec()}


_MOCK = MockProvider()
PROVIDER = Provider(_MOCK, options=("dialect", "mock_chunk_delay_ms"), check_options=_MOCK.check_options,
                    offline=lambda options: True, chat=_MOCK, embeddings=_MOCK, images=_MOCK)
