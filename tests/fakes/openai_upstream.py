"""A fake OpenAI-compatible upstream: a real HTTP server on loopback that speaks the chat wire format
of spec/openai.md §1.3 (JSON) and §1.4 (SSE) exactly, records every request it receives, and fails on
demand.

Behaviour is chosen per request, most specific first:

1. a ``"x_fake"`` object in the request body (the gateway passes unknown fields through untouched),
   with the field names of ``Behavior``;
2. the next scripted behaviour queued for the path prefix (``FakeOpenAI.script``);
3. the behaviour set for the path prefix (``FakeOpenAI.set``).

A prefix is the first path segment before ``/v1``: a channel whose ``base_url`` is ``{fake.url}/a``
reaches ``/a/v1/chat/completions``, so one server can play several upstream channels, each with its own
behaviour, and ``FakeOpenAI.requests_for("a")`` tells which channel a call reached.

Replies are deterministic: the text is ``"".join(Behavior.content)`` and usage is
``Behavior.prompt_tokens`` / ``Behavior.completion_tokens`` (default: the number of content pieces).
With ``tools`` in the request the reply is a call of the first tool with ``Behavior.tool_arguments``,
split in pieces when streamed.

``POST /v1/embeddings`` (spec §4) answers one ``tests.fakes.vectors.fake_vector`` per input (``dimensions``
values, default 8), as JSON numbers or, with ``encoding_format: "base64"``, as base64 of float32s; usage
is ``Behavior.prompt_tokens``. ``status``, ``delay_s``, ``omit_usage``, ``model`` and ``raw_body`` apply.

Run as a script to get a standalone server::

    python -m tests.fakes.openai_upstream --port 8001
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.fake_server import LoopbackServer
from tests.fakes.vectors import fake_vector, to_base64

CHAT_ID = "chatcmpl-B9x2fake"
CREATED = 1741570001
FINGERPRINT = "fp_06737a9306"
TOOL_CALL_ID = "call_8xQ2"
MODELS = ("gpt-4o", "gpt-4o-mini")


@dataclass(frozen=True, slots=True)
class Behavior:
    """What the fake does with one chat request."""

    status: int = 200  # >= 400: answer with this status and an OpenAI error body
    error_message: str = "The server had an error while processing your request. Sorry about that!"
    error_type: str | None = None  # default: derived from the status
    error_code: str | None = None
    error_param: str | None = None
    delay_s: float = 0.0  # sleep before answering at all (slow upstream)
    chunk_delay_s: float = 0.0  # sleep between streamed events
    content: tuple[str, ...] = ("Bon", "jour", "!")
    finish_reason: str = "stop"
    prompt_tokens: int = 11
    completion_tokens: int | None = None  # None: one token per content piece
    cached_tokens: int = 0
    omit_usage: bool = False  # no usage anywhere (exercises the gateway's tokenizer fallback)
    # Streams: after this many content (or tool-argument) events, misbehave.
    cut_after: int | None = None  # stop sending and close the connection, no [DONE]
    cut_mode: str = "abort"  # abort: drop the TCP connection mid-body; eof: end the body cleanly
    malformed_after: int | None = None  # insert one chunk that is not JSON, then carry on
    error_event_after: int | None = None  # send an in-stream error event, then close
    keepalive_comment: bool = False  # send ": keep-alive" before the first event
    tool_arguments: tuple[str, ...] = ('{"city":', '"Lyon"}')
    model: str | None = None  # the model name the reply reports (default: the request's)
    # Exact bytes instead of the generated reply: a non-stream body, or a stream's events (each sent as
    # is, with the chunk delay between them; no [DONE] is added).
    raw_body: str | None = None
    raw_events: tuple[str, ...] | None = None

    @property
    def text(self) -> str:
        return "".join(self.content)

    def usage(self) -> dict[str, Any]:
        completion = len(self.content) if self.completion_tokens is None else self.completion_tokens
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
            "prompt_tokens_details": {"cached_tokens": self.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        }

    def replace(self, **changes: Any) -> Behavior:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_mapping(cls, base: Behavior, raw: Mapping[str, Any]) -> Behavior:
        names = {f.name for f in fields(cls)}
        changes: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in names}
        return dataclasses.replace(base, **changes)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    prefix: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


_ERROR_TYPES = {400: "invalid_request_error", 401: "invalid_request_error", 403: "invalid_request_error",
                404: "invalid_request_error", 429: "requests"}


def error_payload(behavior: Behavior) -> bytes:
    error_type = behavior.error_type or _ERROR_TYPES.get(behavior.status, "server_error")
    code = behavior.error_code
    if code is None and behavior.status == 401:
        code = "invalid_api_key"
    if code is None and behavior.status == 429:
        code = "rate_limit_exceeded"
    return orjson.dumps({"error": {"message": behavior.error_message, "type": error_type,
                                   "param": behavior.error_param, "code": code}})


def completion_body(request: Mapping[str, Any], behavior: Behavior) -> dict[str, Any]:
    """A non-stream ``chat.completion`` (spec §1.3)."""
    message: dict[str, Any] = {"role": "assistant", "content": behavior.text, "refusal": None, "annotations": []}
    finish = behavior.finish_reason
    tool = _first_tool_name(request)
    if tool is not None:
        message["content"] = None
        message["tool_calls"] = [{"id": TOOL_CALL_ID, "type": "function",
                                  "function": {"name": tool, "arguments": "".join(behavior.tool_arguments)}}]
        finish = "tool_calls"
    body: dict[str, Any] = {
        "id": CHAT_ID, "object": "chat.completion", "created": CREATED,
        "model": behavior.model or str(request.get("model")),
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
    }
    if not behavior.omit_usage:
        body["usage"] = behavior.usage()
    body["service_tier"] = "default"
    body["system_fingerprint"] = FINGERPRINT
    return body


def embeddings_body(request: Mapping[str, Any], behavior: Behavior) -> dict[str, Any]:
    """A ``list`` of ``embedding`` objects (spec §4)."""
    raw = request.get("input")
    if isinstance(raw, str) or (isinstance(raw, list) and raw and all(isinstance(t, int) for t in raw)):
        raw = [raw]
    dimensions = request.get("dimensions") if isinstance(request.get("dimensions"), int) else None
    data = []
    for i, item in enumerate(raw if isinstance(raw, list) else []):
        vector = fake_vector(item, dimensions)
        embedding: Any = to_base64(vector) if request.get("encoding_format") == "base64" else vector
        data.append({"object": "embedding", "index": i, "embedding": embedding})
    body: dict[str, Any] = {"object": "list", "data": data, "model": behavior.model or str(request.get("model"))}
    if not behavior.omit_usage:
        body["usage"] = {"prompt_tokens": behavior.prompt_tokens, "total_tokens": behavior.prompt_tokens}
    return body


def _first_tool_name(request: Mapping[str, Any]) -> str | None:
    tools = request.get("tools")
    if not isinstance(tools, list) or not tools or request.get("tool_choice") == "none":
        return None
    fn = tools[0].get("function") if isinstance(tools[0], dict) else None
    return str(fn.get("name")) if isinstance(fn, dict) and fn.get("name") else None


def _include_usage(request: Mapping[str, Any]) -> bool:
    options = request.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


class StreamWriter:
    """Builds the §1.4 events of one streamed reply."""

    def __init__(self, request: Mapping[str, Any], behavior: Behavior) -> None:
        self.behavior = behavior
        self.model = behavior.model or str(request.get("model"))
        self.include_usage = _include_usage(request) and not behavior.omit_usage
        self.tool = _first_tool_name(request)

    def chunk(self, choices: list[dict[str, Any]], usage: Any = None, *, usage_chunk: bool = False) -> bytes:
        body: dict[str, Any] = {"id": CHAT_ID, "object": "chat.completion.chunk", "created": CREATED,
                                "model": self.model, "system_fingerprint": FINGERPRINT, "choices": choices}
        if self.include_usage:
            body["usage"] = usage if usage_chunk else None
        return b"data: " + orjson.dumps(body) + b"\n\n"

    @staticmethod
    def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
        return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

    def opening(self) -> bytes:
        if self.tool is not None:
            return self.chunk([self.choice({"role": "assistant", "content": None, "tool_calls": [
                {"index": 0, "id": TOOL_CALL_ID, "type": "function",
                 "function": {"name": self.tool, "arguments": ""}}]})])
        return self.chunk([self.choice({"role": "assistant", "content": "", "refusal": None})])

    def pieces(self) -> list[bytes]:
        if self.tool is not None:
            return [self.chunk([self.choice({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})])
                    for piece in self.behavior.tool_arguments]
        return [self.chunk([self.choice({"content": piece})]) for piece in self.behavior.content]

    def closing(self) -> list[bytes]:
        finish = "tool_calls" if self.tool is not None else self.behavior.finish_reason
        frames = [self.chunk([self.choice({}, finish)])]
        if self.include_usage:
            frames.append(self.chunk([], self.behavior.usage(), usage_chunk=True))
        frames.append(b"data: [DONE]\n\n")
        return frames


class FakeOpenAI(LoopbackServer):
    """The fake upstream. ``start()`` serves it from a background thread with its own event loop."""

    name = "fake-openai"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._behaviors: dict[str, Behavior] = {}
        self._scripts: dict[str, deque[Behavior]] = {}
        self.active_streams = 0
        self.finished_streams = 0

    # --- control (from the test's thread) --------------------------------------------------------

    def channel_url(self, prefix: str) -> str:
        return f"{self.url}/{prefix}"

    def set(self, prefix: str = "", behavior: Behavior | None = None, **changes: Any) -> Behavior:
        """Set what requests under ``prefix`` get; ``changes`` apply over ``behavior`` (or the default)."""
        chosen = (behavior or Behavior()).replace(**changes)
        with self._lock:
            self._behaviors[prefix] = chosen
        return chosen

    def script(self, prefix: str, *behaviors: Behavior) -> None:
        """Queue behaviours for the next requests under ``prefix``, one each, before the set one."""
        with self._lock:
            self._scripts.setdefault(prefix, deque()).extend(behaviors)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._behaviors.clear()
            self._scripts.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, prefix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.prefix == prefix]

    def chat_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def embeddings_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/embeddings")]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # --- serving ---------------------------------------------------------------------------------

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/v1/chat/completions", self._chat)
        app.router.add_post("/{prefix}/v1/chat/completions", self._chat)
        app.router.add_post("/v1/embeddings", self._embeddings)
        app.router.add_post("/{prefix}/v1/embeddings", self._embeddings)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/{prefix}/v1/models", self._models)
        return app

    # --- handlers (on the fake's loop) -----------------------------------------------------------

    async def _record(self, request: web.Request) -> RecordedRequest:
        body = await request.read()
        prefix = request.match_info.get("prefix", "")
        recorded = RecordedRequest(request.method, request.path, prefix,
                                   {k.lower(): v for k, v in request.headers.items()}, body)
        with self._lock:
            self._requests.append(recorded)
        return recorded

    def _behavior_for(self, prefix: str, body: Any) -> Behavior:
        with self._lock:
            queue = self._scripts.get(prefix)
            behavior = queue.popleft() if queue else self._behaviors.get(prefix, Behavior())
        marker = body.get("x_fake") if isinstance(body, dict) else None
        if isinstance(marker, dict):
            behavior = Behavior.from_mapping(behavior, marker)
        return behavior

    async def _models(self, request: web.Request) -> web.StreamResponse:
        await self._record(request)
        data = [{"id": m, "object": "model", "created": 1721172741, "owned_by": "system"} for m in MODELS]
        return web.Response(body=orjson.dumps({"object": "list", "data": data}), content_type="application/json")

    async def _chat(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        try:
            body = recorded.json()
        except orjson.JSONDecodeError:
            body = None
        behavior = self._behavior_for(recorded.prefix, body)
        if behavior.delay_s:
            await asyncio.sleep(behavior.delay_s)
        headers = {"x-request-id": "req_upstream_fake", "openai-version": "2020-10-01",
                   "openai-processing-ms": "12"}
        if not isinstance(body, dict):
            bad = Behavior(status=400, error_message="We could not parse the JSON body of your request.")
            return web.Response(status=400, body=error_payload(bad), content_type="application/json", headers=headers)
        if behavior.status >= 400:
            return web.Response(status=behavior.status, body=error_payload(behavior),
                                content_type="application/json", headers=headers)
        if body.get("stream") is True and behavior.raw_events is not None:
            return await self._raw_stream(request, behavior, headers)
        if body.get("stream") is True:
            return await self._stream(request, body, behavior, headers)
        if behavior.raw_body is not None:
            return web.Response(body=behavior.raw_body.encode(), content_type="application/json", headers=headers)
        return web.Response(body=orjson.dumps(completion_body(body, behavior)), content_type="application/json",
                            headers=headers)

    async def _embeddings(self, request: web.Request) -> web.StreamResponse:
        recorded = await self._record(request)
        try:
            body = recorded.json()
        except orjson.JSONDecodeError:
            body = None
        behavior = self._behavior_for(recorded.prefix, body)
        if behavior.delay_s:
            await asyncio.sleep(behavior.delay_s)
        headers = {"x-request-id": "req_upstream_fake", "openai-version": "2020-10-01"}
        if not isinstance(body, dict) or body.get("input") is None:
            bad = Behavior(status=400, error_message="'input' is a required property", error_param="input")
            return web.Response(status=400, body=error_payload(bad), content_type="application/json", headers=headers)
        if behavior.status >= 400:
            return web.Response(status=behavior.status, body=error_payload(behavior),
                                content_type="application/json", headers=headers)
        if behavior.raw_body is not None:
            return web.Response(body=behavior.raw_body.encode(), content_type="application/json", headers=headers)
        return web.Response(body=orjson.dumps(embeddings_body(body, behavior)), content_type="application/json",
                            headers=headers)

    async def _stream(self, request: web.Request, body: dict[str, Any], behavior: Behavior,
                      headers: dict[str, str]) -> web.StreamResponse:
        writer = StreamWriter(body, behavior)
        response = web.StreamResponse(status=200, headers={
            **headers, "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"})
        await response.prepare(request)
        self.active_streams += 1
        try:
            if behavior.keepalive_comment:
                await response.write(b": keep-alive\n\n")
            await response.write(writer.opening())
            for i, piece in enumerate(writer.pieces()):
                if behavior.cut_after is not None and i >= behavior.cut_after:
                    return await self._cut(request, response, behavior)
                if behavior.error_event_after is not None and i >= behavior.error_event_after:
                    await response.write(b"data: " + error_payload(behavior) + b"\n\n")
                    await response.write_eof()
                    return response
                if behavior.malformed_after is not None and i == behavior.malformed_after:
                    await response.write(b'data: {"id": "chatcmpl-broken", "choices": [\n\n')
                await self._pause(behavior)
                await response.write(piece)
            for frame in writer.closing():
                await self._pause(behavior)
                await response.write(frame)
            await response.write_eof()
            self.finished_streams += 1
        except (ConnectionError, asyncio.CancelledError):
            pass  # the gateway hung up
        finally:
            self.active_streams -= 1
        return response

    async def _raw_stream(self, request: web.Request, behavior: Behavior,
                          headers: dict[str, str]) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={
            **headers, "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"})
        await response.prepare(request)
        with contextlib.suppress(ConnectionError):
            for event in behavior.raw_events or ():
                await self._pause(behavior)
                await response.write(event.encode())
            await response.write_eof()
        return response

    @staticmethod
    async def _pause(behavior: Behavior) -> None:
        if behavior.chunk_delay_s:
            await asyncio.sleep(behavior.chunk_delay_s)

    @staticmethod
    async def _cut(request: web.Request, response: web.StreamResponse, behavior: Behavior) -> web.StreamResponse:
        if behavior.cut_mode == "eof":
            await response.write_eof()
            return response
        transport = request.transport
        if transport is not None:
            transport.abort()  # no terminating chunk: the reader sees an incomplete body
        return response


if __name__ == "__main__":
    FakeOpenAI.serve_from_command_line("A fake OpenAI-compatible upstream", 8001)
