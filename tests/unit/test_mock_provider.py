"""The mock upstream answers in the channel's dialect, natively, with exact framing; its output is read
back with the dialect's own converters (and the official SDKs' types) to prove it well-formed."""

from __future__ import annotations

from typing import Any

import anthropic.types
import openai.types.chat
import orjson
import pytest
from google.genai import types as genai_types
from pydantic import TypeAdapter

from relaygate.billing.tokenizer import count_chat_prompt, count_text
from relaygate.core.chat import ChatResponse, FinishReason, TextPart, ToolCallPart
from relaygate.core.stream import accumulate
from relaygate.core.usage import Usage
from relaygate.dialects.anthropic.response import anthropic_response_to_core
from relaygate.dialects.anthropic.stream import anthropic_stream_to_core
from relaygate.dialects.anthropic.stream_tap import AnthropicStreamTap
from relaygate.dialects.gemini.response import gemini_response_to_core
from relaygate.dialects.gemini.stream import gemini_stream_to_core
from relaygate.dialects.gemini.stream_tap import GeminiStreamTap
from relaygate.dialects.openai.response_convert import openai_response_to_core
from relaygate.dialects.openai.stream_convert import openai_stream_to_core
from relaygate.dialects.openai.stream_tap import OpenAIStreamTap
from relaygate.dialects.sse import SSEDecoder, SSEEvent
from relaygate.providers.mock import MockProvider, MockResponse
from relaygate.routing.records import ChannelRecord

MOCK = MockProvider()
WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}, "unit": {"type": "string"}},
                  "required": ["city"]}


def channel(dialect: str | None = None, delay_ms: int = 0) -> ChannelRecord:
    options: dict[str, Any] = {"mock_chunk_delay_ms": delay_ms}
    if dialect is not None:
        options["dialect"] = dialect
    return ChannelRecord(1, "mock", "mock", "", "", options=options)


async def send(dialect: str | None, body: dict[str, Any] | bytes, *, stream: bool = False,
               model: str = "mock-1") -> MockResponse:
    ch = channel(dialect)
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    request = MOCK.chat_request(ch, raw, stream=stream, model=model, client_headers={})
    transport = MOCK.transport_for(ch)
    assert transport is not None
    response = await transport.send(request)
    assert isinstance(response, MockResponse)
    return response


async def read_json(response: MockResponse) -> Any:
    assert response.content_type == "application/json"
    return orjson.loads(await response.read(1 << 20))


async def read_events(response: MockResponse) -> tuple[bytes, list[SSEEvent]]:
    assert response.status == 200 and response.content_type == "text/event-stream"
    data = b"".join([part async for part in response.iter_chunks()])
    return data, SSEDecoder().feed(data)


def openai_body(text: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"model": "mock-1", "messages": [{"role": "system", "content": "be brief"},
                                            {"role": "user", "content": text}], **extra}


def anthropic_body(text: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"model": "mock-1", "max_tokens": 1024, "system": "be brief",
            "messages": [{"role": "user", "content": text}], **extra}


def gemini_body(text: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"systemInstruction": {"parts": [{"text": "be brief"}]},
            "contents": [{"role": "user", "parts": [{"text": text}]}], **extra}


REPLY = "Mock reply from mock-1: hello there"


# -- openai: today's behaviour ---------------------------------------------------------------------

async def test_openai_reply_and_usage_as_before() -> None:
    body = await read_json(await send(None, openai_body()))
    completion = openai.types.chat.ChatCompletion.model_validate(body)
    assert completion.object == "chat.completion" and completion.system_fingerprint == "fp_relaygate_mock"
    assert completion.id.startswith("chatcmpl-mock") and completion.model == "mock-1"
    assert completion.choices[0].message.content == REPLY and completion.choices[0].finish_reason == "stop"
    prompt = count_chat_prompt(openai_body()["messages"], "mock-1")
    assert body["usage"] == {"prompt_tokens": prompt, "completion_tokens": count_text(REPLY, "mock-1"),
                             "total_tokens": prompt + count_text(REPLY, "mock-1"),
                             "prompt_tokens_details": {"cached_tokens": 0},
                             "completion_tokens_details": {"reasoning_tokens": 0}}
    assert openai_response_to_core(body).parts == (TextPart(REPLY),)


@pytest.mark.parametrize("include_usage", [False, True])
async def test_openai_stream_framing(include_usage: bool) -> None:
    extra: dict[str, Any] = {"stream": True}
    if include_usage:
        extra["stream_options"] = {"include_usage": True}
    data, events = await read_events(await send(None, openai_body(**extra), stream=True))
    assert data.endswith(b"data: [DONE]\n\n") and all(e.raw.startswith(b"data: ") for e in events)
    chunks = [orjson.loads(e.data) for e in events if e.data != b"[DONE]" and e.data is not None]
    for c in chunks:
        openai.types.chat.ChatCompletionChunk.model_validate(c)
    texts = [c["choices"][0]["delta"].get("content") for c in chunks if c["choices"]]
    assert texts == ["", "Mock", " reply", " from", " mock-1:", " hello", " there", None]
    assert (chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] > 0) is include_usage
    decoder = openai_stream_to_core()
    answer = accumulate([e for c in chunks for e in decoder.feed(c)] + decoder.close())
    assert answer.parts == (TextPart(REPLY),) and answer.finish is FinishReason.STOP
    tap = OpenAIStreamTap(client_wants_usage=include_usage)
    tap.feed(data)
    assert tap.completed and (tap.usage is not None or tap.produced_tokens() == count_text(REPLY))


async def test_openai_tool_call_then_text_after_the_result() -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}},
             {"type": "function", "function": {"name": "other", "parameters": {"type": "object"}}}]
    body = await read_json(await send(None, openai_body(tools=tools)))
    [call] = body["choices"][0]["message"]["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city":"mock"}'}
    assert body["choices"][0]["finish_reason"] == "tool_calls" and body["choices"][0]["message"]["content"] is None
    assert body["usage"]["completion_tokens"] == count_text('get_weather{"city":"mock"}', "mock-1")
    named = await read_json(await send(None, openai_body(tools=tools, tool_choice={
        "type": "function", "function": {"name": "other"}})))
    assert named["choices"][0]["message"]["tool_calls"][0]["function"] == {"name": "other", "arguments": "{}"}
    history = openai_body(tools=tools)
    history["messages"] += [{"role": "assistant", "content": None, "tool_calls": [call]},
                            {"role": "tool", "tool_call_id": call["id"], "content": "14C"}]
    after = await read_json(await send(None, history))
    assert after["choices"][0]["message"]["content"] == REPLY and after["choices"][0]["finish_reason"] == "stop"
    none = await read_json(await send(None, openai_body(tools=tools, tool_choice="none")))
    assert none["choices"][0]["message"]["content"] == REPLY


async def test_openai_streamed_tool_call() -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": WEATHER_SCHEMA}}]
    _, events = await read_events(await send(None, openai_body(tools=tools, stream=True), stream=True))
    deltas = [orjson.loads(e.data)["choices"][0]["delta"] for e in events if e.data not in (None, b"[DONE]")]
    assert deltas[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": ""}
    assert deltas[2]["tool_calls"][0]["function"] == {"arguments": '{"city":"mock"}'}


@pytest.mark.parametrize("field", ["max_tokens", "max_completion_tokens"])
async def test_openai_max_tokens_cuts_by_words(field: str) -> None:
    body = await read_json(await send(None, {**openai_body(), field: 3}))
    assert body["choices"][0]["message"]["content"] == "Mock reply from"
    assert body["choices"][0]["finish_reason"] == "length"


# -- anthropic -------------------------------------------------------------------------------------

async def test_anthropic_message() -> None:
    body = await read_json(await send("anthropic", anthropic_body()))
    message = anthropic.types.Message.model_validate(body)
    assert message.id.startswith("msg_mock") and message.model == "mock-1" and message.stop_reason == "end_turn"
    assert body["content"] == [{"type": "text", "text": REPLY}]
    assert body["usage"]["output_tokens"] == count_text(REPLY, "mock-1") and body["usage"]["input_tokens"] > 0
    assert anthropic_response_to_core(body).parts == (TextPart(REPLY),)


async def test_anthropic_stream_framing_and_order() -> None:
    data, events = await read_events(await send("anthropic", anthropic_body(stream=True), stream=True))
    payloads = [orjson.loads(e.data) for e in events if e.data is not None]
    assert all(e.event == p["type"] and e.raw.startswith(b"event: ") for e, p in zip(events, payloads, strict=True))
    adapter: TypeAdapter[Any] = TypeAdapter(anthropic.types.RawMessageStreamEvent)
    for p in payloads:
        if p["type"] != "ping":
            adapter.validate_python(p)
    kinds = [p["type"] for p in payloads]
    assert kinds[:3] == ["message_start", "ping", "content_block_start"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert data.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    decoder = anthropic_stream_to_core()
    answer = accumulate([e for p in payloads for e in decoder.feed(p)])
    assert answer.parts == (TextPart(REPLY),) and answer.finish is FinishReason.STOP
    tap = AnthropicStreamTap(client_wants_usage=False)
    assert tap.feed(data) + tap.final_frame() == data
    assert tap.completed and tap.usage == answer.usage
    assert tap.usage is not None and tap.usage.input_tokens > 0 and tap.usage.output_tokens > 0


async def test_anthropic_tool_use_streamed_and_whole() -> None:
    tools = [{"name": "get_weather", "input_schema": WEATHER_SCHEMA}]
    body = await read_json(await send("anthropic", anthropic_body(tools=tools)))
    [block] = body["content"]
    assert block["type"] == "tool_use" and block["id"].startswith("toolu_mock")
    assert (block["name"], block["input"], body["stop_reason"]) == ("get_weather", {"city": "mock"}, "tool_use")
    _, events = await read_events(await send("anthropic", anthropic_body(tools=tools, stream=True), stream=True))
    deltas = [orjson.loads(e.data or b"")["delta"] for e in events if e.event == "content_block_delta"]
    assert deltas == [{"type": "input_json_delta", "partial_json": ""},
                      {"type": "input_json_delta", "partial_json": '{"city":"mock"}'}]
    history = anthropic_body(tools=tools)
    history["messages"] += [{"role": "assistant", "content": [block]}, {"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": block["id"], "content": "14C"}]}]
    after = await read_json(await send("anthropic", history))
    assert after["content"] == [{"type": "text", "text": REPLY}] and after["stop_reason"] == "end_turn"
    none = await read_json(await send("anthropic", anthropic_body(tools=tools, tool_choice={"type": "none"})))
    assert none["content"][0]["type"] == "text"


async def test_anthropic_max_tokens() -> None:
    body = await read_json(await send("anthropic", anthropic_body(max_tokens=2)))
    assert body["content"] == [{"type": "text", "text": "Mock reply"}] and body["stop_reason"] == "max_tokens"


# -- gemini ----------------------------------------------------------------------------------------

async def test_gemini_response_with_the_model_of_the_url() -> None:
    response = await send("gemini", gemini_body(), model="gemini-2.5-flash")
    body = await read_json(response)
    parsed = genai_types.GenerateContentResponse.model_validate(body)
    assert parsed.text == "Mock reply from gemini-2.5-flash: hello there"
    assert body["modelVersion"] == "gemini-2.5-flash" and body["candidates"][0]["finishReason"] == "STOP"
    usage = body["usageMetadata"]
    assert usage["candidatesTokenCount"] == count_text(parsed.text or "", "gemini-2.5-flash")
    assert usage["totalTokenCount"] == usage["promptTokenCount"] + usage["candidatesTokenCount"]
    assert gemini_response_to_core(body).parts == (TextPart(parsed.text or ""),)


async def test_gemini_sse_stream() -> None:
    data, events = await read_events(await send("gemini", gemini_body(), stream=True))
    assert b"[DONE]" not in data and all(e.raw.startswith(b"data: ") and e.event is None for e in events)
    chunks = [orjson.loads(e.data) for e in events if e.data is not None]
    for c in chunks:
        genai_types.GenerateContentResponse.model_validate(c)
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    assert chunks[-1]["candidates"][0]["finishReason"] == "STOP"
    decoder = gemini_stream_to_core()
    answer = accumulate([e for c in chunks for e in decoder.feed(c)] + decoder.close())
    assert answer.parts == (TextPart(REPLY),) and answer.finish is FinishReason.STOP
    tap = GeminiStreamTap(client_wants_usage=False)
    assert tap.feed(data) + tap.final_frame() == data and tap.completed and tap.usage == answer.usage


async def test_gemini_function_call_and_stream_flag_from_the_url() -> None:
    tools = [{"functionDeclarations": [{"name": "get_weather", "parameters": {
        "type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}}]}]
    body = await read_json(await send("gemini", gemini_body(tools=tools, stream=True)))  # no stream in the URL
    assert body["candidates"][0]["content"]["parts"] == [{"functionCall": {"name": "get_weather",
                                                                           "args": {"city": "mock"}}}]
    core = gemini_response_to_core(body)
    assert core.finish is FinishReason.TOOL_CALLS and isinstance(core.parts[0], ToolCallPart)
    _, events = await read_events(await send("gemini", gemini_body(tools=tools), stream=True))
    calls = [p for e in events if e.data for p in orjson.loads(e.data)["candidates"][0]["content"]["parts"]
             if "functionCall" in p]
    assert calls == [{"functionCall": {"name": "get_weather", "args": {"city": "mock"}}}]
    none = await read_json(await send("gemini", gemini_body(
        tools=tools, toolConfig={"functionCallingConfig": {"mode": "NONE"}})))
    assert "text" in none["candidates"][0]["content"]["parts"][0]


async def test_gemini_max_output_tokens() -> None:
    body = await read_json(await send("gemini", gemini_body(generationConfig={"maxOutputTokens": 1})))
    assert body["candidates"][0]["content"]["parts"] == [{"text": "Mock"}]
    assert body["candidates"][0]["finishReason"] == "MAX_TOKENS"


# -- every dialect -------------------------------------------------------------------------------------

async def core_answer(dialect: str, body: dict[str, Any]) -> ChatResponse:
    parsed = await read_json(await send(dialect, body))
    reader = {"openai": openai_response_to_core, "anthropic": anthropic_response_to_core,
              "gemini": gemini_response_to_core}[dialect]
    return reader(parsed)


async def test_one_conversation_gets_one_answer_in_every_dialect() -> None:
    answers = [await core_answer("openai", openai_body()), await core_answer("anthropic", anthropic_body()),
               await core_answer("gemini", gemini_body())]
    assert [a.parts for a in answers] == [(TextPart(REPLY),)] * 3
    assert [a.finish for a in answers] == [FinishReason.STOP] * 3
    usages = [a.usage for a in answers]
    assert all(isinstance(u, Usage) and u.input_tokens > 0 for u in usages)
    assert len({(u.input_tokens, u.output_tokens) for u in usages if u is not None}) == 1


@pytest.mark.parametrize(("dialect", "error"), [
    (None, {"error": {"message": "The request body must be a JSON object.", "type": "invalid_request_error",
                      "param": None, "code": None}}),
    ("anthropic", {"type": "error", "error": {"type": "invalid_request_error",
                                              "message": "The request body must be a JSON object."}}),
    ("gemini", {"error": {"code": 400, "message": "The request body must be a JSON object.",
                          "status": "INVALID_ARGUMENT"}})])
async def test_a_body_that_is_not_a_json_object_gets_the_dialects_400(dialect: str | None,
                                                                      error: dict[str, Any]) -> None:
    for raw in (b"{not json", b"[1, 2]"):
        response = await send(dialect, raw)
        assert response.status == 400 and await read_json(response) == error


@pytest.mark.parametrize(("dialect", "listing"), [
    (None, {"object": "list", "data": []}),
    ("anthropic", {"data": [], "has_more": False, "first_id": None, "last_id": None}),
    ("gemini", {"models": []})])
async def test_models_request_in_the_dialects_shape(dialect: str | None, listing: dict[str, Any]) -> None:
    ch = channel(dialect)
    request = MOCK.models_request(ch)
    transport = MOCK.transport_for(ch)
    assert request is not None and transport is not None
    response = await transport.send(request)
    assert response.status == 200 and orjson.loads(await response.read(1000)) == listing


async def test_streams_come_in_pieces_with_the_delay_between() -> None:
    ch = channel("anthropic", delay_ms=1)
    request = MOCK.chat_request(ch, orjson.dumps(anthropic_body(stream=True)), stream=True, model="m",
                                client_headers={})
    assert request.meta["delay"] == "0.001"
    transport = MOCK.transport_for(ch)
    assert transport is not None
    response = await transport.send(request)
    parts = [part async for part in response.iter_chunks()]
    # message_start+ping, one per word, the block stop, then message_delta+message_stop
    assert len(parts) == 1 + len(REPLY.split(" ")) + 2
    assert parts[0].startswith(b"event: message_start\n") and parts[-1].endswith(b"event: message_stop\n"
                                                                                   b'data: {"type":"message_stop"}\n\n')
