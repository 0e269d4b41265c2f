"""Tool use across dialects, the three "done when" scenarios of Claude and Gemini support:

(a) the ``anthropic`` SDK streams a tool-using conversation from a model whose channel speaks OpenAI's
    format (the fake OpenAI upstream streams ``tool_calls`` in pieces, which arrive as
    ``input_json_delta`` pieces), sends the ``tool_result`` back and gets the final text;
(b) the ``google-genai`` SDK streams (``generate_content_stream``) from a Claude channel, including a
    function call, and sends the function response back;
(c) the ``openai`` SDK reaches ``gemini-pro`` on a Gemini channel, streamed and not, with tools.

Each turn checks the SDK's parsed answer (content, tool calls, finish reason), what the upstream
received in its own dialect, and the usage record (tokens, exact cost, the key's spend).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import openai
import orjson
import pytest
from anthropic.types import MessageParam, ToolParam
from google import genai
from google.genai import types
from openai.types.chat import ChatCompletion, ChatCompletionFunctionToolParam, ChatCompletionMessageParam

from tests.fakes.anthropic_upstream import TOOL_USE_ID, FakeAnthropic
from tests.fakes.clients import UPSTREAM_KEY, new_rid, token_cost
from tests.fakes.gemini_upstream import RESPONSE_ID, FakeGemini
from tests.fakes.openai_upstream import TOOL_CALL_ID, FakeOpenAI
from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import Gateway

KEY = "sk-cross-tools-key-00001"
GPT = ("2.5", "10")
CLAUDE = ("3", "15")
GEMINI_PRO = ("1.25", "10")
SCHEMA: dict[str, object] = {"type": "object", "properties": {"city": {"type": "string", "description": "City name"}},
          "required": ["city"]}
WEATHER_RESULT = '{"temp_c":14,"sky":"clear"}'
FINAL = ("It is ", "14°C and ", "clear in Lyon.")


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: type[Gateway], fake_upstream: FakeOpenAI, fake_anthropic_upstream: FakeAnthropic,
            fake_gemini_upstream: FakeGemini, tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    config = {
        "channels": [
            {"name": "oa", "type": "openai", "base_url": fake_upstream.channel_url("oa"), "api_key": UPSTREAM_KEY,
             "models": ["gpt-4o"]},
            {"name": "an", "type": "anthropic", "base_url": fake_anthropic_upstream.channel_url("an"),
             "api_key": UPSTREAM_KEY, "models": ["claude-sonnet-4-20250514"]},
            {"name": "gm", "type": "gemini", "base_url": fake_gemini_upstream.channel_url("gm"),
             "api_key": UPSTREAM_KEY, "models": ["gemini-pro"]},
        ],
        "prices": {"gpt-4o": {"input": 2.5, "output": 10}, "claude-sonnet-4-20250514": {"input": 3, "output": 15},
                   "gemini-pro": {"input": 1.25, "output": 10}},
        "keys": [{"name": "tools", "key": KEY, "quota_usd": 20}],
    }
    return module_gateway_factory(Path(tmp_path_factory.mktemp("cross-tools")), config).start()


@pytest.fixture(scope="module")
def db(gateway: Gateway) -> GatewayDB:
    return GatewayDB(gateway.database)


@pytest.fixture(autouse=True)
def _fresh_fakes(fake: FakeOpenAI, anthropic_fake: FakeAnthropic, gemini_fake: FakeGemini) -> None:
    """Every test starts with the fakes' default behaviour and no recorded requests."""


def _billed(db: GatewayDB, rid: str, *, model: str, channel: str, stream: bool, tokens: tuple[int, int],
            price: tuple[str, str]) -> int:
    row = db.usage(rid)
    assert (row["end_reason"], row["status"], row["usage_source"]) == ("done", 200, "upstream")
    assert (row["model"], row["channel_name"], row["stream"]) == (model, channel, int(stream))
    assert (row["input_tokens"], row["output_tokens"]) == tokens
    cost = token_cost(*tokens, *price)
    assert row["cost_nano"] == cost > 0
    return cost


# --- (a) the anthropic SDK, streaming, on an OpenAI-format channel ------------------------------

ANTHROPIC_TOOL: ToolParam = {"name": "get_weather", "description": "Current weather for a city",
                             "input_schema": SCHEMA}


def test_anthropic_sdk_streams_a_tool_conversation_from_an_openai_channel(
        gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    fake.set("oa", tool_arguments=('{"ci', 'ty": "Ly', 'on"}'), prompt_tokens=40, completion_tokens=9)
    used = db.key_used("tools")
    question: MessageParam = {"role": "user", "content": "What is the weather in Lyon?"}
    rid1, rid2 = new_rid("ta1"), new_rid("ta2")
    with anthropic.Anthropic(api_key=KEY, base_url=gateway.url, max_retries=0, timeout=30) as client:
        with client.messages.stream(model="gpt-4o", max_tokens=512, tools=[ANTHROPIC_TOOL],
                                    messages=[question], extra_headers={"X-Request-Id": rid1}) as stream:
            events = list(stream)
            first = stream.get_final_message()
        # The SDK parsed the tool call from the argument pieces, as they came.
        pieces = [e.delta.partial_json for e in events
                  if e.type == "content_block_delta" and e.delta.type == "input_json_delta"]
        assert pieces == ["", '{"ci', 'ty": "Ly', 'on"}']
        assert [e.type for e in events][:2] == ["message_start", "content_block_start"]
        assert events[-1].type == "message_stop"
        assert first.stop_reason == "tool_use"
        assert first.model == "gpt-4o"
        [tool_use] = first.content
        assert tool_use.type == "tool_use"
        assert (tool_use.id, tool_use.name, tool_use.input) == (TOOL_CALL_ID, "get_weather", {"city": "Lyon"})
        assert (first.usage.input_tokens, first.usage.output_tokens) == (40, 9)

        [sent1] = fake.chat_requests()
        body1 = sent1.json()
        assert body1["tools"] == [{"type": "function", "function": {
            "name": "get_weather", "description": "Current weather for a city", "parameters": SCHEMA}}]
        assert body1["stream"] is True and body1["stream_options"] == {"include_usage": True}
        assert body1["messages"] == [{"role": "user", "content": "What is the weather in Lyon?"}]
        assert body1["max_tokens"] == 512
        cost1 = _billed(db, rid1, model="gpt-4o", channel="oa", stream=True, tokens=(40, 9), price=GPT)

        # Turn 2: the tool's result goes back; the model answers in text.
        fake.set("oa", content=FINAL, prompt_tokens=70, completion_tokens=12)
        history: list[MessageParam] = [
            question, {"role": "assistant", "content": first.content},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_use.id,
                                          "content": WEATHER_RESULT}]}]
        with client.messages.stream(model="gpt-4o", max_tokens=512, tools=[ANTHROPIC_TOOL],
                                    tool_choice={"type": "none"}, messages=history,
                                    extra_headers={"X-Request-Id": rid2}) as stream:
            text = "".join(stream.text_stream)
            second = stream.get_final_message()
    assert text == "".join(FINAL)
    assert second.stop_reason == "end_turn"
    assert [b.type for b in second.content] == ["text"]
    assert (second.usage.input_tokens, second.usage.output_tokens) == (70, 12)
    sent2 = fake.chat_requests()[1].json()
    assert sent2["messages"] == [
        {"role": "user", "content": "What is the weather in Lyon?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": TOOL_CALL_ID, "type": "function", "function": {
            "name": "get_weather", "arguments": '{"city":"Lyon"}'}}]},
        {"role": "tool", "tool_call_id": TOOL_CALL_ID, "content": WEATHER_RESULT}]
    assert sent2["tool_choice"] == "none"
    cost2 = _billed(db, rid2, model="gpt-4o", channel="oa", stream=True, tokens=(70, 12), price=GPT)
    assert db.key_used("tools") - used == cost1 + cost2


def test_anthropic_sdk_tool_call_from_an_openai_channel_without_streaming(
        gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    rid = new_rid("ta-json")
    with anthropic.Anthropic(api_key=KEY, base_url=gateway.url, max_retries=0, timeout=30) as client:
        message = client.messages.create(
            model="gpt-4o", max_tokens=100, tools=[ANTHROPIC_TOOL],
            tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
            messages=[{"role": "user", "content": "Weather in Lyon?"}], extra_headers={"X-Request-Id": rid})
    assert message.stop_reason == "tool_use"
    [block] = message.content
    assert block.type == "tool_use" and (block.id, block.input) == (TOOL_CALL_ID, {"city": "Lyon"})
    sent = fake.chat_requests()[0].json()
    assert sent["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    assert sent["parallel_tool_calls"] is False
    _billed(db, rid, model="gpt-4o", channel="oa", stream=False, tokens=(11, 3), price=GPT)


# --- (b) google-genai, streaming, on a Claude channel ------------------------------------------

GEMINI_TOOL = types.Tool(function_declarations=[types.FunctionDeclaration(
    name="get_weather", description="Current weather for a city",
    parameters=types.Schema(type=types.Type.OBJECT, properties={
        "city": types.Schema(type=types.Type.STRING, description="City name")}, required=["city"]))])


def _genai(gateway: Gateway) -> genai.Client:
    return genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=gateway.url, timeout=30_000))


def test_genai_sdk_streams_a_function_call_from_a_claude_channel(
        gateway: Gateway, anthropic_fake: FakeAnthropic, db: GatewayDB) -> None:
    anthropic_fake.set("an", tool_text=("Let me ", "check."), tool_input=('{"city"', ': "Lyon"}'),
                       input_tokens=120, output_tokens=30)
    used = db.key_used("tools")
    client = _genai(gateway)
    rid1, rid2 = new_rid("tb1"), new_rid("tb2")
    question = types.Content(role="user", parts=[types.Part(text="What is the weather in Lyon?")])
    config = types.GenerateContentConfig(
        tools=[GEMINI_TOOL], max_output_tokens=300, system_instruction="Use the tools.",
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        http_options=types.HttpOptions(headers={"X-Request-Id": rid1}))
    chunks = list(client.models.generate_content_stream(model="claude-sonnet-4-20250514", contents=[question],
                                                        config=config))
    texts = [c.candidates[0].content.parts[0].text for c in chunks
             if c.candidates and c.candidates[0].content and c.candidates[0].content.parts
             and c.candidates[0].content.parts[0].text]
    assert texts == ["Let me ", "check."]
    calls = [call for c in chunks for call in c.function_calls or []]
    [call] = calls
    assert (call.name, call.args) == ("get_weather", {"city": "Lyon"})
    assert call.id == TOOL_USE_ID
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason == types.FinishReason.STOP
    assert all(not c.candidates or c.candidates[0].finish_reason is None for c in chunks[:-1])
    assert last.usage_metadata is not None
    assert (last.usage_metadata.prompt_token_count, last.usage_metadata.candidates_token_count) == (120, 30)

    [sent1] = anthropic_fake.message_requests()
    body1 = sent1.json()
    assert body1["tools"] == [{"name": "get_weather", "description": "Current weather for a city",
                               "input_schema": SCHEMA}]
    assert body1["system"] == "Use the tools."
    assert (body1["max_tokens"], body1["stream"], body1["model"]) == (300, True, "claude-sonnet-4-20250514")
    assert body1["messages"] == [{"role": "user", "content": "What is the weather in Lyon?"}]
    cost1 = _billed(db, rid1, model="claude-sonnet-4-20250514", channel="an", stream=True, tokens=(120, 30),
                    price=CLAUDE)

    # Turn 2: the function's response goes back as Gemini sends it; Claude answers in text.
    anthropic_fake.set("an", content=FINAL, input_tokens=200, output_tokens=15)
    model_turn = types.Content(role="model", parts=[
        types.Part(text="Let me check."), types.Part(function_call=call)])
    answer_turn = types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(
        id=call.id, name="get_weather", response={"temp_c": 14, "sky": "clear"}))])
    config2 = types.GenerateContentConfig(
        tools=[GEMINI_TOOL], max_output_tokens=300,
        tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(
            mode=types.FunctionCallingConfigMode.NONE)),
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        http_options=types.HttpOptions(headers={"X-Request-Id": rid2}))
    chunks2 = list(client.models.generate_content_stream(
        model="claude-sonnet-4-20250514", contents=[question, model_turn, answer_turn], config=config2))
    assert "".join(c.text or "" for c in chunks2) == "".join(FINAL)
    assert not any(c.function_calls for c in chunks2)
    final = chunks2[-1]
    assert final.candidates and final.candidates[0].finish_reason == types.FinishReason.STOP
    sent2 = anthropic_fake.message_requests()[1].json()
    assert sent2["messages"] == [
        {"role": "user", "content": "What is the weather in Lyon?"},
        {"role": "assistant", "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": TOOL_USE_ID, "name": "get_weather", "input": {"city": "Lyon"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": TOOL_USE_ID,
                                      "content": WEATHER_RESULT}]}]
    assert sent2["tool_choice"] == {"type": "none"}
    cost2 = _billed(db, rid2, model="claude-sonnet-4-20250514", channel="an", stream=True, tokens=(200, 15),
                    price=CLAUDE)
    assert db.key_used("tools") - used == cost1 + cost2


def test_genai_sdk_function_call_from_a_claude_channel_without_streaming(
        gateway: Gateway, anthropic_fake: FakeAnthropic, db: GatewayDB) -> None:
    rid = new_rid("tb-json")
    config = types.GenerateContentConfig(
        tools=[GEMINI_TOOL], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        tool_config=types.ToolConfig(function_calling_config=types.FunctionCallingConfig(
            mode=types.FunctionCallingConfigMode.ANY, allowed_function_names=["get_weather"])),
        http_options=types.HttpOptions(headers={"X-Request-Id": rid}))
    client = _genai(gateway)  # held: a genai client closes its connection pool when collected
    response = client.models.generate_content(model="claude-sonnet-4-20250514", contents="Weather in Lyon?",
                                              config=config)
    [call] = response.function_calls or []
    assert (call.id, call.name, call.args) == (TOOL_USE_ID, "get_weather", {"city": "Lyon"})
    assert response.candidates and response.candidates[0].finish_reason == types.FinishReason.STOP
    sent = anthropic_fake.message_requests()[0].json()
    assert sent["tool_choice"] == {"type": "tool", "name": "get_weather"}
    assert sent["max_tokens"] == 4096  # Anthropic requires one; the documented default
    _billed(db, rid, model="claude-sonnet-4-20250514", channel="an", stream=False, tokens=(11, 2), price=CLAUDE)


# --- (c) the openai SDK on gemini-pro, a Gemini channel ----------------------------------------

OPENAI_TOOL: ChatCompletionFunctionToolParam = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city", "parameters": SCHEMA}}
GEMINI_DECLARATION = {"name": "get_weather", "description": "Current weather for a city", "parameters": {
    "type": "OBJECT", "properties": {"city": {"type": "STRING", "description": "City name"}}, "required": ["city"]}}
MADE_UP_ID = f"call_rg_{RESPONSE_ID}_0"  # Gemini's calls come without ids; the gateway makes one up


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_openai_sdk_uses_tools_on_gemini_pro(gateway: Gateway, gemini_fake: FakeGemini, db: GatewayDB,
                                             stream: bool) -> None:
    gemini_fake.set("gm", prompt_tokens=55, candidates_tokens=7)
    rid1, rid2 = new_rid("tc1"), new_rid("tc2")
    question: ChatCompletionMessageParam = {"role": "user", "content": "What is the weather in Lyon?"}
    with openai.OpenAI(api_key=KEY, base_url=gateway.url + "/v1", max_retries=0, timeout=30) as client:
        first: ChatCompletion
        if stream:
            with client.chat.completions.stream(model="gemini-pro", messages=[question], tools=[OPENAI_TOOL],
                                                extra_headers={"X-Request-Id": rid1}) as events:
                chunks = [e.chunk for e in events if e.type == "chunk"]
                first = events.get_final_completion()
            assert chunks[0].choices[0].delta.role == "assistant"
            starts = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or [] if tc.id]
            assert [(tc.id, tc.function.name if tc.function else None) for tc in starts] == [
                (MADE_UP_ID, "get_weather")]
        else:
            first = client.chat.completions.create(model="gemini-pro", messages=[question], tools=[OPENAI_TOOL],
                                                   extra_headers={"X-Request-Id": rid1})
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls"
        [call] = choice.message.tool_calls or []
        assert call.type == "function"
        assert (call.id, call.function.name, call.function.arguments) == (
            MADE_UP_ID, "get_weather", '{"city":"Lyon"}')
        assert first.model == "gemini-pro"
        if not stream:
            assert first.usage is not None and (first.usage.prompt_tokens, first.usage.completion_tokens) == (55, 7)

        [sent1] = gemini_fake.generate_requests()
        action = ":streamGenerateContent" if stream else ":generateContent"
        assert sent1.path == f"/gm/v1beta/models/gemini-pro{action}"
        assert sent1.headers["x-goog-api-key"] == UPSTREAM_KEY and KEY not in str(sent1.headers)
        body1 = sent1.json()
        assert body1["tools"] == [{"functionDeclarations": [GEMINI_DECLARATION]}]
        assert body1["contents"] == [{"role": "user", "parts": [{"text": "What is the weather in Lyon?"}]}]
        _billed(db, rid1, model="gemini-pro", channel="gm", stream=stream, tokens=(55, 7), price=GEMINI_PRO)

        # Turn 2: the tool's result goes back; Gemini matches it to the call by name and order.
        gemini_fake.set("gm", content=FINAL, prompt_tokens=80, candidates_tokens=6)
        history: list[ChatCompletionMessageParam] = [
            question, first.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
            {"role": "tool", "tool_call_id": call.id, "content": WEATHER_RESULT}]
        if stream:
            parts = list(client.chat.completions.create(
                model="gemini-pro", messages=history, tools=[OPENAI_TOOL], tool_choice="none", stream=True,
                extra_headers={"X-Request-Id": rid2}))
            text = "".join(c.choices[0].delta.content or "" for c in parts)
            finish = parts[-1].choices[0].finish_reason
        else:
            second = client.chat.completions.create(model="gemini-pro", messages=history, tools=[OPENAI_TOOL],
                                                    tool_choice="none", extra_headers={"X-Request-Id": rid2})
            text, finish = second.choices[0].message.content or "", second.choices[0].finish_reason
    assert (text, finish) == ("".join(FINAL), "stop")
    body2 = gemini_fake.generate_requests()[1].json()
    assert body2["contents"] == [
        {"role": "user", "parts": [{"text": "What is the weather in Lyon?"}]},
        {"role": "model", "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Lyon"}},
                                     "thoughtSignature": "skip_thought_signature_validator"}]},
        {"role": "user", "parts": [{"functionResponse": {"name": "get_weather",
                                                         "response": {"temp_c": 14, "sky": "clear"}}}]}]
    assert body2["toolConfig"] == {"functionCallingConfig": {"mode": "NONE"}}
    _billed(db, rid2, model="gemini-pro", channel="gm", stream=stream, tokens=(80, 6), price=GEMINI_PRO)


def test_gemini_function_call_ids_reach_the_openai_client(gateway: Gateway, gemini_fake: FakeGemini) -> None:
    """Newer Gemini models give their calls ids: those are kept, and sent back with the response."""
    gemini_fake.set("gm", function_call_id="fc-7a1")
    with openai.OpenAI(api_key=KEY, base_url=gateway.url + "/v1", max_retries=0, timeout=30) as client:
        first = client.chat.completions.create(model="gemini-pro", tools=[OPENAI_TOOL],
                                               messages=[{"role": "user", "content": "Weather?"}])
        [call] = first.choices[0].message.tool_calls or []
        assert call.id == "fc-7a1"
        history: Any = [{"role": "user", "content": "Weather?"}, first.choices[0].message.model_dump(exclude_none=True),
                        {"role": "tool", "tool_call_id": "fc-7a1", "content": "sunny"}]
        client.chat.completions.create(model="gemini-pro", tools=[OPENAI_TOOL], tool_choice="none", messages=history)
    contents: list[dict[str, Any]] = gemini_fake.generate_requests()[1].json()["contents"]
    assert contents[1]["parts"][0]["functionCall"]["id"] == "fc-7a1"
    assert contents[2]["parts"] == [{"functionResponse": {"id": "fc-7a1", "name": "get_weather",
                                                          "response": {"result": "sunny"}}}]


# --- every cross-dialect pair, one tool call each -----------------------------------------------

CROSS_MODELS = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-20250514", "gemini": "gemini-pro"}
CROSS_PRICES = {"openai": GPT, "anthropic": CLAUDE, "gemini": GEMINI_PRO}
# The fakes' tool-call replies: the call's id as the client sees it, and the output tokens reported.
CROSS_IDS = {"openai": TOOL_CALL_ID, "anthropic": TOOL_USE_ID, "gemini": MADE_UP_ID}
CROSS_OUTPUT = {"openai": 3, "anthropic": 2, "gemini": 1}
TOOL_FINISH = {"openai": "tool_calls", "anthropic": "tool_use", "gemini": "STOP"}


def _tool_call_via(client: str, gateway: Gateway, model: str, stream: bool, rid: str) -> tuple[str, str, Any, str]:
    """(call id, function name, arguments as an object, finish reason) as the client's SDK parsed them."""
    headers = {"X-Request-Id": rid}
    question = "What is the weather in Lyon?"
    if client == "openai":
        with openai.OpenAI(api_key=KEY, base_url=gateway.url + "/v1", max_retries=0, timeout=30) as oa:
            kwargs: Any = {"model": model, "messages": [{"role": "user", "content": question}],
                           "tools": [OPENAI_TOOL], "extra_headers": headers}
            if stream:
                with oa.chat.completions.stream(**kwargs) as events:
                    completion = events.get_final_completion()
            else:
                completion = oa.chat.completions.create(**kwargs)
        choice = completion.choices[0]
        [call] = choice.message.tool_calls or []
        return call.id, call.function.name, orjson.loads(call.function.arguments), str(choice.finish_reason)
    if client == "anthropic":
        with anthropic.Anthropic(api_key=KEY, base_url=gateway.url, max_retries=0, timeout=30) as an:
            kwargs = {"model": model, "max_tokens": 200, "tools": [ANTHROPIC_TOOL],
                      "messages": [{"role": "user", "content": question}], "extra_headers": headers}
            if stream:
                with an.messages.stream(**kwargs) as events:
                    message = events.get_final_message()
            else:
                message = an.messages.create(**kwargs)
        [block] = [b for b in message.content if b.type == "tool_use"]
        assert block.type == "tool_use"
        return block.id, block.name, block.input, str(message.stop_reason)
    gm = _genai(gateway)
    config = types.GenerateContentConfig(
        tools=[GEMINI_TOOL], automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        http_options=types.HttpOptions(headers=headers))
    if stream:
        chunks = list(gm.models.generate_content_stream(model=model, contents=question, config=config))
    else:
        chunks = [gm.models.generate_content(model=model, contents=question, config=config)]
    [fn] = [call for c in chunks for call in c.function_calls or []]
    last = chunks[-1]
    assert last.candidates and last.candidates[0].finish_reason is not None
    return fn.id or "", fn.name or "", fn.args, last.candidates[0].finish_reason.value


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("client", "channel"), [(c, u) for c in CROSS_MODELS for u in CROSS_MODELS if c != u])
def test_a_tool_call_crosses_every_pair(gateway: Gateway, db: GatewayDB, client: str, channel: str,
                                        stream: bool) -> None:
    rid = new_rid(f"tx-{client[:2]}-{channel[:2]}")
    call_id, name, args, finish = _tool_call_via(client, gateway, CROSS_MODELS[channel], stream, rid)
    assert (name, args, finish) == ("get_weather", {"city": "Lyon"}, TOOL_FINISH[client])
    assert call_id == CROSS_IDS[channel]
    _billed(db, rid, model=CROSS_MODELS[channel], channel={"openai": "oa", "anthropic": "an", "gemini": "gm"}[channel],
            stream=stream, tokens=(11, CROSS_OUTPUT[channel]), price=CROSS_PRICES[channel])


# --- thinking with tools across dialects --------------------------------------------------------

def test_genai_thinking_with_tools_on_claude_drops_thinking_when_history_is_unsigned(
        gateway: Gateway, anthropic_fake: FakeAnthropic, db: GatewayDB) -> None:
    """Claude's thoughts reach a Gemini client as thought parts, without Anthropic's signature (which
    Gemini clients cannot carry back). On the next turn the history has a tool call without a signed
    thinking block, which Anthropic refuses with thinking on: so thinking is left out (docs)."""
    anthropic_fake.set("an", thinking=("Need ", "the weather."), input_tokens=60, output_tokens=25)
    client = _genai(gateway)
    rid = new_rid("tb-think")
    thinking = types.ThinkingConfig(thinking_budget=2048, include_thoughts=True)
    config = types.GenerateContentConfig(
        tools=[GEMINI_TOOL], thinking_config=thinking, max_output_tokens=8000,
        automatic_function_calling=types.AutomaticFunctionCallingConfig(disable=True),
        http_options=types.HttpOptions(headers={"X-Request-Id": rid}))
    question = types.Content(role="user", parts=[types.Part(text="Weather in Lyon?")])
    chunks = list(client.models.generate_content_stream(model="claude-sonnet-4-20250514", contents=[question],
                                                        config=config))
    parts = [p for c in chunks if c.candidates and c.candidates[0].content
             for p in c.candidates[0].content.parts or []]
    thoughts = [p.text for p in parts if p.thought]
    assert "".join(t or "" for t in thoughts) == "Need the weather."
    assert not any(p.thought_signature for p in parts)  # Anthropic's signature stays with Anthropic
    [call] = [p.function_call for p in parts if p.function_call]
    assert (call.name, call.args) == ("get_weather", {"city": "Lyon"})
    first = anthropic_fake.message_requests()[0].json()
    assert first["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert first["max_tokens"] == 8000
    _billed(db, rid, model="claude-sonnet-4-20250514", channel="an", stream=True, tokens=(60, 25), price=CLAUDE)

    answer = types.Content(role="user", parts=[types.Part(function_response=types.FunctionResponse(
        id=call.id, name="get_weather", response={"temp_c": 14}))])
    model_turn = types.Content(role="model", parts=[p for p in parts if not p.thought])
    client.models.generate_content(model="claude-sonnet-4-20250514", contents=[question, model_turn, answer],
                                   config=config.model_copy(update={"http_options": None}))
    second = anthropic_fake.message_requests()[1].json()
    assert "thinking" not in second
    assert second["messages"][1]["content"] == [
        {"type": "tool_use", "id": TOOL_USE_ID, "name": "get_weather", "input": {"city": "Lyon"}}]


def test_openai_reasoning_effort_on_claude_becomes_a_budget_within_max_tokens(
        gateway: Gateway, anthropic_fake: FakeAnthropic, db: GatewayDB) -> None:
    anthropic_fake.set("an", thinking=("Thinking…",))
    rid = new_rid("effort-an")
    with openai.OpenAI(api_key=KEY, base_url=gateway.url + "/v1", max_retries=0, timeout=30) as client:
        completion = client.chat.completions.create(
            model="claude-sonnet-4-20250514", reasoning_effort="medium", max_completion_tokens=4000,
            temperature=0.3, messages=[{"role": "user", "content": "Say bonjour"}],
            extra_headers={"X-Request-Id": rid})
    message = completion.choices[0].message
    assert message.content == "Bonjour!"
    assert (message.model_extra or {}).get("reasoning_content") == "Thinking…"
    sent = anthropic_fake.message_requests()[0].json()
    # "medium" is 8192 tokens, cut to half of max_tokens; Anthropic wants no temperature with thinking.
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2000}
    assert sent["max_tokens"] == 4000
    assert "temperature" not in sent
    _billed(db, rid, model="claude-sonnet-4-20250514", channel="an", stream=False, tokens=(11, 4), price=CLAUDE)
