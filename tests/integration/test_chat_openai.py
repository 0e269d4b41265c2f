"""The OpenAI chat surface end to end: the official ``openai`` SDK → a relaygate process → the fake
OpenAI upstream, with the usage record of every call read back from the gateway's database."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai.types.chat import (
    ChatCompletionContentPartParam,
    ChatCompletionFunctionToolParam,
    ChatCompletionMessageParam,
)

from tests.fakes.clients import (
    UPSTREAM_KEY,
    assert_no_secrets,
    assert_openai_error,
    async_sdk,
    new_rid,
    raw,
    sdk,
    token_cost,
)
from tests.fakes.openai_upstream import CHAT_ID, TOOL_CALL_ID, FakeOpenAI
from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import Gateway

FULL = "sk-chat-full-key-0001"
LIMITED = "sk-chat-limited-key-01"
UNLIMITED = "sk-chat-unlimited-key-1"
DASH = "sk-chat-dashboard-key-1"
CAPPED = "sk-chat-capped-quota-01"  # $0.005: a gpt-4o call's 16 output tokens fit, the default 1024 do not

GPT4O = ("2.5", "10")  # USD per 1M input / output tokens, as configured below
VISION = ("10", "30")
GIZMO_PER_CALL_NANO = 100_000_000
# The fake's default reply: "Bon" "jour" "!" with 11 prompt and 3 completion tokens.
REPLY = "Bonjour!"
PROMPT_TOKENS, COMPLETION_TOKENS = 11, 3

WEATHER_TOOL: ChatCompletionFunctionToolParam = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say bonjour"}]
WEATHER_QUESTION: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Weather in Lyon?"}]


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: type[Gateway], fake_upstream: FakeOpenAI,
            tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    config = {
        "channels": [{
            "name": "main", "type": "openai", "base_url": fake_upstream.channel_url("main"), "api_key": UPSTREAM_KEY,
            "models": ["gpt-4o", "gpt-4o-mini", "gpt-4-gizmo-*", "gpt-unpriced"],
            "model_map": {"gpt-4-vision-preview": "gpt-4o"},
        }],
        "prices": {
            "gpt-4o": {"input": 2.5, "output": 10, "cached_input": 1.25},
            "gpt-4o-mini": {"input": 0.15, "output": 0.6},
            "gpt-4-vision-preview": {"input": 10, "output": 30},
            "gpt-4-gizmo-*": {"per_call": 0.1},
            "gpt-4-gizmo-g-special": {"per_call": 0.25},
        },
        "keys": [
            {"name": "full", "key": FULL, "quota_usd": 10},
            {"name": "limited", "key": LIMITED, "models": ["gpt-4o-mini"]},
            {"name": "unlimited", "key": UNLIMITED},
            {"name": "dash", "key": DASH, "quota_usd": "12.5"},
            {"name": "capped", "key": CAPPED, "quota_usd": "0.005"},
        ],
    }
    return module_gateway_factory(Path(tmp_path_factory.mktemp("chat")), config).start()


@pytest.fixture(autouse=True)
def _fresh_fake(fake: FakeOpenAI) -> None:
    """Every test starts with the fake's default behaviour and no recorded requests."""


@pytest.fixture(scope="module")
def db(gateway: Gateway) -> GatewayDB:
    return GatewayDB(gateway.database)


@pytest.fixture
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    with sdk(gateway, FULL) as c:
        yield c


def _billed_gpt4o(db: GatewayDB, rid: str, *, stream: bool) -> dict[str, Any]:
    row = db.usage(rid)
    assert row["end_reason"] == "done"
    assert row["status"] == 200
    assert row["usage_source"] == "upstream"
    assert (row["input_tokens"], row["output_tokens"]) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert row["cost_nano"] == token_cost(PROMPT_TOKENS, COMPLETION_TOKENS, *GPT4O) == 57_500
    assert row["stream"] == int(stream)
    assert row["channel_name"] == "main"
    assert row["attempts"] == 1
    return row


# --- non-stream and stream, sync and async ------------------------------------------------------

def test_sync_non_stream_relays_the_upstream_answer_and_bills_its_usage(
        client: openai.OpenAI, fake: FakeOpenAI, db: GatewayDB) -> None:
    rid = new_rid()
    used_before = db.key_used("full")
    completion = client.chat.completions.create(model="gpt-4o", messages=HELLO,
                                                extra_headers={"X-Request-Id": rid})
    assert completion.id == CHAT_ID
    assert completion.choices[0].message.content == REPLY
    assert completion.choices[0].finish_reason == "stop"
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    [sent] = fake.chat_requests()
    assert sent.prefix == "main"
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert FULL not in str(sent.headers)
    _billed_gpt4o(db, rid, stream=False)
    assert db.key_used("full") - used_before == 57_500


def test_sync_stream_strips_the_usage_chunk_the_client_did_not_ask_for(
        client: openai.OpenAI, fake: FakeOpenAI, db: GatewayDB) -> None:
    rid = new_rid()
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True,
                                                 extra_headers={"X-Request-Id": rid}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == REPLY
    assert all(c.choices for c in chunks), "a usage-only chunk reached a client that did not ask for it"
    assert all(c.usage is None for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"
    [sent] = fake.chat_requests()
    assert sent.json()["stream_options"] == {"include_usage": True}  # the gateway asked for usage itself
    _billed_gpt4o(db, rid, stream=True)


async def test_async_stream_keeps_the_usage_chunk_when_asked(gateway: Gateway, fake: FakeOpenAI,
                                                             db: GatewayDB) -> None:
    rid = new_rid()
    async with async_sdk(gateway, FULL) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=HELLO, stream=True, stream_options={"include_usage": True},
            extra_headers={"X-Request-Id": rid})
        chunks = [chunk async for chunk in stream]
    usage_chunks = [c for c in chunks if not c.choices]
    assert len(usage_chunks) == 1 and usage_chunks[0] is chunks[-1]
    assert usage_chunks[0].usage is not None
    assert usage_chunks[0].usage.prompt_tokens == PROMPT_TOKENS
    assert usage_chunks[0].usage.completion_tokens == COMPLETION_TOKENS
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == REPLY
    _billed_gpt4o(db, rid, stream=True)


async def test_async_non_stream_and_concurrent_calls_each_get_one_record(gateway: Gateway, db: GatewayDB) -> None:
    rids = [new_rid("par") for _ in range(8)]
    async with async_sdk(gateway, UNLIMITED) as client:
        results = await asyncio.gather(*(
            client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=False,
                                           extra_headers={"X-Request-Id": rid}) for rid in rids))
    assert [r.choices[0].message.content for r in results] == [REPLY] * len(rids)
    for rid in rids:
        _billed_gpt4o(db, rid, stream=False)
    assert db.key_used("unlimited") == sum(r["cost_nano"] for r in db.usage_for_key("unlimited"))


def test_raw_sse_bytes_are_the_upstream_events_framed_as_openai_does(gateway: Gateway, fake: FakeOpenAI) -> None:
    body = {"model": "gpt-4o", "messages": HELLO, "stream": True}
    with raw(gateway, FULL) as http, http.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        assert response.headers["cache-control"] == "no-cache"
        data = response.read()
    frames = data.split(b"\n\n")
    assert frames[-1] == b"" and frames[-2] == b"data: [DONE]"
    events = [orjson.loads(f[len(b"data: "):]) for f in frames[:-2]]
    assert all(f.startswith(b"data: {") for f in frames[:-2])
    assert [e["choices"][0]["delta"] for e in events] == [
        {"role": "assistant", "content": "", "refusal": None}, {"content": "Bon"}, {"content": "jour"},
        {"content": "!"}, {}]
    assert events[-1]["choices"][0]["finish_reason"] == "stop"
    assert all(e["object"] == "chat.completion.chunk" and e["id"] == CHAT_ID for e in events)


# --- tools and vision ---------------------------------------------------------------------------

def test_tools_non_stream(client: openai.OpenAI, fake: FakeOpenAI, db: GatewayDB) -> None:
    rid = new_rid()
    completion = client.chat.completions.create(
        model="gpt-4o", messages=WEATHER_QUESTION,
        tools=[WEATHER_TOOL], tool_choice="auto", extra_headers={"X-Request-Id": rid})
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls is not None
    [call] = choice.message.tool_calls
    assert call.type == "function"
    assert call.id == TOOL_CALL_ID
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city":"Lyon"}'
    assert fake.chat_requests()[0].json()["tools"] == [WEATHER_TOOL]
    _billed_gpt4o(db, rid, stream=False)


def test_streamed_tool_call_arguments_are_reassembled_by_the_sdk(client: openai.OpenAI, db: GatewayDB) -> None:
    rid = new_rid()
    with client.chat.completions.stream(
            model="gpt-4o", messages=WEATHER_QUESTION,
            tools=[WEATHER_TOOL], extra_headers={"X-Request-Id": rid}) as stream:
        deltas = [e.arguments_delta for e in stream if e.type == "tool_calls.function.arguments.delta"]
        final = stream.get_final_completion()
    assert deltas == ["", '{"city":', '"Lyon"}']  # the pieces arrived one by one, as the upstream sent them
    [call] = final.choices[0].message.tool_calls or []
    assert (call.id, call.function.name, call.function.arguments) == (
        TOOL_CALL_ID, "get_weather", '{"city":"Lyon"}')
    assert final.choices[0].finish_reason == "tool_calls"
    _billed_gpt4o(db, rid, stream=True)


def test_tool_round_trip_messages_pass_through(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "Weather in Lyon?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_8xQ2", "type": "function", "function": {"name": "get_weather",
                                                                 "arguments": "{\"city\":\"Lyon\"}"}}]},
        {"role": "tool", "tool_call_id": "call_8xQ2", "content": "{\"temp_c\": 14}"},
    ]
    completion = client.chat.completions.create(model="gpt-4o", messages=messages, tools=[WEATHER_TOOL],
                                                tool_choice="none")
    assert completion.choices[0].message.content == REPLY
    assert fake.chat_requests()[0].json()["messages"] == messages


def test_vision_parts_reach_the_upstream_untouched(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    data_uri = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWj"
                "R9awAAAABJRU5ErkJggg==")
    content: list[ChatCompletionContentPartParam] = [
        {"type": "text", "text": "What is in these pictures?"},
        {"type": "image_url", "image_url": {"url": "https://img.example.org/cat.jpg", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": data_uri}},
    ]
    completion = client.chat.completions.create(model="gpt-4-vision-preview",
                                                messages=[{"role": "user", "content": content}])
    assert completion.choices[0].message.content == REPLY
    [sent] = fake.chat_requests()
    assert sent.json()["messages"][0]["content"] == content
    assert data_uri.encode() in sent.body  # byte for byte, not re-encoded


# --- the body reaches the upstream as the client sent it ----------------------------------------

RAW_BODY = (
    b'{"model":"gpt-4o","messages":[{"role":"user","content":"caf\\u00e9 \xe2\x98\x95","name":"ann"}],'
    b'"temperature":0,"top_p":0.0,"presence_penalty":-0.0,"frequency_penalty":1.50,"seed":0,"n":1,'
    b'"logit_bias":{"50256":-100},"max_completion_tokens":0,"stop":null,"user":"",'
    b'"metadata":{},"tools":[],"x_vendor_flag":true,"x_nested":{"a":[1,2.5e3,{"b":null}]},'
    b'"verbosity":"low","service_tier":"flex","store":false,"logprobs":false,"top_logprobs":0}'
)


def _same(a: Any, b: Any) -> bool:
    """Equal values of the same JSON types, recursively (so 0 and 0.0 differ)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def test_non_stream_body_reaches_the_upstream_byte_for_byte(gateway: Gateway, fake: FakeOpenAI) -> None:
    with raw(gateway, FULL) as http:
        response = http.post("/v1/chat/completions", content=RAW_BODY,
                             headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    [sent] = fake.chat_requests()
    assert sent.body == RAW_BODY


def test_stream_body_keeps_every_field_and_only_adds_include_usage(gateway: Gateway, fake: FakeOpenAI) -> None:
    body = RAW_BODY[:-1] + b',"stream":true,"stream_options":{"include_obfuscation":false}}'
    with raw(gateway, FULL) as http:
        response = http.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200, response.text
    assert response.text.endswith("data: [DONE]\n\n")
    [sent] = fake.chat_requests()
    received, original = sent.json(), orjson.loads(body)
    assert received.pop("stream_options") == {"include_obfuscation": False, "include_usage": True}
    original.pop("stream_options")
    assert list(received) == list(original)
    assert _same(received, original)


def test_stream_with_include_usage_already_set_is_not_re_encoded(gateway: Gateway, fake: FakeOpenAI) -> None:
    body = RAW_BODY[:-1] + b',"stream":true,"stream_options":{"include_usage":true}}'
    with raw(gateway, FULL) as http:
        response = http.post("/v1/chat/completions", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert fake.chat_requests()[0].body == body


def test_model_map_changes_only_the_model(client: openai.OpenAI, fake: FakeOpenAI, db: GatewayDB) -> None:
    rid = new_rid()
    completion = client.chat.completions.create(
        model="gpt-4-vision-preview", messages=HELLO, temperature=0, seed=7,
        extra_body={"x_custom": {"keep": [0, 0.0, None]}}, extra_headers={"X-Request-Id": rid})
    assert completion.choices[0].message.content == REPLY
    [sent] = fake.chat_requests()
    received = sent.json()
    assert received["model"] == "gpt-4o"
    assert _same({k: v for k, v in received.items() if k != "model"},
                 {"messages": HELLO, "seed": 7, "temperature": 0, "x_custom": {"keep": [0, 0.0, None]}})
    row = db.usage(rid)
    assert (row["model"], row["upstream_model"]) == ("gpt-4-vision-preview", "gpt-4o")
    # priced by the name the client asked for
    assert row["cost_nano"] == token_cost(PROMPT_TOKENS, COMPLETION_TOKENS, *VISION)


@pytest.mark.parametrize(("model", "per_call"), [("gpt-4-gizmo-g-2fkFE8rbu", GIZMO_PER_CALL_NANO),
                                                 ("gpt-4-gizmo-g-special", 250_000_000)])
def test_gizmo_models_route_by_pattern_and_bill_per_call(client: openai.OpenAI, fake: FakeOpenAI, db: GatewayDB,
                                                         model: str, per_call: int) -> None:
    rid = new_rid()
    used_before = db.key_used("full")
    for chunk in client.chat.completions.create(model=model, messages=HELLO, stream=True,
                                                extra_headers={"X-Request-Id": rid}):
        assert chunk.model == model
    [sent] = fake.chat_requests()
    assert sent.json()["model"] == model
    row = db.usage(rid)
    assert row["cost_nano"] == per_call  # the exact name's price beats the pattern's
    assert (row["input_tokens"], row["output_tokens"]) == (PROMPT_TOKENS, COMPLETION_TOKENS)
    assert db.key_used("full") - used_before == per_call


def test_cached_prompt_tokens_are_billed_at_the_cached_rate(client: openai.OpenAI, fake: FakeOpenAI,
                                                            db: GatewayDB) -> None:
    rid = new_rid()
    fake.set("main", prompt_tokens=2000, completion_tokens=100, cached_tokens=1500)
    client.chat.completions.create(model="gpt-4o", messages=HELLO,
                                   extra_headers={"X-Request-Id": rid})
    row = db.usage(rid)
    assert (row["input_tokens"], row["cached_input_tokens"], row["output_tokens"]) == (2000, 1500, 100)
    assert row["cost_nano"] == token_cost(2000, 100, *GPT4O, cached_tokens=1500, cached_usd_per_m="1.25")
    assert row["cost_nano"] == 500 * 2500 + 1500 * 1250 + 100 * 10_000


# --- request ids --------------------------------------------------------------------------------

def test_the_clients_request_id_is_echoed_beside_ours(client: openai.OpenAI, db: GatewayDB) -> None:
    rid = new_rid("echo")
    response = client.chat.completions.with_raw_response.create(
        model="gpt-4o", messages=HELLO, extra_headers={"X-Request-Id": rid})
    ours = response.headers["x-request-id"]
    assert re.fullmatch(r"req_[0-9a-f]{24}", ours)
    assert response.headers["x-client-request-id"] == rid
    assert response.parse().choices[0].message.content == REPLY
    record = db.usage(ours)
    assert (record["model"], record["client_request_id"]) == ("gpt-4o", rid)


def test_request_id_is_generated_when_absent_and_names_the_record(client: openai.OpenAI, db: GatewayDB) -> None:
    response = client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO)
    rid = response.headers["x-request-id"]
    assert re.fullmatch(r"req_[0-9a-f]{24}", rid)
    assert rid != "req_upstream_fake"  # the upstream's own id is not passed on as ours
    _billed_gpt4o(db, rid, stream=False)


def test_streams_and_errors_carry_the_request_id(gateway: Gateway) -> None:
    with raw(gateway, FULL) as http:
        stream = http.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO, "stream": True},
                           headers={"X-Request-Id": "rid-stream-1"})
        error = http.post("/v1/chat/completions", json={"model": "nope", "messages": HELLO},
                          headers={"X-Client-Request-Id": "rid-error-1"})
    assert stream.headers["x-client-request-id"] == "rid-stream-1"
    assert error.headers["x-client-request-id"] == "rid-error-1"
    assert stream.headers["x-request-id"].startswith("req_") and error.headers["x-request-id"].startswith("req_")


def test_a_reused_request_id_does_not_break_accounting(gateway: Gateway, db: GatewayDB) -> None:
    """Clients may resend their own X-Request-Id (retries): each call is still answered and recorded."""
    rid = new_rid("dup")
    with raw(gateway, UNLIMITED) as http:
        first = http.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO},
                          headers={"X-Request-Id": rid})
        second = http.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO},
                           headers={"X-Request-Id": rid})
    assert first.status_code == 200 and second.status_code == 200, second.text
    assert first.headers["x-client-request-id"] == second.headers["x-client-request-id"] == rid
    assert first.headers["x-request-id"] != second.headers["x-request-id"]
    first_row, second_row = db.usage_with_prefix(rid)
    assert [first_row["request_id"], second_row["request_id"]] == [first.headers["x-request-id"],
                                                                   second.headers["x-request-id"]]
    assert first_row["cost_nano"] == second_row["cost_nano"] == 57_500


def test_concurrent_calls_reusing_one_request_id_are_all_recorded(gateway: Gateway, db: GatewayDB) -> None:
    """A batch holding a duplicate id does not fail the other requests committed with it."""
    rid = new_rid("dupc")
    used_before = db.key_used("unlimited")

    async def run() -> list[int]:
        async with async_sdk(gateway, UNLIMITED) as client:
            async def one(i: int) -> int:
                headers = {"X-Request-Id": rid if i % 2 else new_rid("dupc-other")}
                response = await client.chat.completions.with_raw_response.create(
                    model="gpt-4o", messages=HELLO, extra_headers=headers)
                return response.http_response.status_code
            return list(await asyncio.gather(*(one(i) for i in range(12))))

    assert asyncio.run(run()) == [200] * 12
    assert len(db.usage_with_prefix(rid)) == 6
    assert db.key_used("unlimited") - used_before == 12 * 57_500


# --- models and the dashboard endpoints ---------------------------------------------------------

def test_models_list_only_what_the_key_may_use(gateway: Gateway) -> None:
    with sdk(gateway, FULL) as full, sdk(gateway, LIMITED) as limited:
        full_ids = sorted(m.id for m in full.models.list())
        limited_ids = [m.id for m in limited.models.list()]
    assert full_ids == ["gpt-4-vision-preview", "gpt-4o", "gpt-4o-mini", "gpt-unpriced"]
    assert limited_ids == ["gpt-4o-mini"]


def test_model_retrieve_and_the_404_shape(gateway: Gateway) -> None:
    with sdk(gateway, FULL) as client:
        model = client.models.retrieve("gpt-4o")
        assert (model.id, model.object) == ("gpt-4o", "model")
        with pytest.raises(openai.NotFoundError) as caught:
            client.models.retrieve("gpt-9-imaginary")
    assert caught.value.status_code == 404
    with raw(gateway, LIMITED) as http:
        hidden = http.get("/v1/models/gpt-4o")  # exists, but this key may not use it
        missing = http.get("/v1/models/gpt-9-imaginary")
    for response, name in ((hidden, "gpt-4o"), (missing, "gpt-9-imaginary")):
        assert response.status_code == 404
        assert response.json() == {"error": {"message": f"The model '{name}' does not exist",
                                             "type": "invalid_request_error", "param": "model",
                                             "code": "model_not_found"}}


def test_dashboard_subscription_shows_the_quota(gateway: Gateway) -> None:
    with raw(gateway, DASH) as dash, raw(gateway, UNLIMITED) as unlimited:
        limited = dash.get("/v1/dashboard/billing/subscription")
        open_ended = unlimited.get("/dashboard/billing/subscription")
    assert limited.status_code == 200
    body = limited.json()
    assert body["object"] == "billing_subscription"
    assert body["hard_limit_usd"] == body["soft_limit_usd"] == body["system_hard_limit_usd"] == 12.5
    assert open_ended.json()["hard_limit_usd"] == 100_000_000


def test_dashboard_usage_shows_the_spend_in_cents(gateway: Gateway, db: GatewayDB) -> None:
    with sdk(gateway, DASH) as client:
        for _ in range(3):
            client.chat.completions.create(model="gpt-4o", messages=HELLO)
        client.chat.completions.create(model="gpt-4-gizmo-g-1", messages=HELLO)
    spent = db.key_used("dash")
    assert spent == 3 * 57_500 + GIZMO_PER_CALL_NANO
    with raw(gateway, DASH) as http:
        usage = http.get("/v1/dashboard/billing/usage")
    assert usage.status_code == 200
    assert b'"total_usage":10.01725' in usage.content  # 0.1001725 USD, exact, in cents
    assert usage.json()["total_usage"] == pytest.approx(spent / 10_000_000)


def test_dashboard_endpoints_need_a_key(gateway: Gateway) -> None:
    with raw(gateway) as http:
        assert_openai_error(http.get("/v1/dashboard/billing/usage"), 401, "missing_api_key")
        assert_openai_error(http.get("/v1/models"), 401, "missing_api_key")


def test_the_upstream_key_and_address_never_reach_the_log(gateway: Gateway, fake: FakeOpenAI) -> None:
    with sdk(gateway, FULL) as client:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert_no_secrets(gateway.logs(), fake.url, f"127.0.0.1:{fake.port}")


def test_the_reservation_follows_the_clients_output_cap(gateway: Gateway) -> None:
    """``max_tokens`` and ``max_completion_tokens`` size the reservation; without either, the default 1024
    output tokens do not fit this key's quota, and a large cap does not either."""
    with raw(gateway, CAPPED) as http:
        def call(**cap: int) -> httpx.Response:
            return http.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO, **cap})

        assert call(max_tokens=16).status_code == 200
        assert call(max_completion_tokens=16, max_tokens=4096).status_code == 200
        for refused in (call(), call(max_tokens=4096), call(max_completion_tokens=4096, max_tokens=16)):
            assert_openai_error(refused, 429, "insufficient_quota")
