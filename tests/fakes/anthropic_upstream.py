"""A fake Anthropic upstream: a real HTTP server on loopback that speaks the Messages API of
spec/anthropic.md exactly (§3 JSON, §4 SSE with ``event:`` lines, §5 errors, §6 count_tokens, §7 models),
records every request it receives, and fails on demand.

Like the real API it insists on the ``anthropic-version`` header (400), on a key in ``x-api-key`` or
``Authorization: Bearer`` (401; the exact key when ``FakeAnthropic(api_key=...)`` is given), on
``model``/``max_tokens``/``messages``, and, with ``Behavior.strict_fields``, refuses top-level fields the
API does not know ("Extra inputs are not permitted") — except the ``x_fake`` marker.

Behaviour is chosen per request, most specific first: an ``"x_fake"`` object in the request body (field
names of ``Behavior``), the next scripted behaviour for the path prefix (``FakeAnthropic.script``), the
behaviour set for the prefix (``FakeAnthropic.set``). A prefix is the first path segment before
``/v1``: ``{fake.url}/a`` as a channel's ``base_url`` reaches ``/a/v1/messages``.

Replies are deterministic. The answer is an optional thinking block (``Behavior.thinking`` pieces and
``signature``), then a text block (``"".join(Behavior.content)``). With client tools in the request
(and ``tool_choice`` not ``none``) it is the optional thinking block, an optional text block
(``tool_text``), then a ``tool_use`` of the first tool (or the one ``tool_choice`` names) whose input
streams as ``input_json_delta`` pieces (``tool_input``). Usage: ``input_tokens`` and cache counts as set;
output = ``output_tokens`` or one per streamed piece.

Run as a script for a standalone server: ``python -m tests.fakes.anthropic_upstream --port 8002``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.fake_server import BehaviorBase, FakeServer, RecordedRequest, echo_text

MESSAGE_ID = "msg_01XaFake"
TOOL_USE_ID = "toolu_01QzFake"
REQUEST_ID = "req_011CfakeAnthropic"
VERSION = "2023-06-01"
MODELS = (("claude-sonnet-4-20250514", "Claude Sonnet 4", "2025-05-22T00:00:00Z"),
          ("claude-3-5-haiku-20241022", "Claude Haiku 3.5", "2024-10-22T00:00:00Z"))
KNOWN_FIELDS = frozenset({
    "model", "max_tokens", "messages", "system", "stream", "temperature", "top_p", "top_k", "stop_sequences",
    "metadata", "tools", "tool_choice", "thinking", "service_tier", "container", "mcp_servers",
    "context_management", "x_fake"})
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
               403: "permission_error", 404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
               500: "api_error", 504: "timeout_error", 529: "overloaded_error"}
ERROR_MESSAGES = {429: "Number of request tokens has exceeded your per-minute rate limit", 500: "Internal server error",
                  529: "Overloaded"}


@dataclass(frozen=True, slots=True)
class Behavior(BehaviorBase):
    """What the fake does with one Messages request."""

    status: int = 200  # >= 400: answer with this status and an Anthropic error body
    error_message: str | None = None  # default: by status
    error_type: str | None = None  # default: by status (spec §5)
    retry_after: int | None = None  # retry-after header (default 1 s on 429 and 529)
    echo: bool = False  # every string field of an error (and error event) echoes ``echo_text``
    answer_status: int | None = None  # the HTTP status an error is sent with (200: an error in a success)
    delay_s: float = 0.0  # sleep before answering at all
    chunk_delay_s: float = 0.0  # sleep between streamed events
    content: tuple[str, ...] = ("Bon", "jour", "!")
    thinking: tuple[str, ...] = ()  # a thinking block first, streamed as thinking_delta pieces
    signature: str = "EqQBCgIYAhIMfakeSignature"
    tool_text: tuple[str, ...] = ()  # with a tool call: text said before it
    tool_input: tuple[str, ...] = ('{"city": "Ly', 'on"}')  # input_json_delta pieces; joined, a JSON object
    stop_reason: str = "end_turn"  # without a tool call
    stop_sequence: str | None = None
    input_tokens: int = 11
    output_tokens: int | None = None  # None: one per streamed piece
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    omit_usage: bool = False  # no usage anywhere (Anthropic always sends it; exercises fallbacks)
    delta_repeats_input: bool = False  # message_delta usage also repeats the input and cache counts
    ping: bool = True  # a ping right after message_start
    # Streams: after this many delta events (thinking, text or tool input pieces), misbehave.
    cut_after: int | None = None  # stop sending and close the connection
    cut_mode: str = "abort"  # abort: drop the TCP connection mid-body; eof: end the body cleanly
    malformed_after: int | None = None  # insert one event whose data is not JSON, then carry on
    error_event_after: int | None = None  # send an error event (below), then end the body
    error_event_type: str = "overloaded_error"
    error_event_message: str = "Overloaded"
    crlf: bool = False  # end SSE lines with \r\n
    strict_fields: bool = True  # refuse unknown top-level fields, as the API does
    model: str | None = None  # the model name the reply reports (default: the request's)
    raw_body: str | None = None  # exact bytes instead of the generated non-stream reply
    raw_events: tuple[str, ...] | None = None  # exact stream events, each sent as is

    @property
    def text(self) -> str:
        return "".join(self.content)

    def error_body(self) -> bytes:
        error_type = self.error_type or ERROR_TYPES.get(self.status, "api_error" if self.status >= 500
                                                        else "invalid_request_error")
        message = self.error_message or ERROR_MESSAGES.get(self.status, "Invalid request")
        return error_body(error_type, message)


def error_body(error_type: str, message: str) -> bytes:
    return orjson.dumps({"type": "error", "error": {"type": error_type, "message": message},
                         "request_id": REQUEST_ID})


def tool_name(request: Mapping[str, Any]) -> str | None:
    """The client tool the reply calls, or None (no client tools, or ``tool_choice: none``)."""
    raw_choice = request.get("tool_choice")
    choice: dict[str, Any] = raw_choice if isinstance(raw_choice, dict) else {}
    tools = [t for t in request.get("tools") or [] if isinstance(t, dict) and t.get("type") in (None, "custom")]
    if not tools or choice.get("type") == "none":
        return None
    named = choice.get("name") if choice.get("type") == "tool" else None
    return str(named or tools[0].get("name"))


class Reply:
    """The blocks, stop reason and usage of one reply, for both the JSON and the SSE form."""

    def __init__(self, request: Mapping[str, Any], behavior: Behavior) -> None:
        self.behavior = behavior
        self.model = behavior.model or str(request.get("model"))
        self.tool = tool_name(request)
        self.text = "".join(behavior.tool_text) if self.tool else behavior.text
        pieces = len(behavior.thinking) + (len(behavior.tool_text) + len(behavior.tool_input) if self.tool
                                           else len(behavior.content))
        self.output_tokens = pieces if behavior.output_tokens is None else behavior.output_tokens
        self.stop_reason = "tool_use" if self.tool else behavior.stop_reason
        self.stop_sequence = None if self.tool else behavior.stop_sequence

    def input_usage(self) -> dict[str, int]:
        b = self.behavior
        return {"input_tokens": b.input_tokens, "cache_creation_input_tokens": b.cache_creation_input_tokens,
                "cache_read_input_tokens": b.cache_read_input_tokens}

    def usage(self) -> dict[str, Any]:
        return {**self.input_usage(),
                "cache_creation": {"ephemeral_5m_input_tokens": self.behavior.cache_creation_input_tokens,
                                   "ephemeral_1h_input_tokens": 0},
                "output_tokens": self.output_tokens, "service_tier": "standard"}

    def blocks(self) -> list[dict[str, Any]]:
        """Whole content blocks (§3)."""
        b = self.behavior
        blocks: list[dict[str, Any]] = []
        if b.thinking:
            blocks.append({"type": "thinking", "thinking": "".join(b.thinking), "signature": b.signature})
        if self.text or not self.tool:
            blocks.append({"type": "text", "text": self.text})
        if self.tool:
            blocks.append({"type": "tool_use", "id": TOOL_USE_ID, "name": self.tool,
                           "input": orjson.loads("".join(b.tool_input) or "{}")})
        return blocks

    def message(self) -> dict[str, Any]:
        body: dict[str, Any] = {"id": MESSAGE_ID, "type": "message", "role": "assistant", "model": self.model,
                                "content": self.blocks(), "stop_reason": self.stop_reason,
                                "stop_sequence": self.stop_sequence}
        if not self.behavior.omit_usage:
            body["usage"] = self.usage()
        return body

    def events(self) -> list[tuple[bool, str, dict[str, Any]]]:
        """The stream (§4) as ``(is a counted delta, event name, payload)``."""
        b = self.behavior
        start: dict[str, Any] = {"id": MESSAGE_ID, "type": "message", "role": "assistant", "model": self.model,
                                 "content": [], "stop_reason": None, "stop_sequence": None}
        if not b.omit_usage:
            start["usage"] = {**self.input_usage(), "output_tokens": 1}
        out: list[tuple[bool, str, dict[str, Any]]] = [(False, "message_start", {"type": "message_start",
                                                                                  "message": start})]
        if b.ping:
            out.append((False, "ping", {"type": "ping"}))
        text_pieces = b.tool_text if self.tool else b.content
        for index, block in enumerate(self.blocks()):
            out.extend(_block_events(index, block, b, text_pieces))
        delta: dict[str, Any] = {"type": "message_delta",
                                 "delta": {"stop_reason": self.stop_reason, "stop_sequence": self.stop_sequence}}
        if not b.omit_usage:
            delta["usage"] = ({**self.input_usage(), "output_tokens": self.output_tokens} if b.delta_repeats_input
                              else {"output_tokens": self.output_tokens})
        out.append((False, "message_delta", delta))
        out.append((False, "message_stop", {"type": "message_stop"}))
        return out


def _block_events(index: int, block: dict[str, Any], b: Behavior,
                  text_pieces: tuple[str, ...]) -> list[tuple[bool, str, dict[str, Any]]]:
    def delta(body: dict[str, Any], counted: bool = True) -> tuple[bool, str, dict[str, Any]]:
        return (counted, "content_block_delta", {"type": "content_block_delta", "index": index, "delta": body})

    kind = block["type"]
    opening: dict[str, Any]
    if kind == "thinking":
        opening = {"type": "thinking", "thinking": "", "signature": ""}
        deltas = [delta({"type": "thinking_delta", "thinking": p}) for p in b.thinking]
        deltas.append(delta({"type": "signature_delta", "signature": b.signature}, counted=False))
    elif kind == "text":
        opening = {"type": "text", "text": ""}
        deltas = [delta({"type": "text_delta", "text": p}) for p in text_pieces]
    else:
        opening = {"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}
        deltas = [delta({"type": "input_json_delta", "partial_json": ""}, counted=False)]
        deltas += [delta({"type": "input_json_delta", "partial_json": p}) for p in b.tool_input]
    return [(False, "content_block_start", {"type": "content_block_start", "index": index,
                                            "content_block": opening}),
            *deltas, (False, "content_block_stop", {"type": "content_block_stop", "index": index})]


def frame(name: str, payload: dict[str, Any], crlf: bool = False) -> bytes:
    data = b"event: " + name.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"
    return data.replace(b"\n", b"\r\n") if crlf else data


class FakeAnthropic(FakeServer[Behavior]):
    name = "fake-anthropic"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, api_key: str | None = None) -> None:
        super().__init__(host, port)
        self.api_key = api_key

    def default_behavior(self) -> Behavior:
        return Behavior()

    def message_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path.endswith("/v1/messages")]

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        for root in ("", "/{prefix}"):
            app.router.add_post(root + "/v1/messages", self._messages)
            app.router.add_post(root + "/v1/messages/count_tokens", self._count_tokens)
            app.router.add_get(root + "/v1/models", self._models)
            app.router.add_get(root + "/v1/models/{model_id}", self._model)
        return app

    # --- checks the real API makes ----------------------------------------------------------------

    def _refusal(self, headers: Mapping[str, str]) -> web.Response | None:
        if not headers.get("anthropic-version"):
            return _json(400, error_body("invalid_request_error", "anthropic-version: header is required"))
        key = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ").strip()
        if not key:
            return _json(401, error_body("authentication_error", "x-api-key header is required"))
        if self.api_key is not None and key != self.api_key:
            return _json(401, error_body("authentication_error", "invalid x-api-key"))
        return None

    @staticmethod
    def _invalid_body(body: Any, behavior: Behavior, *, count: bool = False) -> web.Response | None:
        if not isinstance(body, dict):
            return _json(400, error_body("invalid_request_error", "There was an issue with the JSON body"))
        required = ("model", "messages") if count else ("model", "max_tokens", "messages")
        missing = next((name for name in required if name not in body), None)
        if missing:
            return _json(400, error_body("invalid_request_error", f"{missing}: Field required"))
        extra = sorted(set(body) - KNOWN_FIELDS - ({"max_tokens", "stream"} if count else set()))
        if behavior.strict_fields and (extra or (count and ({"max_tokens", "stream"} & set(body)))):
            name = extra[0] if extra else "max_tokens"
            return _json(400, error_body("invalid_request_error", f"{name}: Extra inputs are not permitted"))
        return None

    # --- handlers (on the fake's loop) -------------------------------------------------------------

    async def _messages(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        body = _loads(recorded.body)
        behavior = self.behavior_for(recorded.prefix, body)
        if behavior.echo:
            text = echo_text(request)
            behavior = behavior.replace(error_message=text, error_type=text, error_event_message=text,
                                        error_event_type=text)
        await self.pause(behavior.delay_s)
        refusal = self._refusal(recorded.headers) or self._invalid_body(body, behavior)
        if refusal is not None:
            return refusal
        if behavior.status >= 400:
            retry = behavior.retry_after or (1 if behavior.status in (429, 529) else None)
            return _json(behavior.answer_status or behavior.status, behavior.error_body(),
                         {"retry-after": str(retry)} if retry else {})
        if body.get("stream") is True:
            return await self._stream(request, Reply(body, behavior), behavior)
        if behavior.raw_body is not None:
            return _json(200, behavior.raw_body.encode())
        return _json(200, orjson.dumps(Reply(body, behavior).message()))

    async def _count_tokens(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        body = _loads(recorded.body)
        behavior = self.behavior_for(recorded.prefix, body)
        refusal = self._refusal(recorded.headers) or self._invalid_body(body, behavior, count=True)
        if refusal is not None:
            return refusal
        return _json(200, orjson.dumps({"input_tokens": behavior.input_tokens}))

    async def _models(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        refusal = self._refusal(recorded.headers)
        if refusal is not None:
            return refusal
        data = [_model_object(*model) for model in MODELS]
        return _json(200, orjson.dumps({"data": data, "has_more": False, "first_id": data[0]["id"],
                                        "last_id": data[-1]["id"]}))

    async def _model(self, request: web.Request) -> web.StreamResponse:
        recorded = await self.record(request)
        refusal = self._refusal(recorded.headers)
        if refusal is not None:
            return refusal
        wanted = request.match_info["model_id"]
        model = next((_model_object(*m) for m in MODELS if m[0] == wanted), None)
        if model is None:
            return _json(404, error_body("not_found_error", f"model: {wanted}"))
        return _json(200, orjson.dumps(model))

    async def _stream(self, request: web.Request, reply: Reply, behavior: Behavior) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={
            "request-id": REQUEST_ID, "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"})
        await response.prepare(request)
        self.active_streams += 1
        try:
            if behavior.raw_events is not None:
                for raw in behavior.raw_events:
                    await self.pause(behavior.chunk_delay_s)
                    await response.write(raw.encode())
                await response.write_eof()
                return response
            pieces = 0
            for counted, name, payload in reply.events():
                if counted:
                    if behavior.cut_after is not None and pieces >= behavior.cut_after:
                        return await self.cut(request, response, behavior.cut_mode)
                    if behavior.error_event_after is not None and pieces >= behavior.error_event_after:
                        error = {"type": behavior.error_event_type, "message": behavior.error_event_message}
                        await response.write(frame("error", {"type": "error", "error": error}, behavior.crlf))
                        await response.write_eof()
                        return response
                    if behavior.malformed_after is not None and pieces == behavior.malformed_after:
                        await response.write(b'event: content_block_delta\ndata: {"type": "content_block_delta", '
                                             b'"index": 0, "delta": {\n\n')
                    pieces += 1
                await self.pause(behavior.chunk_delay_s)
                await response.write(frame(name, payload, behavior.crlf))
            await response.write_eof()
            self.finished_streams += 1
        except (ConnectionError, asyncio.CancelledError):
            pass  # the gateway hung up
        finally:
            self.active_streams -= 1
        return response


def _model_object(model_id: str, display_name: str, created_at: str) -> dict[str, Any]:
    return {"type": "model", "id": model_id, "display_name": display_name, "created_at": created_at}


def _loads(body: bytes) -> Any:
    with contextlib.suppress(orjson.JSONDecodeError):
        return orjson.loads(body)
    return None


def _json(status: int, body: bytes, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(status=status, body=body, content_type="application/json",
                        headers={"request-id": REQUEST_ID, "anthropic-organization-id": "org-fake", **(headers or {})})


if __name__ == "__main__":
    FakeAnthropic.serve_from_command_line("A fake Anthropic Messages upstream", 8002)
