"""The translation rules written in ``docs/translation.md``, one test each."""

from __future__ import annotations

from typing import Any

import pytest

from relaygate.core.chat import (
    ChatRequest,
    FilePart,
    FinishReason,
    ImagePart,
    Message,
    Reasoning,
    ResponseFormat,
    ResponseFormatKind,
    Role,
    Sampling,
    TextPart,
    ThinkingPart,
    ToolCallPart,
    ToolResultPart,
    is_synthetic_call_id,
    json_object,
)
from relaygate.core.media import InlineMedia, inline_media, parse_data_uri, urls_to_fetch
from relaygate.core.reasoning import budget_for_effort, effort_for_budget
from relaygate.core.stream import (
    BlockStop,
    Finish,
    MessageStart,
    RedactedThinking,
    SignatureDelta,
    StreamError,
    StreamEvent,
    TextDelta,
    ThinkingDelta,
    ToolCallDelta,
    ToolCallStart,
    accumulate,
)
from relaygate.core.usage import Usage
from relaygate.dialects.anthropic.request import (
    DEFAULT_MAX_TOKENS,
    JSON_OBJECT_INSTRUCTION,
    anthropic_urls_to_fetch,
    core_request_to_anthropic,
)
from relaygate.dialects.anthropic.response import anthropic_response_to_core
from relaygate.dialects.anthropic.stream import AnthropicStreamToCore, CoreToAnthropicStream
from relaygate.dialects.gemini.parts import SKIP_SIGNATURE
from relaygate.dialects.gemini.request import core_request_to_gemini, gemini_request_to_core, gemini_urls_to_fetch
from relaygate.dialects.gemini.response import gemini_response_to_core
from relaygate.dialects.gemini.schema import gemini_schema_to_json, json_schema_to_gemini
from relaygate.dialects.gemini.stream import CoreToGeminiStream, GeminiStreamToCore
from relaygate.dialects.openai.convert import core_request_to_openai, openai_request_to_core, openai_urls_to_fetch
from relaygate.dialects.openai.response_convert import core_response_to_openai
from relaygate.dialects.openai.stream_convert import CoreToOpenAIStream, OpenAIStreamToCore

USER = Message(Role.USER, (TextPart("hi"),))


def request(**fields: Any) -> ChatRequest:
    return ChatRequest(**{"model": "m", "messages": (USER,), **fields})


# -- Anthropic: max_tokens, thinking, sampling, JSON mode ------------------------------------------

def test_anthropic_gets_a_default_max_tokens() -> None:
    assert core_request_to_anthropic(request())["max_tokens"] == DEFAULT_MAX_TOKENS


def test_anthropic_thinking_without_max_tokens_adds_the_budget_to_the_default() -> None:
    body = core_request_to_anthropic(request(reasoning=Reasoning(budget_tokens=2048)))
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert body["max_tokens"] == 2048 + DEFAULT_MAX_TOKENS


@pytest.mark.parametrize(("reasoning", "max_tokens", "thinking"), [
    (Reasoning(effort="high"), 4000, {"type": "enabled", "budget_tokens": 2000}),  # leaves half for the answer
    (Reasoning(budget_tokens=9000), 8000, {"type": "enabled", "budget_tokens": 4000}),  # did not fit: halved
    (Reasoning(budget_tokens=100), 8000, {"type": "enabled", "budget_tokens": 1024}),  # Anthropic's minimum
    (Reasoning(effort="low"), 1500, {"type": "enabled", "budget_tokens": 1024}),  # half is below the minimum
    (Reasoning(effort="low"), 1000, None),  # no room for the minimum budget: thinking left out
    (Reasoning(budget_tokens=0), 8000, {"type": "disabled"}),
    (Reasoning(effort="none"), 8000, {"type": "disabled"}),
])
def test_anthropic_thinking_budget(reasoning: Reasoning, max_tokens: int, thinking: dict[str, Any] | None) -> None:
    body = core_request_to_anthropic(request(reasoning=reasoning, sampling=Sampling(max_tokens=max_tokens)))
    assert body.get("thinking") == thinking
    assert body["max_tokens"] == max_tokens


def test_anthropic_thinking_is_left_out_when_the_last_tool_turn_has_no_signed_thinking() -> None:
    call = ToolCallPart("call_1", "f", "{}")
    result = Message(Role.TOOL, (ToolResultPart("call_1", (TextPart("ok"),)),))
    history = (USER, Message(Role.ASSISTANT, (call,)), result)
    assert "thinking" not in core_request_to_anthropic(request(messages=history, reasoning=Reasoning(effort="low")))
    signed = Message(Role.ASSISTANT, (ThinkingPart("hm", "sig", "anthropic"), call))
    body = core_request_to_anthropic(request(messages=(USER, signed, history[2]), reasoning=Reasoning(effort="low")))
    assert body["thinking"]["type"] == "enabled"


def test_anthropic_temperature_is_clamped_and_dropped_with_thinking() -> None:
    sampling = Sampling(temperature=1.6, top_k=40, top_p=0.5, max_tokens=9000)
    assert core_request_to_anthropic(request(sampling=sampling))["temperature"] == 1.0
    thinking = core_request_to_anthropic(request(sampling=sampling, reasoning=Reasoning(budget_tokens=2048)))
    assert not {"temperature", "top_k", "top_p"} & set(thinking)


def test_anthropic_json_modes_become_a_system_instruction() -> None:
    body = core_request_to_anthropic(request(response_format=ResponseFormat(ResponseFormatKind.JSON_OBJECT)))
    assert body["system"] == JSON_OBJECT_INSTRUCTION
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    body = core_request_to_anthropic(request(system=(TextPart("Be brief."),),
                                             response_format=ResponseFormat(ResponseFormatKind.JSON_SCHEMA, schema)))
    assert body["system"][0] == {"type": "text", "text": "Be brief."}
    assert body["system"][1]["text"].endswith('{"type":"object","properties":{"a":{"type":"integer"}}}')


def test_foreign_thinking_and_signatures_never_reach_anthropic_or_gemini() -> None:
    gemini_turn = Message(Role.ASSISTANT, (ThinkingPart("plan", "gsig", "gemini"), TextPart("ok")))
    anthropic_turn = Message(Role.ASSISTANT, (ThinkingPart("plan", "asig", "anthropic"), TextPart("ok")))
    assert core_request_to_anthropic(request(messages=(USER, gemini_turn)))["messages"][1]["content"] == "ok"
    assert core_request_to_gemini(request(messages=(USER, anthropic_turn)))["contents"][1]["parts"] == [{"text": "ok"}]


# -- Gemini: spellings, schemas, ids, signatures ----------------------------------------------------

CAMEL = {"systemInstruction": {"parts": [{"text": "s"}]},
         "contents": [{"role": "user", "parts": [{"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}}]}],
         "generationConfig": {"maxOutputTokens": 5, "stopSequences": ["x"], "thinkingConfig": {"thinkingBudget": 0}},
         "toolConfig": {"functionCallingConfig": {"mode": "NONE"}}}
SNAKE = {"system_instruction": {"parts": [{"text": "s"}]},
         "contents": [{"role": "user", "parts": [{"inline_data": {"mime_type": "image/png", "data": "iVBORw0KGgo="}}]}],
         "generation_config": {"max_output_tokens": 5, "stop_sequences": ["x"],
                               "thinking_config": {"thinking_budget": 0}},
         "tool_config": {"function_calling_config": {"mode": "NONE"}}}


def test_gemini_reads_camel_and_snake_case_alike() -> None:
    assert gemini_request_to_core(SNAKE, model="g") == gemini_request_to_core(CAMEL, model="g")
    assert core_request_to_gemini(gemini_request_to_core(SNAKE, model="g")) == CAMEL


def test_json_schema_to_gemini_keeps_its_subset() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "additionalProperties": False,
        "properties": {"when": {"type": "string", "format": "date-time"}, "mail": {"type": "string", "format": "email"},
                       "kind": {"const": "event"}, "tag": {"anyOf": [{"$ref": "#/$defs/Tag"}, {"type": "null"}]}},
        "$defs": {"Tag": {"type": "string", "enum": ["a", "b"]}},
    }
    assert json_schema_to_gemini(schema) == {"type": "OBJECT", "properties": {
        "when": {"type": "STRING", "format": "date-time"}, "mail": {"type": "STRING"}, "kind": {"enum": ["event"]},
        "tag": {"nullable": True, "type": "STRING", "enum": ["a", "b"]}}}


def test_gemini_schema_to_json_folds_nullable_and_reads_snake_case() -> None:
    gemini = {"type": "OBJECT", "properties": {"n": {"type": "INTEGER", "nullable": True}},
              "property_ordering": ["n"], "min_properties": 1}
    assert gemini_schema_to_json(gemini) == {"type": "object", "properties": {"n": {"type": ["integer", "null"]}},
                                             "propertyOrdering": ["n"], "minProperties": 1}


def test_gemini_function_calls_get_ids_and_responses_find_their_call() -> None:
    body = {"contents": [
        {"role": "model", "parts": [{"functionCall": {"name": "a", "args": {}}}, {"functionCall": {"name": "b"}}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "b", "response": {"result": "B"}}},
                                   {"functionResponse": {"name": "a", "response": {"error": "boom"}}}]}]}
    core = gemini_request_to_core(body)
    call_a, call_b = core.messages[0].parts
    result_b, result_a = core.messages[1].parts
    assert isinstance(call_a, ToolCallPart) and isinstance(call_b, ToolCallPart)
    assert isinstance(result_a, ToolResultPart) and isinstance(result_b, ToolResultPart)
    assert (result_a.call_id, result_b.call_id) == (call_a.id, call_b.id)
    assert is_synthetic_call_id(call_a.id) and result_a.is_error and result_a.content == (TextPart("boom"),)
    out = core_request_to_gemini(core)["contents"]
    assert "id" not in out[0]["parts"][0]["functionCall"]  # made-up ids are not sent to Gemini
    assert out[1]["parts"][1]["functionResponse"]["response"] == {"error": "boom"}


def test_gemini_gets_a_stand_in_signature_for_foreign_tool_calls() -> None:
    turn = Message(Role.ASSISTANT, (ToolCallPart("call_1", "f", "{}"), ToolCallPart("call_2", "f", "{}")))
    parts = core_request_to_gemini(request(messages=(USER, turn)))["contents"][1]["parts"]
    assert [p.get("thoughtSignature") for p in parts] == [SKIP_SIGNATURE, None]
    assert gemini_request_to_core({"contents": [{"role": "model", "parts": parts}]}).messages[0].parts[0] == \
        ToolCallPart("call_1", "f", "{}")  # and reads back as no signature


def test_gemini_stop_with_function_calls_is_tool_calls() -> None:
    body = {"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": {"x": 1}}}]},
                            "finishReason": "STOP"}], "responseId": "r1"}
    response = gemini_response_to_core(body)
    assert response.finish is FinishReason.TOOL_CALLS
    assert response.parts == (ToolCallPart("call_rg_r1_0", "f", '{"x":1}'),)


@pytest.mark.parametrize(("raw", "reason"), [
    ("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("RECITATION", "content_filter"),
    ("BLOCKLIST", "content_filter"), ("PROHIBITED_CONTENT", "content_filter"), ("SPII", "content_filter"),
    ("IMAGE_SAFETY", "content_filter"), ("MALFORMED_FUNCTION_CALL", "error"), ("OTHER", "error"),
    ("LANGUAGE", "error"), ("FINISH_REASON_UNSPECIFIED", "error"),
])
def test_gemini_finish_reasons(raw: str, reason: str) -> None:
    body = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": raw}]}
    assert gemini_response_to_core(body).finish == reason


@pytest.mark.parametrize(("raw", "reason", "openai"), [
    ("end_turn", "stop", "stop"), ("stop_sequence", "stop", "stop"), ("max_tokens", "length", "length"),
    ("tool_use", "tool_calls", "tool_calls"), ("pause_turn", "stop", "stop"), ("refusal", "content_filter",
    "content_filter"), ("model_context_window_exceeded", "length", "length"),
])
def test_anthropic_stop_reasons(raw: str, reason: str, openai: str) -> None:
    response = anthropic_response_to_core({"content": [], "stop_reason": raw})
    assert response.finish == reason
    assert core_response_to_openai(response, "m")["choices"][0]["finish_reason"] == openai


# -- media ------------------------------------------------------------------------------------------

def test_data_uris() -> None:
    assert parse_data_uri("data:image/webp;base64,UklGRh") == InlineMedia("image/webp", "UklGRh")
    assert parse_data_uri("data:;base64,iVBORw0KGgoA") == InlineMedia("image/png", "iVBORw0KGgoA")
    assert parse_data_uri("https://x/y.png") is None


def test_urls_to_fetch_and_inline_media() -> None:
    image = ImagePart(url="https://img.example.org/cat.jpg")
    pdf = FilePart(url="http://docs.example.org/a.pdf")
    hosted = ImagePart("image/png", url="https://generativelanguage.googleapis.com/v1beta/files/abc")
    result = ToolResultPart("call_1", (ImagePart(url="https://img.example.org/cat.jpg"),))
    req = request(messages=(Message(Role.USER, (image, pdf, hosted)), Message(Role.TOOL, (result,))))
    assert gemini_urls_to_fetch(req) == ["https://img.example.org/cat.jpg", "http://docs.example.org/a.pdf"]
    assert anthropic_urls_to_fetch(req) == ["http://docs.example.org/a.pdf"]
    assert openai_urls_to_fetch(req) == ["http://docs.example.org/a.pdf"]
    fetched = inline_media(req, {"https://img.example.org/cat.jpg": InlineMedia("image/jpeg", "/9j/4A")})
    assert urls_to_fetch(fetched, lambda part: part.url != hosted.url) == ["http://docs.example.org/a.pdf"]
    parts = core_request_to_gemini(fetched)["contents"][0]["parts"]
    assert parts[0] == {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4A"}}


def test_text_documents_reach_openai_as_text() -> None:
    doc = FilePart("text/plain", "UmV2ZW51ZSBncmV3Lg==")
    body = core_request_to_openai(request(messages=(Message(Role.USER, (doc,)),)))
    assert body["messages"][0]["content"] == "Revenue grew."


# -- reasoning words and budgets ---------------------------------------------------------------------

def test_effort_and_budget_tables() -> None:
    assert [budget_for_effort(e) for e in ("none", "minimal", "low", "medium", "high", "max")] == \
        [0, 512, 1024, 8192, 24576, None]
    assert [effort_for_budget(b) for b in (0, 1, 1024, 2048, 8192, 10000, -1)] == \
        [None, "low", "low", "medium", "medium", "high", "medium"]


def test_openai_effort_comes_from_a_budget_and_asks_for_max_completion_tokens() -> None:
    body = core_request_to_openai(request(reasoning=Reasoning(budget_tokens=2048), sampling=Sampling(max_tokens=900)))
    assert (body["reasoning_effort"], body["max_completion_tokens"]) == ("medium", 900)
    assert core_request_to_openai(request(sampling=Sampling(max_tokens=900)))["max_tokens"] == 900


def test_openai_tool_result_images_follow_in_a_user_turn() -> None:
    png = ImagePart("image/png", "iVBORw0KGgo")
    result = ToolResultPart("call_1", (TextPart("see image"), png))
    messages = core_request_to_openai(request(messages=(Message(Role.TOOL, (result,)),)))["messages"]
    assert messages == [{"role": "tool", "tool_call_id": "call_1", "content": "see image"},
                        {"role": "user", "content": [{"type": "image_url",
                                                      "image_url": {"url": "data:image/png;base64,iVBORw0KGgo"}}]}]


def test_openai_system_and_developer_messages_anywhere_become_the_system_prompt() -> None:
    core = openai_request_to_core({"model": "m", "messages": [
        {"role": "user", "content": "a"}, {"role": "developer", "content": "rules"}, {"role": "user", "content": "b"}]})
    assert core.system == (TextPart("rules", {"openai": {"role": "developer"}}),)
    assert [m.role for m in core.messages] == [Role.USER, Role.USER]


def test_unparseable_arguments_become_an_empty_object() -> None:
    assert json_object('{"a": ') == {} and json_object("[1]") == {} and json_object("") == {}


# -- streams -----------------------------------------------------------------------------------------

def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish}]
    return {"id": "c1", "model": "m", "choices": choices, **extra}


def test_openai_finish_waits_for_the_usage_chunk() -> None:
    stream = OpenAIStreamToCore()
    assert stream.feed(chunk({"content": "hi"})) == [MessageStart("c1", "m"), TextDelta(0, "hi")]
    assert stream.feed(chunk({}, "stop")) == [BlockStop(0)]
    usage = {"prompt_tokens": 3, "completion_tokens": 1}
    assert stream.feed(chunk(None, usage=usage)) == [Finish(FinishReason.STOP, Usage(3, 1))]
    assert stream.close() == []


def test_openai_finish_without_usage_comes_at_close() -> None:
    stream = OpenAIStreamToCore()
    stream.feed(chunk({}, "length"))
    assert stream.close() == [Finish(FinishReason.LENGTH)]


def test_openai_stream_reads_the_first_choice_only_and_keeps_errors_for_the_tap() -> None:
    stream = OpenAIStreamToCore()
    other = {"id": "c1", "model": "m", "choices": [{"index": 1, "delta": {"content": "other"}}]}
    assert stream.feed(other) == [MessageStart("c1", "m")]
    error = stream.feed({"error": {"message": "bad key sk-abcdefghijklmnop", "type": "server_error"}})
    # The decoder is pure; the relay's TranslatingTap scrubs with the channel's scrubber (test_scrub.py).
    assert error == [StreamError("bad key sk-abcdefghijklmnop", "server_error")]


def test_anthropic_encoder_drops_foreign_signatures_and_renumbers() -> None:
    encoder = CoreToAnthropicStream("claude")
    events: list[StreamEvent] = [MessageStart("m1", "x"), SignatureDelta(0, "gsig", "gemini"), BlockStop(0),
              RedactedThinking(1, "opaque", "gemini"), ThinkingDelta(2, "hm"), SignatureDelta(2, "gsig", "gemini"),
              BlockStop(2), TextDelta(3, "hi"), Finish(FinishReason.STOP, Usage(5, 2))]
    wire = [pair for event in events for pair in encoder.feed(event)]
    names = [name for name, _ in wire]
    assert names == ["message_start", "ping", "content_block_start", "content_block_delta", "content_block_stop",
                     "content_block_start", "content_block_delta", "content_block_stop", "message_delta",
                     "message_stop"]
    assert [p["index"] for n, p in wire if n == "content_block_start"] == [0, 1]


def test_anthropic_redacted_thinking_and_late_message_delta() -> None:
    stream = AnthropicStreamToCore()
    stream.feed({"type": "message_start", "message": {"id": "m", "model": "c", "usage": {"input_tokens": 9}}})
    block = {"type": "content_block_start", "index": 0, "content_block": {"type": "redacted_thinking", "data": "x"}}
    assert stream.feed(block) == [RedactedThinking(0, "x", "anthropic")]
    stream.feed({"type": "message_delta", "delta": {"stop_reason": "pause_turn"}, "usage": {"output_tokens": 4}})
    finish = stream.close()  # the body ended before message_stop
    assert finish == [Finish(FinishReason.STOP, Usage(9, 4), extras={"anthropic": {"stop_reason": "pause_turn"}})]
    encoder = CoreToAnthropicStream("c")
    encoder.feed(MessageStart("m", "c", Usage(9)))
    assert encoder.feed(finish[0])[0][1]["delta"]["stop_reason"] == "pause_turn"


def test_gemini_encoder_gathers_call_pieces_and_carries_the_signature() -> None:
    encoder = CoreToGeminiStream("g")
    events: list[StreamEvent] = [MessageStart("r1", "g"), SignatureDelta(0, "gsig", "gemini"), BlockStop(0),
              ToolCallStart(1, "call_rg_r1_0", "f"), ToolCallDelta(1, '{"a":'), ToolCallDelta(1, "1}"), BlockStop(1)]
    wire = [payload for event in events for _, payload in encoder.feed(event)]
    assert [c["candidates"][0]["content"]["parts"] for c in wire] == \
        [[{"functionCall": {"name": "f", "args": {"a": 1}}, "thoughtSignature": "gsig"}]]


def test_gemini_blocked_prompt_in_a_stream() -> None:
    stream = GeminiStreamToCore()
    events = stream.feed({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 7},
                          "responseId": "r"})
    assert events[-1] == Finish(FinishReason.CONTENT_FILTER, Usage(7))


def test_a_stream_that_never_finished_accumulates_to_an_error() -> None:
    assert accumulate([MessageStart("a", "m"), TextDelta(0, "par")]).finish is FinishReason.ERROR


def test_openai_encoder_without_include_usage_sends_no_usage() -> None:
    encoder = CoreToOpenAIStream("m", created=5)
    wire = [p for e in (MessageStart("a", "m"), Finish(FinishReason.STOP, Usage(1, 1))) for _, p in encoder.feed(e)]
    assert all("usage" not in p for p in wire) and len(wire) == 2


def test_gemini_inline_bytes_in_either_base64_alphabet_become_standard_base64() -> None:
    """google-genai writes inline data URL-safe and unpadded; OpenAI data URLs and Anthropic sources
    need the standard alphabet, padded."""
    import base64

    from relaygate.dialects.gemini.parts import standard_base64

    raw = bytes(range(256)) * 3 + b"\xfb\xff"
    url_safe = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    assert "-" in url_safe or "_" in url_safe
    assert standard_base64(url_safe) == base64.b64encode(raw).decode()
    assert standard_base64(base64.b64encode(raw).decode()) == base64.b64encode(raw).decode()
