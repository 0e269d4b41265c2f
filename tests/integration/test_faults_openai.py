"""Upstream faults on the OpenAI chat surface. Each test checks what the client sees (official SDK or raw
HTTP) and what was billed (the request's usage record and the key's spend in the database)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionMessageParam

from relaygate.billing.tokenizer import count_chat_prompt, count_text
from tests.fakes.clients import (
    UPSTREAM_KEY,
    assert_no_secrets,
    assert_openai_error,
    new_rid,
    raw,
    sdk,
    token_cost,
)
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import Gateway, free_port

KEY = "sk-faults-main-key-0001"
TINY = "sk-faults-tiny-quota-01"  # room for three per-call requests
OVER = "sk-faults-over-quota-01"  # token-priced; the upstream uses more than the estimate
MIX = "sk-faults-mixed-key-001"
PRICE = ("2.5", "10")  # the "*" price below: USD per 1M input / output tokens
PER_CALL_NANO = 10_000_000
TINY_QUOTA_NANO = 35_000_000
OVER_QUOTA_NANO = 1_000_000
TIMEOUT_S = 1.0
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say bonjour"}]
REPLY = "Bonjour!"
DEAD = f"http://127.0.0.1:{free_port()}"  # nothing listens there: connections are refused
SECRET_URL = "http://10.1.2.3:9000/v1/chat/completions"


def _channel(fake: FakeOpenAI, name: str, models: list[str], priority: int = 0, base_url: str | None = None,
             ) -> dict[str, Any]:
    return {"name": name, "type": "openai", "base_url": base_url or fake.channel_url(name), "api_key": UPSTREAM_KEY,
            "models": models, "priority": priority}


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: type[Gateway], fake_upstream: FakeOpenAI,
            tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    f = fake_upstream
    config = {
        "first_byte_timeout_s": TIMEOUT_S, "stream_idle_timeout_s": TIMEOUT_S, "connect_timeout_s": TIMEOUT_S,
        "max_attempts": 3, "circuit_failures": 1000,
        "channels": [
            _channel(f, "plain", ["gpt-4o", "percall-model", "slow-model"]),
            _channel(f, "fo500-a", ["fo-500"], 10), _channel(f, "fo500-b", ["fo-500"]),
            _channel(f, "fo429-a", ["fo-429"], 10), _channel(f, "fo429-b", ["fo-429"]),
            _channel(f, "fo401-a", ["fo-401"], 10), _channel(f, "fo401-b", ["fo-401"]),
            _channel(f, "foref-a", ["fo-refused"], 10, DEAD), _channel(f, "foref-b", ["fo-refused"]),
            _channel(f, "down-a", ["all-down"], 10), _channel(f, "down-b", ["all-down"]),
            _channel(f, "refused-a", ["all-refused"], 10, DEAD), _channel(f, "refused-b", ["all-refused"], 0, DEAD),
            _channel(f, "busy-a", ["all-429"], 10), _channel(f, "busy-b", ["all-429"]),
            _channel(f, "badcred", ["all-401"]),
            _channel(f, "rej-a", ["rejected"], 10), _channel(f, "rej-b", ["rejected"]),
        ],
        "prices": {"*": {"input": 2.5, "output": 10}, "percall-*": {"per_call": 0.01}},
        "keys": [
            {"name": "main", "key": KEY, "quota_usd": 100},
            {"name": "tiny", "key": TINY, "quota_usd": "0.035"},
            {"name": "over", "key": OVER, "quota_usd": "0.001"},
            {"name": "mix", "key": MIX},
        ],
    }
    return module_gateway_factory(Path(tmp_path_factory.mktemp("faults")), config).start()


@pytest.fixture(autouse=True)
def _behaviours(fake: FakeOpenAI) -> None:
    fake.set("fo500-a", status=500)
    fake.set("fo429-a", status=429, error_message="Rate limit reached for gpt-4o on requests per min (RPM)")
    fake.set("fo401-a", status=401, error_message=f"Incorrect API key provided: {UPSTREAM_KEY}")
    fake.set("down-a", status=500)
    fake.set("down-b", status=503, error_message="The engine is currently overloaded")
    fake.set("busy-a", status=429)
    fake.set("busy-b", status=429)
    fake.set("badcred", status=401, error_message=f"Incorrect API key provided: {UPSTREAM_KEY}")
    fake.set("rej-a", status=400, error_code="invalid_value", error_param="temperature",
             error_message=f"Invalid value for 'temperature': 3 is above 2 (upstream {SECRET_URL}, "
                           f"key {UPSTREAM_KEY}, host 10.1.2.3:9000)")


@pytest.fixture(scope="module")
def db(gateway: Gateway) -> GatewayDB:
    return GatewayDB(gateway.database)


@pytest.fixture
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    with sdk(gateway, KEY) as c:
        yield c


def _clean(text: str, fake: FakeOpenAI) -> None:
    assert_no_secrets(text, fake.url, f"127.0.0.1:{fake.port}", DEAD, SECRET_URL, "10.1.2.3")


def _estimated_cost(messages: list[Any], produced: str) -> tuple[int, int, int]:
    prompt = count_chat_prompt(messages, "gpt-4o")
    output = count_text(produced, "gpt-4o")
    return prompt, output, token_cost(prompt, output, *PRICE)


# --- failover -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("model", "failing"), [
    ("fo-500", "fo500-a"), ("fo-429", "fo429-a"), ("fo-401", "fo401-a"), ("fo-refused", None)])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_failover_to_the_lower_tier(client: openai.OpenAI, fake: FakeOpenAI, db: GatewayDB, model: str,
                                    failing: str | None, stream: bool) -> None:
    rid = new_rid("fo")
    healthy = {"fo-500": "fo500-b", "fo-429": "fo429-b", "fo-401": "fo401-b", "fo-refused": "foref-b"}[model]
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model=model, messages=HELLO, stream=True, extra_headers={"X-Request-Id": rid}))
    else:
        text = client.chat.completions.create(model=model, messages=HELLO,
                                              extra_headers={"X-Request-Id": rid}).choices[0].message.content or ""
    assert text == REPLY
    if failing is not None:
        assert len(fake.requests_for(failing)) == 1
    assert len(fake.requests_for(healthy)) == 1
    row = db.usage(rid)
    assert (row["end_reason"], row["status"], row["attempts"]) == ("done", 200, 2)
    assert row["channel_name"] == healthy
    assert row["cost_nano"] == token_cost(11, 3, *PRICE)


def test_all_channels_failing_is_502_and_not_billed(gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    rid = new_rid("down")
    used = db.key_used("main")
    with raw(gateway, KEY) as http:
        response = http.post("/v1/chat/completions", json={"model": "all-down", "messages": HELLO},
                             headers={"X-Request-Id": rid})
    error = assert_openai_error(response, 502, "upstream_error")
    assert error["type"] == "server_error"
    assert response.headers["x-request-id"] in error["message"]  # relaygate's id, not the client's
    assert "overloaded" not in error["message"]  # the upstream's words are not relayed for a 5xx
    _clean(response.text, fake)
    assert [len(fake.requests_for(c)) for c in ("down-a", "down-b")] == [1, 1]
    row = db.usage(rid)
    assert (row["end_reason"], row["status"], row["attempts"], row["cost_nano"]) == ("upstream_error", 502, 2, 0)
    assert row["error_code"] == "upstream_error"
    assert db.key_used("main") == used


def test_all_channels_unreachable_is_502_and_not_billed(client: openai.OpenAI, fake: FakeOpenAI,
                                                        db: GatewayDB) -> None:
    rid = new_rid("refused")
    with pytest.raises(openai.InternalServerError) as caught:
        client.chat.completions.create(model="all-refused", messages=HELLO,
                                       extra_headers={"X-Request-Id": rid})
    assert caught.value.status_code == 502
    assert caught.value.code == "upstream_error"
    _clean(str(caught.value.body), fake)
    row = db.usage(rid)
    assert (row["end_reason"], row["attempts"], row["cost_nano"]) == ("upstream_error", 2, 0)


def test_all_channels_rate_limited_is_429_and_not_billed(gateway: Gateway, db: GatewayDB) -> None:
    rid = new_rid("busy")
    with raw(gateway, KEY) as http:
        response = http.post("/v1/chat/completions", json={"model": "all-429", "messages": HELLO, "stream": True},
                             headers={"X-Request-Id": rid})
    error = assert_openai_error(response, 429, "upstream_rate_limited")
    assert error["type"] == "requests"
    row = db.usage(rid)
    assert (row["status"], row["attempts"], row["cost_nano"]) == (429, 2, 0)


def test_upstream_refusing_the_gateway_credentials_is_502(gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    rid = new_rid("cred")
    with raw(gateway, KEY) as http:
        response = http.post("/v1/chat/completions", json={"model": "all-401", "messages": HELLO},
                             headers={"X-Request-Id": rid})
    assert_openai_error(response, 502, "upstream_auth_failed")
    _clean(response.text, fake)
    assert db.usage(rid)["cost_nano"] == 0


# --- timeouts -----------------------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_upstream_slower_than_the_timeout_is_504(gateway: Gateway, fake: FakeOpenAI, db: GatewayDB,
                                                    stream: bool) -> None:
    fake.set("plain", delay_s=TIMEOUT_S + 1.5)
    rid = new_rid("slow")
    with raw(gateway, KEY) as http:
        response = http.post("/v1/chat/completions", json={"model": "slow-model", "messages": HELLO, "stream": stream},
                             headers={"X-Request-Id": rid})
    error = assert_openai_error(response, 504, "upstream_timeout")
    assert error["type"] == "server_error"
    row = db.usage(rid)
    assert (row["end_reason"], row["status"], row["cost_nano"]) == ("timeout", 504, 0)


def test_a_stream_that_goes_quiet_ends_with_a_timeout_event(client: openai.OpenAI, fake: FakeOpenAI,
                                                            db: GatewayDB) -> None:
    fake.set("plain", chunk_delay_s=TIMEOUT_S + 1.5)
    rid = new_rid("quiet")
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:  # the SDK raises on the in-stream error event
        for chunk in client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True,
                                                    extra_headers={"X-Request-Id": rid}):
            received.append(chunk.choices[0].delta.content or "")
    assert "stopped sending" in caught.value.message
    assert received == [""]  # only the opening chunk came before the upstream went quiet
    row = db.usage(rid)
    prompt, output, cost = _estimated_cost(HELLO, "")
    assert (row["end_reason"], row["usage_source"]) == ("timeout", "estimated")
    assert (row["input_tokens"], row["output_tokens"], row["cost_nano"]) == (prompt, output, cost)


# --- broken streams -----------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["abort", "eof"])
def test_a_cut_stream_raises_in_the_sdk_and_bills_what_was_delivered(client: openai.OpenAI, fake: FakeOpenAI,
                                                                     db: GatewayDB, mode: str) -> None:
    fake.set("plain", cut_after=2, cut_mode=mode)
    rid = new_rid("cut")
    used = db.key_used("main")
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True,
                                                    extra_headers={"X-Request-Id": rid}):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "Bonjour"
    assert "ended the stream" in caught.value.message
    assert caught.value.code == "stream_cut"
    row = db.usage(rid)
    prompt, output, cost = _estimated_cost(HELLO, "Bonjour")
    assert (row["end_reason"], row["usage_source"], row["status"]) == ("stream_cut", "estimated", 200)
    assert (row["input_tokens"], row["output_tokens"]) == (prompt, output)
    assert output > 0
    assert row["cost_nano"] == cost
    assert db.key_used("main") - used == cost


def test_a_cut_stream_raw_bytes_end_with_an_error_event_and_no_done(gateway: Gateway, fake: FakeOpenAI) -> None:
    fake.set("plain", cut_after=1)
    with raw(gateway, KEY) as http:
        response = http.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO, "stream": True})
    assert response.status_code == 200
    frames = response.content.split(b"\n\n")
    assert b"[DONE]" not in response.content
    last = orjson.loads(frames[-2].removeprefix(b"data: "))
    assert last["error"]["code"] == "stream_cut"
    assert last["error"]["type"] == "server_error"
    _clean(response.text, fake)


def test_an_in_stream_upstream_error_is_relayed_scrubbed_and_billed_as_delivered(
        client: openai.OpenAI, fake: FakeOpenAI, db: GatewayDB) -> None:
    fake.set("plain", error_event_after=1,
             error_message=f"The server had an error processing your request (at {SECRET_URL}, key {UPSTREAM_KEY})")
    rid = new_rid("inerr")
    received: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True,
                                                    extra_headers={"X-Request-Id": rid}):
            received.append(chunk.choices[0].delta.content or "")
    assert received == ["", "Bon"]
    assert "The server had an error processing your request" in caught.value.message
    _clean(caught.value.message, fake)
    _clean(str(caught.value.body), fake)
    row = db.wait_usage(rid)  # the upstream's error event is forwarded as it comes, before the record
    prompt, output, cost = _estimated_cost(HELLO, "Bon")
    assert (row["end_reason"], row["usage_source"]) == ("upstream_error", "estimated")
    assert (row["input_tokens"], row["output_tokens"], row["cost_nano"]) == (prompt, output, cost)


def test_a_malformed_chunk_is_passed_on_and_the_stream_completes(gateway: Gateway, fake: FakeOpenAI,
                                                                 db: GatewayDB) -> None:
    fake.set("plain", malformed_after=1)
    rid = new_rid("malformed")
    with raw(gateway, KEY) as http:
        response = http.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO, "stream": True},
                             headers={"X-Request-Id": rid})
    assert response.status_code == 200
    assert b'data: {"id": "chatcmpl-broken", "choices": [\n\n' in response.content
    assert response.content.endswith(b"data: [DONE]\n\n")
    row = db.usage(rid)
    assert (row["end_reason"], row["usage_source"], row["cost_nano"]) == ("done", "upstream", token_cost(11, 3, *PRICE))


def test_keep_alive_comments_pass_and_the_sdk_ignores_them(client: openai.OpenAI, fake: FakeOpenAI) -> None:
    fake.set("plain", keepalive_comment=True)
    chunks = list(client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == REPLY


def test_an_upstream_that_answers_a_stream_with_nothing_fails_over_or_502(gateway: Gateway, fake: FakeOpenAI,
                                                                          db: GatewayDB) -> None:
    fake.set("plain", raw_events=())
    rid = new_rid("empty")
    with raw(gateway, KEY) as http:
        response = http.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO, "stream": True},
                             headers={"X-Request-Id": rid})
    assert_openai_error(response, 502, "upstream_error")
    assert db.usage(rid)["cost_nano"] == 0


# --- the client leaves --------------------------------------------------------------------------

def test_a_client_leaving_mid_stream_is_recorded_as_client_gone(gateway: Gateway, fake: FakeOpenAI,
                                                                db: GatewayDB) -> None:
    pieces = tuple(f" w{i}" for i in range(60))
    fake.set("plain", content=pieces, chunk_delay_s=0.05)
    rid = new_rid("gone")
    events = 0
    with httpx.Client(base_url=gateway.url, timeout=10) as http, http.stream(
            "POST", "/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO, "stream": True},
            headers={"Authorization": f"Bearer {KEY}", "X-Request-Id": rid}) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data: "):
                events += 1
            if events >= 3:
                break  # leaving the block closes the connection with most of the answer unsent
    row = db.wait_usage(rid)
    assert row["end_reason"] == "client_gone"
    assert row["usage_source"] == "estimated"  # the usage chunk never came
    assert row["status"] == 200
    assert 0 < row["output_tokens"] < count_text("".join(pieces), "gpt-4o")
    assert row["cost_nano"] == token_cost(row["input_tokens"], row["output_tokens"], *PRICE) > 0
    assert row["input_tokens"] == count_chat_prompt(HELLO, "gpt-4o")


# --- refusals by the upstream -------------------------------------------------------------------

def test_an_upstream_400_is_relayed_scrubbed_without_failover_and_not_billed(
        client: openai.OpenAI, fake: FakeOpenAI, db: GatewayDB) -> None:
    rid = new_rid("rej")
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(model="rejected", messages=HELLO, temperature=3,
                                       extra_headers={"X-Request-Id": rid})
    error = caught.value
    assert error.status_code == 400
    assert error.code == "invalid_value"
    assert error.param == "temperature"
    assert error.type == "invalid_request_error"
    assert isinstance(error.body, dict)
    assert error.body["message"].startswith("Invalid value for 'temperature': 3 is above 2")
    assert "[redacted]" in error.message
    _clean(error.message, fake)
    _clean(error.response.text, fake)
    assert len(fake.requests_for("rej-a")) == 1
    assert fake.requests_for("rej-b") == []  # the client's mistake is not retried elsewhere
    row = db.usage(rid)
    assert (row["end_reason"], row["status"], row["attempts"], row["cost_nano"]) == ("rejected", 400, 1, 0)


# --- no usage from the upstream -----------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_upstream_without_usage_is_billed_by_the_tokenizer(client: openai.OpenAI, fake: FakeOpenAI,
                                                              db: GatewayDB, stream: bool) -> None:
    fake.set("plain", omit_usage=True, content=("The quick brown fox", " jumps over the lazy dog."))
    rid = new_rid("nousage")
    messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": "You are terse."},
                           {"role": "user", "content": "Tell me about the fox.", "name": "ann"}]
    if stream:
        text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
            model="gpt-4o", messages=messages, stream=True, extra_headers={"X-Request-Id": rid}))
    else:
        text = client.chat.completions.create(model="gpt-4o", messages=messages,
                                              extra_headers={"X-Request-Id": rid}).choices[0].message.content or ""
    assert text == "The quick brown fox jumps over the lazy dog."
    row = db.usage(rid)
    prompt, output, cost = _estimated_cost(messages, text)
    assert (row["end_reason"], row["usage_source"]) == ("done", "estimated")
    assert row["input_tokens"] == prompt > 0
    assert row["output_tokens"] == output > 0
    assert row["cost_nano"] == cost


# --- quotas -------------------------------------------------------------------------------------

async def _post_many(gateway: Gateway, key: str, bodies: list[bytes]) -> list[httpx.Response]:
    async with httpx.AsyncClient(base_url=gateway.url, timeout=30,
                                 headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
                                 limits=httpx.Limits(max_connections=len(bodies))) as http:
        return list(await asyncio.gather(*(http.post("/v1/chat/completions", content=b) for b in bodies)))


def test_parallel_calls_never_overdraw_a_per_call_quota(gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    fake.set("plain", delay_s=0.3)  # keep the admitted calls in flight together
    body = orjson.dumps({"model": "percall-model", "messages": HELLO})
    responses = asyncio.run(_post_many(gateway, TINY, [body] * 12))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 3 + [429] * 9  # 0.035 USD buys three calls at 0.01
    for response in responses:
        if response.status_code == 429:
            error = assert_openai_error(response, 429, "insufficient_quota")
            assert error["type"] == "insufficient_quota"
    assert db.key_used("tiny") == 3 * PER_CALL_NANO <= TINY_QUOTA_NANO
    rows = db.usage_for_key("tiny")
    assert len(rows) == 3 and all(r["cost_nano"] == PER_CALL_NANO for r in rows)
    assert len(fake.chat_requests()) == 3
    with raw(gateway, TINY) as http:  # later calls keep being refused
        assert_openai_error(http.post("/v1/chat/completions", content=body,
                                      headers={"Content-Type": "application/json"}), 429, "insufficient_quota")


def test_parallel_calls_overdraw_a_token_quota_only_within_the_documented_bound(
        gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    """billing/ledger.py: parallel calls cannot overdraw a key by more than the amount by which their
    actual cost exceeds their estimate. Here every call costs far more than its estimate."""
    fake.set("plain", delay_s=0.3, prompt_tokens=1000, completion_tokens=10)
    body = orjson.dumps({"model": "gpt-4o", "messages": HELLO, "max_tokens": 10})
    estimate = token_cost(len(body) // 4, 10, *PRICE)
    actual = token_cost(1000, 10, *PRICE)
    assert actual > estimate
    responses = asyncio.run(_post_many(gateway, OVER, [body] * 12))
    admitted = sum(r.status_code == 200 for r in responses)
    # at most as many as their estimates fit (all of them when the calls overlap, as they should here)
    assert 1 <= admitted <= OVER_QUOTA_NANO // estimate
    assert all(r.status_code in (200, 429) for r in responses)
    used = db.key_used("over")
    assert used == admitted * actual
    assert used <= OVER_QUOTA_NANO + admitted * (actual - estimate)
    with raw(gateway, OVER) as http:
        assert_openai_error(http.post("/v1/chat/completions", content=body,
                                      headers={"Content-Type": "application/json"}), 429, "insufficient_quota")


# --- every request recorded exactly once --------------------------------------------------------

def test_mixed_concurrent_requests_are_each_recorded_exactly_once(gateway: Gateway, fake: FakeOpenAI,
                                                                  db: GatewayDB) -> None:
    fake.set("plain", chunk_delay_s=0.01)
    fake.set("foref-b", chunk_delay_s=0.01)
    kinds = [("gpt-4o", False), ("gpt-4o", True), ("fo-500", True), ("fo-refused", False), ("all-down", False),
             ("rejected", True)]
    plan = [(new_rid("mix"), model, stream) for _ in range(4) for model, stream in kinds]
    bodies = [orjson.dumps({"model": m, "messages": HELLO, "stream": s}) for _, m, s in plan]
    used = db.key_used("mix")

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30,
                                     headers={"Authorization": f"Bearer {MIX}"}) as http:
            return list(await asyncio.gather(*(
                http.post("/v1/chat/completions", content=b,
                          headers={"X-Request-Id": rid, "Content-Type": "application/json"})
                for (rid, _, _), b in zip(plan, bodies, strict=True))))

    responses = asyncio.run(run())
    expected_status = {"gpt-4o": 200, "fo-500": 200, "fo-refused": 200, "all-down": 502, "rejected": 400}
    assert [r.status_code for r in responses] == [expected_status[m] for _, m, _ in plan]
    rows = [db.usage(rid) for rid, _, _ in plan]  # exactly one each
    assert sum(r["cost_nano"] for r in rows) == db.key_used("mix") - used
    assert all(r["cost_nano"] == 0 for r, (_, m, _) in zip(rows, plan, strict=True) if m in ("all-down", "rejected"))


# --- secrets ------------------------------------------------------------------------------------

def test_upstream_secrets_never_reach_a_response_or_the_log(gateway: Gateway, fake: FakeOpenAI) -> None:
    fake.set("plain", error_event_after=0, error_message=f"failed at {SECRET_URL} with {UPSTREAM_KEY}")
    bodies = [
        {"model": "rejected", "messages": HELLO}, {"model": "all-down", "messages": HELLO},
        {"model": "all-refused", "messages": HELLO}, {"model": "all-401", "messages": HELLO},
        {"model": "fo-401", "messages": HELLO, "stream": True}, {"model": "gpt-4o", "messages": HELLO, "stream": True},
    ]
    with raw(gateway, KEY) as http:
        for body in bodies:
            response = http.post("/v1/chat/completions", json=body)
            _clean(response.text, fake)
            _clean(str(response.headers), fake)
    time.sleep(0.2)  # the access log is flushed every 50 ms
    log = gateway.logs()
    assert '"end":"rejected"' in log  # the log was written
    _clean(log, fake)
