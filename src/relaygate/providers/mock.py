"""The built-in offline upstream: deterministic OpenAI-format replies, streamed in realistic pieces,
with real token counts. Lets a new operator try every surface without a provider account.

Behaviour (documented in docs/providers.md):
- a plain conversation gets ``Mock reply from <model>: <the last user text>``;
- when tools are offered and the last message is the user's, it calls the first tool, filling the
  tool's required string parameters with ``"mock"``; after a tool result it answers in text;
- ``max_tokens``/``max_completion_tokens`` cut the reply (``finish_reason: "length"``);
- options: ``mock_chunk_delay_ms`` (default 10) between streamed pieces.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Mapping
from typing import Any

import orjson

from relaygate.billing.tokenizer import count_chat_prompt, count_text
from relaygate.providers.base import Transport, UpstreamBodyTooLarge, UpstreamRequest
from relaygate.routing.records import ChannelRecord


class MockProvider:
    kind = "mock"

    def dialect_for(self, channel: ChannelRecord) -> str:
        return "openai"

    def chat_request(self, channel: ChannelRecord, body: bytes, *, stream: bool, model: str,
                     client_headers: Mapping[str, str]) -> UpstreamRequest:
        delay = float(channel.options.get("mock_chunk_delay_ms", 10)) / 1000
        return UpstreamRequest("POST", "mock://chat/completions", {}, body, stream,
                               meta={"delay": str(delay)})

    def transport_for(self, channel: ChannelRecord) -> Transport | None:
        return MockTransport()

    def models_request(self, channel: ChannelRecord) -> UpstreamRequest | None:
        return UpstreamRequest("GET", "mock://models", {}, b"")


class MockTransport:
    async def send(self, request: UpstreamRequest) -> MockResponse:
        if request.method == "GET":
            return MockResponse(200, "application/json", [b'{"object":"list","data":[]}'], 0.0)
        body = orjson.loads(request.body)
        reply = _Reply(body)
        delay = float(request.meta.get("delay", "0"))
        if body.get("stream"):
            return MockResponse(200, "text/event-stream", reply.stream_frames(), delay)
        return MockResponse(200, "application/json", [orjson.dumps(reply.completion())], 0.0)


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


def _last_user_text(messages: list[Any]) -> str:
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            content = message.get("content")
            if isinstance(content, str):
                return content
            if isinstance(content, list):
                return " ".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


class _Reply:
    def __init__(self, body: dict[str, Any]) -> None:
        self.model = str(body.get("model", "mock"))
        raw_messages = body.get("messages")
        messages: list[Any] = raw_messages if isinstance(raw_messages, list) else []
        self.id = "chatcmpl-mock" + uuid.uuid4().hex[:20]
        self.created = int(time.time())
        self.include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        self.prompt_tokens = count_chat_prompt(messages, self.model, body.get("tools"))
        self.tool_call = self._tool_call(body, messages)
        text = f"Mock reply from {self.model}: {_last_user_text(messages)[:500]}".strip()
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        self.pieces = text.split(" ")
        self.finish = "tool_calls" if self.tool_call else "stop"
        if isinstance(limit, int) and limit > 0 and not self.tool_call and len(self.pieces) > limit:
            self.pieces, self.finish = self.pieces[:limit], "length"
        self.text = " ".join(self.pieces)
        generated = self.text if not self.tool_call else orjson.dumps(self.tool_call).decode()
        self.completion_tokens = count_text(generated, self.model)

    @staticmethod
    def _tool_call(body: dict[str, Any], messages: list[Any]) -> dict[str, Any] | None:
        tools = body.get("tools")
        if not tools or body.get("tool_choice") == "none" or not messages:
            return None
        if not isinstance(messages[-1], dict) or messages[-1].get("role") != "user":
            return None
        fn = tools[0].get("function", {}) if isinstance(tools[0], dict) else {}
        params = fn.get("parameters") or {}
        args = {name: "mock" for name in params.get("required", [])}
        return {"id": "call_" + uuid.uuid4().hex[:24], "type": "function",
                "function": {"name": fn.get("name", "tool"), "arguments": orjson.dumps(args).decode()}}

    def usage(self) -> dict[str, Any]:
        return {"prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
                "total_tokens": self.prompt_tokens + self.completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0}}

    def completion(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": None if self.tool_call else self.text,
                                   "refusal": None}
        if self.tool_call:
            message["tool_calls"] = [self.tool_call]
        return {"id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": self.finish}],
                "usage": self.usage(), "system_fingerprint": "fp_relaygate_mock"}

    def _chunk(self, delta: dict[str, Any], finish: str | None) -> bytes:
        chunk: dict[str, Any] = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                                 "model": self.model, "system_fingerprint": "fp_relaygate_mock",
                                 "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                              "finish_reason": finish}]}
        if self.include_usage:
            chunk["usage"] = None
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def stream_frames(self) -> list[bytes]:
        frames = [self._chunk({"role": "assistant", "content": "" if not self.tool_call else None}, None)]
        if self.tool_call:
            fn = self.tool_call["function"]
            frames.append(self._chunk({"tool_calls": [{"index": 0, "id": self.tool_call["id"], "type": "function",
                                                       "function": {"name": fn["name"], "arguments": ""}}]}, None))
            frames.append(self._chunk({"tool_calls": [{"index": 0, "function": {"arguments": fn["arguments"]}}]},
                                      None))
        else:
            for i, piece in enumerate(self.pieces):
                frames.append(self._chunk({"content": piece if i == 0 else " " + piece}, None))
        frames.append(self._chunk({}, self.finish))
        if self.include_usage:
            usage_chunk = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                           "model": self.model, "system_fingerprint": "fp_relaygate_mock", "choices": [],
                           "usage": self.usage()}
            frames.append(b"data: " + orjson.dumps(usage_chunk) + b"\n\n")
        frames.append(b"data: [DONE]\n\n")
        return frames
