"""Extended thinking and prompt caching through the Anthropic surface, with the official ``anthropic``
SDK: to a Claude channel (passthrough: thinking and signature deltas arrive intact, a signed thinking
block goes back unmodified), to an OpenAI-format channel (the budget becomes ``reasoning_effort``, and
DeepSeek-style ``reasoning_content`` comes back as thinking) and to a Gemini channel (``thinkingConfig``,
thoughts as thinking). Cache reads and writes reported by the Anthropic fake are billed at the
``cached_input`` and ``cache_write`` prices, to the nano-dollar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import httpx
import orjson
import pytest
from anthropic.types import MessageParam, ThinkingConfigEnabledParam, ToolParam

from tests.fakes.anthropic_upstream import TOOL_USE_ID, Behavior, FakeAnthropic, Reply, frame
from tests.fakes.clients import NANO, UPSTREAM_KEY, new_rid
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import CHAT_ID, CREATED, FakeOpenAI
from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import Gateway

KEY = "sk-thinking-key-00000001"
CLAUDE = "claude-sonnet-4-20250514"
# USD per 1M tokens: input, output, cached input (reads), cache writes.
CLAUDE_PRICE = ("3", "15", "0.3", "3.75")
O4_PRICE = ("1.1", "4.4", "0.275", None)
FLASH_PRICE = ("0.3", "2.5", None, None)
SIGNATURE = "EqQBCgIYAhIMsignedByTheFakeAnthropic=="
THINKING = ("The user wants ", "a greeting.")
QUESTION: MessageParam = {"role": "user", "content": "Say bonjour"}
TOOL: ToolParam = {"name": "get_weather", "description": "Weather for a city",
                   "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: type[Gateway], fake_upstream: FakeOpenAI, fake_anthropic_upstream: FakeAnthropic,
            fake_gemini_upstream: FakeGemini, tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    config = {
        "channels": [
            {"name": "an", "type": "anthropic", "base_url": fake_anthropic_upstream.channel_url("an"),
             "api_key": UPSTREAM_KEY, "models": [CLAUDE]},
            {"name": "oa", "type": "openai", "base_url": fake_upstream.channel_url("oa"), "api_key": UPSTREAM_KEY,
             "models": ["o4-mini"]},
            {"name": "gm", "type": "gemini", "base_url": fake_gemini_upstream.channel_url("gm"),
             "api_key": UPSTREAM_KEY, "models": ["gemini-2.5-flash"]},
        ],
        "prices": {
            CLAUDE: {"input": 3, "output": 15, "cached_input": 0.3, "cache_write": 3.75},
            "o4-mini": {"input": 1.1, "output": 4.4, "cached_input": 0.275},
            "gemini-2.5-flash": {"input": 0.3, "output": 2.5},
        },
        "keys": [{"name": "thinking", "key": KEY, "quota_usd": 20}],
    }
    return module_gateway_factory(Path(tmp_path_factory.mktemp("thinking")), config).start()


@pytest.fixture(scope="module")
def db(gateway: Gateway) -> GatewayDB:
    return GatewayDB(gateway.database)


@pytest.fixture(autouse=True)
def _fresh_fakes(fake: FakeOpenAI, anthropic_fake: FakeAnthropic, gemini_fake: FakeGemini) -> None:
    """Every test starts with the fakes' default behaviour and no recorded requests."""


@pytest.fixture
def client(gateway: Gateway) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key=KEY, base_url=gateway.url, max_retries=0, timeout=30)


def _per_m(usd: str | None) -> int | None:
    if usd is None:
        return None
    whole, _, frac = usd.partition(".")
    return int(whole) * NANO + int((frac + "0" * 9)[:9])


def expected_cost(price: tuple[str, str, str | None, str | None], *, plain: int, output: int, cached: int = 0,
                  writes: int = 0) -> int:
    """docs/billing.md, computed independently: plain input, cache reads, cache writes and output, each at
    its own per-1M price (reads and writes default to the input price), rounded up once."""
    input_rate, output_rate = _per_m(price[0]), _per_m(price[1])
    assert input_rate is not None and output_rate is not None
    read_rate, write_rate = _per_m(price[2]) or input_rate, _per_m(price[3]) or input_rate
    scaled = plain * input_rate + cached * read_rate + writes * write_rate + output * output_rate
    return -(-scaled // 1_000_000)


def _record(db: GatewayDB, rid: str, *, channel: str, stream: bool) -> dict[str, Any]:
    row = db.usage(rid)
    assert (row["end_reason"], row["status"], row["usage_source"]) == ("done", 200, "upstream")
    assert (row["surface"], row["channel_name"], row["stream"]) == ("anthropic.messages", channel, int(stream))
    return row


# --- to a Claude channel: passthrough ------------------------------------------------------------

def test_thinking_and_signature_deltas_pass_through_intact(client: anthropic.Anthropic,
                                                           anthropic_fake: FakeAnthropic, db: GatewayDB) -> None:
    anthropic_fake.set("an", thinking=THINKING, signature=SIGNATURE)
    rid = new_rid("think-an")
    with client.messages.stream(model=CLAUDE, max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 2048},
                                messages=[QUESTION], extra_headers={"X-Request-Id": rid}) as stream:
        events = list(stream)
        message = stream.get_final_message()
    deltas = [e.delta for e in events if e.type == "content_block_delta"]
    assert [(d.type, getattr(d, "thinking", None) or getattr(d, "signature", None) or getattr(d, "text", None))
            for d in deltas] == [("thinking_delta", "The user wants "), ("thinking_delta", "a greeting."),
                                 ("signature_delta", SIGNATURE), ("text_delta", "Bon"), ("text_delta", "jour"),
                                 ("text_delta", "!")]
    thinking, text = message.content
    assert thinking.type == "thinking" and (thinking.thinking, thinking.signature) == ("".join(THINKING), SIGNATURE)
    assert text.type == "text" and text.text == "Bonjour!"
    assert message.stop_reason == "end_turn"
    [sent] = anthropic_fake.message_requests()
    assert sent.json()["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    row = _record(db, rid, channel="an", stream=True)
    assert (row["input_tokens"], row["output_tokens"]) == (11, 5)  # two thinking and three text pieces
    assert row["cost_nano"] == expected_cost(CLAUDE_PRICE, plain=11, output=5)


def test_passthrough_stream_bytes_are_the_upstream_events(gateway: Gateway, anthropic_fake: FakeAnthropic) -> None:
    behavior = Behavior(thinking=THINKING, signature=SIGNATURE, cache_read_input_tokens=7)
    anthropic_fake.set("an", behavior)
    body = {"model": CLAUDE, "max_tokens": 4096, "stream": True, "tools": [TOOL],
            "thinking": {"type": "enabled", "budget_tokens": 1024}, "messages": [QUESTION]}
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        response = http.post("/v1/messages", json=body, headers={"x-api-key": KEY, "anthropic-version": "2023-06-01"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    expected = b"".join(frame(name, payload) for _, name, payload in Reply(body, behavior).events())
    assert response.content == expected


def test_a_signed_thinking_block_goes_back_unmodified(client: anthropic.Anthropic, anthropic_fake: FakeAnthropic,
                                                      db: GatewayDB) -> None:
    anthropic_fake.set("an", thinking=THINKING, signature=SIGNATURE)
    thinking: ThinkingConfigEnabledParam = {"type": "enabled", "budget_tokens": 1024}
    first = client.messages.create(model=CLAUDE, max_tokens=2048, thinking=thinking, tools=[TOOL],
                                   messages=[QUESTION])
    assert [b.type for b in first.content] == ["thinking", "tool_use"]
    assert first.stop_reason == "tool_use"
    history: list[MessageParam] = [
        QUESTION, {"role": "assistant", "content": first.content},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": TOOL_USE_ID, "content": "14°C"}]}]
    raw_sent: list[bytes] = []
    with anthropic.Anthropic(api_key=KEY, base_url=client.base_url, max_retries=0, http_client=(
            anthropic.DefaultHttpxClient(timeout=30, event_hooks={"request": [lambda r: raw_sent.append(r.read())]}))
                             ) as hooked:
        hooked.messages.create(model=CLAUDE, max_tokens=2048, thinking=thinking, tools=[TOOL], messages=history)
    second = anthropic_fake.message_requests()[1]
    assert second.body == raw_sent[0]
    assistant = second.json()["messages"][1]["content"]
    assert assistant[0] == {"type": "thinking", "thinking": "".join(THINKING), "signature": SIGNATURE}


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("repeats", [False, True], ids=["start-usage", "delta-repeats-usage"])
def test_cache_reads_and_writes_are_billed_at_their_own_prices(
        client: anthropic.Anthropic, anthropic_fake: FakeAnthropic, db: GatewayDB, stream: bool,
        repeats: bool) -> None:
    anthropic_fake.set("an", input_tokens=200, cache_read_input_tokens=1500, cache_creation_input_tokens=300,
                       output_tokens=77, delta_repeats_input=repeats)
    rid = new_rid("cache")
    used = db.key_used("thinking")
    system = [{"type": "text", "text": "A long cached prompt.", "cache_control": {"type": "ephemeral"}}]
    kwargs: Any = {"model": CLAUDE, "max_tokens": 500, "extra_headers": {"X-Request-Id": rid}, "system": system,
                   "messages": [QUESTION]}
    if stream:
        with client.messages.stream(**kwargs) as events:
            message = events.get_final_message()
    else:
        message = client.messages.create(**kwargs)
    usage = message.usage
    assert (usage.input_tokens, usage.cache_read_input_tokens, usage.cache_creation_input_tokens,
            usage.output_tokens) == (200, 1500, 300, 77)
    row = _record(db, rid, channel="an", stream=stream)
    assert (row["input_tokens"], row["cached_input_tokens"], row["cache_write_tokens"], row["output_tokens"]) == (
        2000, 1500, 300, 77)
    cost = expected_cost(CLAUDE_PRICE, plain=200, cached=1500, writes=300, output=77)
    # 200 × $3 + 1500 × $0.30 + 300 × $3.75 + 77 × $15 per 1M tokens
    assert cost == 600_000 + 450_000 + 1_125_000 + 1_155_000
    assert row["cost_nano"] == cost
    assert db.key_used("thinking") - used == cost


# --- to an OpenAI-format channel ---------------------------------------------------------------

@pytest.mark.parametrize(("budget", "effort"), [(1024, "low"), (2048, "medium"), (8192, "medium"), (16000, "high")])
def test_a_thinking_budget_becomes_reasoning_effort(client: anthropic.Anthropic, fake: FakeOpenAI, db: GatewayDB,
                                                    budget: int, effort: str) -> None:
    fake.set("oa", prompt_tokens=2000, cached_tokens=1500, completion_tokens=40)
    rid = new_rid("effort")
    message = client.messages.create(model="o4-mini", max_tokens=20000, messages=[QUESTION],
                                     thinking={"type": "enabled", "budget_tokens": budget},
                                     extra_headers={"X-Request-Id": rid})
    assert message.content[0].type == "text" and message.content[0].text == "Bonjour!"
    assert message.stop_reason == "end_turn"
    # OpenAI's prompt_tokens include the cached ones; Anthropic's input_tokens do not.
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens, message.usage.output_tokens) == (
        500, 1500, 40)
    [sent] = fake.chat_requests()
    body = sent.json()
    assert body["reasoning_effort"] == effort
    assert body["max_completion_tokens"] == 20000 and "max_tokens" not in body
    assert "thinking" not in body
    row = _record(db, rid, channel="oa", stream=False)
    assert (row["input_tokens"], row["cached_input_tokens"], row["output_tokens"]) == (2000, 1500, 40)
    assert row["cost_nano"] == expected_cost(O4_PRICE, plain=500, cached=1500, output=40)


def _openai_chunk(delta: dict[str, Any], finish: str | None = None, usage: Any = None) -> str:
    choices = [] if usage else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    return "data: " + orjson.dumps({"id": CHAT_ID, "object": "chat.completion.chunk", "created": CREATED,
                                    "model": "o4-mini", "choices": choices, "usage": usage}).decode() + "\n\n"


def test_reasoning_content_from_an_openai_channel_streams_as_unsigned_thinking(
        client: anthropic.Anthropic, fake: FakeOpenAI, db: GatewayDB) -> None:
    usage = {"prompt_tokens": 30, "completion_tokens": 25, "total_tokens": 55,
             "completion_tokens_details": {"reasoning_tokens": 18}}
    fake.set("oa", raw_events=(
        _openai_chunk({"role": "assistant", "content": None, "reasoning_content": ""}),
        _openai_chunk({"reasoning_content": "Greeting "}), _openai_chunk({"reasoning_content": "requested."}),
        _openai_chunk({"content": "Bon"}), _openai_chunk({"content": "jour"}), _openai_chunk({}, "stop"),
        _openai_chunk({}, usage=usage), "data: [DONE]\n\n"))
    rid = new_rid("rc")
    with client.messages.stream(model="o4-mini", max_tokens=4096, thinking={"type": "enabled", "budget_tokens": 1024},
                                messages=[QUESTION], extra_headers={"X-Request-Id": rid}) as stream:
        events = list(stream)
        message = stream.get_final_message()
    assert not [e for e in events if e.type == "content_block_delta" and e.delta.type == "signature_delta"]
    thinking, text = message.content
    assert thinking.type == "thinking" and thinking.thinking == "Greeting requested."
    assert thinking.signature == ""  # another dialect's thinking carries no Anthropic signature
    assert text.type == "text" and text.text == "Bonjour"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (30, 25)
    row = _record(db, rid, channel="oa", stream=True)
    assert (row["input_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (30, 25, 18)
    assert row["cost_nano"] == expected_cost(O4_PRICE, plain=30, output=25)


# --- to a Gemini channel -----------------------------------------------------------------------

def test_thinking_to_a_gemini_channel_uses_thinking_config_and_shows_thoughts(
        client: anthropic.Anthropic, gemini_fake: FakeGemini, db: GatewayDB) -> None:
    gemini_fake.set("gm", thoughts=("Hmm, ", "a greeting."), prompt_tokens=15, thoughts_tokens=20,
                    candidates_tokens=3)
    rid = new_rid("think-gm")
    with client.messages.stream(model="gemini-2.5-flash", max_tokens=8000, messages=[QUESTION],
                                thinking={"type": "enabled", "budget_tokens": 2048},
                                extra_headers={"X-Request-Id": rid}) as stream:
        message = stream.get_final_message()
    thinking, text = message.content
    assert thinking.type == "thinking" and thinking.thinking == "Hmm, a greeting." and thinking.signature == ""
    assert text.type == "text" and text.text == "Bonjour!"
    assert message.stop_reason == "end_turn"
    assert (message.usage.input_tokens, message.usage.output_tokens) == (15, 23)
    [sent] = gemini_fake.generate_requests()
    config = sent.json()["generationConfig"]
    assert config["thinkingConfig"] == {"thinkingBudget": 2048, "includeThoughts": True}
    assert config["maxOutputTokens"] == 8000
    row = _record(db, rid, channel="gm", stream=True)
    assert (row["input_tokens"], row["output_tokens"], row["reasoning_tokens"]) == (15, 23, 20)
    assert row["cost_nano"] == expected_cost(FLASH_PRICE, plain=15, output=23)
