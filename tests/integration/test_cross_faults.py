"""Upstream faults while translating between dialects. A stream the upstream cuts, or interrupts with an
error event, ends with the client's own dialect's error event (Anthropic ``event: error``, OpenAI's
``data: {"error": ...}``, a Google error chunk — inside the JSON array for array streams), scrubbed of
upstream secrets; the usage record says why it ended and bills what was delivered. Failures before the
first byte fail over across dialects, or reach the client in its shape without a bill."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest
from google import genai
from google.genai import errors, types

from relaygate.billing.tokenizer import count_chat_prompt, count_text
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.clients import UPSTREAM_KEY, assert_no_secrets, new_rid, token_cost
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import Gateway

KEY = "sk-cross-faults-key-0001"
TIMEOUT_S = 1.0
CLAUDE = "claude-sonnet-4-20250514"
FLASH = "gemini-2.5-flash"
PRICES = {"gpt-4o": ("2.5", "10"), CLAUDE: ("3", "15"), FLASH: ("0.3", "2.5"), "mixed": ("1", "2")}
SECRET_URL = "http://10.9.8.7:4000/internal/v1/chat"
LEAKY = f"Backend at {SECRET_URL} failed (key {UPSTREAM_KEY}, host 10.9.8.7:4000)"
QUESTION = "Say bonjour"
ANTHROPIC_BODY = {"model": "gpt-4o", "max_tokens": 256, "stream": True,
                  "messages": [{"role": "user", "content": QUESTION}]}


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: type[Gateway], fake_upstream: FakeOpenAI, fake_anthropic_upstream: FakeAnthropic,
            fake_gemini_upstream: FakeGemini, tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    def channel(name: str, kind: str, url: str, models: list[str], priority: int = 0) -> dict[str, Any]:
        return {"name": name, "type": kind, "base_url": url, "api_key": UPSTREAM_KEY, "models": models,
                "priority": priority}

    oa, an, gm = fake_upstream, fake_anthropic_upstream, fake_gemini_upstream
    config = {
        "first_byte_timeout_s": TIMEOUT_S, "stream_idle_timeout_s": TIMEOUT_S, "connect_timeout_s": TIMEOUT_S,
        "max_attempts": 3, "circuit_failures": 1000,
        "channels": [
            channel("oa", "openai", oa.channel_url("oa"), ["gpt-4o"]),
            channel("an", "anthropic", an.channel_url("an"), [CLAUDE]),
            channel("gm", "gemini", gm.channel_url("gm"), [FLASH]),
            channel("mix-an", "anthropic", an.channel_url("mix-an"), ["mixed"], priority=10),
            channel("mix-gm", "gemini", gm.channel_url("mix-gm"), ["mixed"], priority=5),
            channel("mix-oa", "openai", oa.channel_url("mix-oa"), ["mixed"]),
        ],
        "prices": {model: {"input": float(i), "output": float(o)} for model, (i, o) in PRICES.items()},
        "keys": [{"name": "faults", "key": KEY, "quota_usd": 50}],
    }
    return module_gateway_factory(Path(tmp_path_factory.mktemp("cross-faults")), config).start()


@pytest.fixture(scope="module")
def db(gateway: Gateway) -> GatewayDB:
    return GatewayDB(gateway.database)


@pytest.fixture(autouse=True)
def _fresh_fakes(fake: FakeOpenAI, anthropic_fake: FakeAnthropic, gemini_fake: FakeGemini) -> None:
    """Every test starts with the fakes' default behaviour and no recorded requests."""


@pytest.fixture
def http(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=30) as c:
        yield c


def _clean(text: str, *fakes: Any) -> None:
    assert_no_secrets(text, SECRET_URL, "10.9.8.7", *(f"127.0.0.1:{f.port}" for f in fakes))


def _estimated(model: str, produced: str) -> tuple[int, int, int]:
    """The offline count of a one-question prompt and the delivered text, and its exact cost."""
    prompt = count_chat_prompt([{"role": "user", "content": QUESTION}], model)
    output = count_text(produced, model)
    return prompt, output, token_cost(prompt, output, *PRICES[model])


def _anthropic_frames(data: bytes) -> list[tuple[str, dict[str, Any]]]:
    frames = []
    for block in data.split(b"\n\n"):
        if not block:
            continue
        event, payload = block.split(b"\n", 1)
        assert event.startswith(b"event: ") and payload.startswith(b"data: ")
        frames.append((event[len(b"event: "):].decode(), orjson.loads(payload[len(b"data: "):])))
    return frames


def _sse_chunks(data: bytes) -> list[Any]:
    events = [e for e in data.split(b"\r\n\r\n") if e]  # Google's event separator, as the gateway writes it
    assert all(e.startswith(b"data: {") and b"\n\n" not in e for e in events), data
    return [orjson.loads(e[len(b"data: "):]) for e in events]


def _assert_cut_record(db: GatewayDB, rid: str, model: str, produced: str, reason: str = "stream_cut") -> None:
    row = db.wait_usage(rid)
    prompt, output, cost = _estimated(model, produced)
    assert (row["end_reason"], row["status"], row["usage_source"]) == (reason, 200, "estimated")
    assert (row["input_tokens"], row["output_tokens"]) == (prompt, output)
    assert output > 0
    assert row["cost_nano"] == cost


# --- the upstream cuts the stream ---------------------------------------------------------------

@pytest.mark.parametrize("mode", ["abort", "eof"])
def test_cut_openai_stream_reaches_an_anthropic_client_as_an_error_event(
        http: httpx.Client, fake: FakeOpenAI, db: GatewayDB, mode: str) -> None:
    fake.set("oa", cut_after=2, cut_mode=mode)
    rid = new_rid("cut-an")
    used = db.key_used("faults")
    response = http.post("/v1/messages", json=ANTHROPIC_BODY,
                         headers={"x-api-key": KEY, "anthropic-version": "2023-06-01", "X-Request-Id": rid})
    assert response.status_code == 200
    frames = _anthropic_frames(response.content)
    names = [name for name, _ in frames]
    assert names[:2] == ["message_start", "ping"]
    assert "message_stop" not in names and "message_delta" not in names
    text = "".join(p["delta"]["text"] for name, p in frames if name == "content_block_delta")
    assert text == "Bonjour"
    name, error = frames[-1]
    assert name == "error"
    assert error["type"] == "error"
    assert (error["error"]["type"], error["error"]["code"]) == ("api_error", "stream_cut")
    assert error["request_id"] == response.headers["x-request-id"]  # relaygate's id
    _clean(response.text, fake)
    _assert_cut_record(db, rid, "gpt-4o", "Bonjour")
    assert db.key_used("faults") - used == db.usage(rid)["cost_nano"]


def test_cut_stream_raises_in_the_anthropic_sdk(gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    fake.set("oa", cut_after=1)
    rid = new_rid("cut-sdk")
    received: list[str] = []
    with (anthropic.Anthropic(api_key=KEY, base_url=gateway.url, max_retries=0, timeout=30) as client,
          pytest.raises(anthropic.APIStatusError) as caught,
          client.messages.stream(model="gpt-4o", max_tokens=100, messages=[{"role": "user", "content": QUESTION}],
                                 extra_headers={"X-Request-Id": rid}) as stream):
        received.extend(stream.text_stream)
    assert received == ["Bon"]
    body: Any = caught.value.body
    assert body["error"]["code"] == "stream_cut"
    assert "ended the stream" in body["error"]["message"]
    _assert_cut_record(db, rid, "gpt-4o", "Bon")


def test_cut_anthropic_stream_reaches_an_openai_client_without_done(gateway: Gateway, anthropic_fake: FakeAnthropic,
                                                                    db: GatewayDB) -> None:
    anthropic_fake.set("an", cut_after=2)
    rid = new_rid("cut-oa")
    received: list[str] = []
    with (openai.OpenAI(api_key=KEY, base_url=gateway.url + "/v1", max_retries=0, timeout=30) as client,
          pytest.raises(openai.APIError) as caught):
        for chunk in client.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": QUESTION}],
                                                    stream=True, extra_headers={"X-Request-Id": rid}):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "Bonjour"
    assert caught.value.code == "stream_cut"
    _assert_cut_record(db, rid, CLAUDE, "Bonjour")


def test_a_cut_anthropic_passthrough_stream_is_billed_for_what_was_delivered(gateway: Gateway,
                                                                            anthropic_fake: FakeAnthropic,
                                                                            db: GatewayDB) -> None:
    """``message_start`` reports the input and 1 output token; cut before ``message_delta``, the record has
    that input and the offline count of the delivered text as its output (not 1 token)."""
    pieces = ("Bonjour tout le monde, ", "comment allez-vous aujourd'hui ", "?")
    anthropic_fake.set("an", cut_after=2, content=pieces)
    rid = new_rid("cut-an")
    body = {"model": CLAUDE, "max_tokens": 64, "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        response = http.post("/v1/messages", json=body, headers={"x-api-key": KEY, "X-Request-Id": rid,
                                                                  "anthropic-version": "2023-06-01"})
    texts = [p["delta"]["text"] for name, p in _anthropic_frames(response.content)
             if name == "content_block_delta" and p["delta"].get("type") == "text_delta"]
    assert "".join(texts) == "".join(pieces[:2])
    row = db.wait_usage(rid)
    output = count_text("".join(pieces[:2]), CLAUDE)
    assert (row["end_reason"], row["usage_source"]) == ("stream_cut", "upstream")
    assert (row["input_tokens"], row["output_tokens"]) == (11, output) and output > 2
    assert row["cost_nano"] == token_cost(11, output, *PRICES[CLAUDE])


@pytest.mark.parametrize("alt_sse", [True, False], ids=["sse", "json-array"])
def test_cut_stream_reaches_a_gemini_client_as_a_google_error(http: httpx.Client, fake: FakeOpenAI, db: GatewayDB,
                                                              alt_sse: bool) -> None:
    fake.set("oa", cut_after=2)
    rid = new_rid("cut-gm")
    response = http.post("/v1beta/models/gpt-4o:streamGenerateContent", params={"alt": "sse"} if alt_sse else {},
                         json={"contents": [{"role": "user", "parts": [{"text": QUESTION}]}]},
                         headers={"x-goog-api-key": KEY, "X-Request-Id": rid})
    assert response.status_code == 200
    # With alt=sse, Google's events; without, still one well-formed JSON array.
    chunks = _sse_chunks(response.content) if alt_sse else orjson.loads(response.content)
    *content, error = chunks
    assert "".join(c["candidates"][0]["content"]["parts"][0]["text"] for c in content) == "Bonjour"
    assert not any("finishReason" in c["candidates"][0] for c in content)
    assert set(error) == {"error"}
    assert (error["error"]["code"], error["error"]["status"]) == (502, "UNAVAILABLE")
    assert error["error"]["details"][0]["reason"] == "stream_cut"
    _assert_cut_record(db, rid, "gpt-4o", "Bonjour")


@pytest.mark.parametrize("alt_sse", [True, False], ids=["sse", "json-array"])
def test_a_cut_before_any_content_is_a_well_formed_error_and_free(http: httpx.Client, fake: FakeOpenAI,
                                                                  db: GatewayDB, alt_sse: bool) -> None:
    """The upstream sends only its opening chunk (nothing a Gemini client would see), then drops the
    connection: the client's body is still well formed — for the array form, ``[`` + the error + ``]``."""
    fake.set("oa", cut_after=0)
    rid = new_rid("cut-early")
    used = db.key_used("faults")
    response = http.post("/v1beta/models/gpt-4o:streamGenerateContent", params={"alt": "sse"} if alt_sse else {},
                         json={"contents": [{"role": "user", "parts": [{"text": QUESTION}]}]},
                         headers={"x-goog-api-key": KEY, "X-Request-Id": rid})
    assert response.status_code == 200
    [error] = _sse_chunks(response.content) if alt_sse else orjson.loads(response.content)
    assert error["error"]["details"][0]["reason"] == "stream_cut"
    row = db.wait_usage(rid)
    assert (row["end_reason"], row["cost_nano"], row["output_tokens"]) == ("stream_cut", 0, 0)
    assert db.key_used("faults") == used


# --- the upstream sends an error event mid-stream -----------------------------------------------

def test_openai_error_event_becomes_an_anthropic_error_event_scrubbed(http: httpx.Client, fake: FakeOpenAI,
                                                                       db: GatewayDB) -> None:
    fake.set("oa", error_event_after=1, error_message=LEAKY)
    rid = new_rid("err-an")
    response = http.post("/v1/messages", json=ANTHROPIC_BODY,
                         headers={"x-api-key": KEY, "anthropic-version": "2023-06-01", "X-Request-Id": rid})
    assert response.status_code == 200
    frames = _anthropic_frames(response.content)
    assert "message_stop" not in [name for name, _ in frames]
    name, error = frames[-1]
    assert name == "error" and error["type"] == "error"
    assert error["error"]["type"] == "api_error"
    assert error["error"]["message"].startswith("Backend at [redacted] failed")
    _clean(response.text, fake)
    assert UPSTREAM_KEY not in response.text
    _assert_cut_record(db, rid, "gpt-4o", "Bon", reason="upstream_error")


def test_anthropic_error_event_becomes_an_openai_error_scrubbed(gateway: Gateway, anthropic_fake: FakeAnthropic,
                                                                 db: GatewayDB) -> None:
    anthropic_fake.set("an", error_event_after=2, error_event_type="overloaded_error", error_event_message=LEAKY)
    rid = new_rid("err-oa")
    received: list[str] = []
    with (openai.OpenAI(api_key=KEY, base_url=gateway.url + "/v1", max_retries=0, timeout=30) as client,
          pytest.raises(openai.APIError) as caught):
        for chunk in client.chat.completions.create(model=CLAUDE, messages=[{"role": "user", "content": QUESTION}],
                                                    stream=True, extra_headers={"X-Request-Id": rid}):
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "Bonjour"
    assert caught.value.message.startswith("Backend at [redacted] failed")
    body: Any = caught.value.body
    assert body["type"] == "server_error"
    _clean(str(body) + caught.value.message, anthropic_fake)
    _assert_cut_record(db, rid, CLAUDE, "Bonjour", reason="upstream_error")


@pytest.mark.parametrize("alt_sse", [True, False], ids=["sse", "json-array"])
def test_anthropic_error_event_becomes_a_google_error_chunk(http: httpx.Client, anthropic_fake: FakeAnthropic,
                                                            db: GatewayDB, alt_sse: bool) -> None:
    anthropic_fake.set("an", error_event_after=1, error_event_type="overloaded_error", error_event_message=LEAKY)
    rid = new_rid("err-gm")
    response = http.post(f"/v1beta/models/{CLAUDE}:streamGenerateContent", params={"alt": "sse"} if alt_sse else {},
                         json={"contents": [{"role": "user", "parts": [{"text": QUESTION}]}]},
                         headers={"x-goog-api-key": KEY, "X-Request-Id": rid})
    assert response.status_code == 200
    # Without alt=sse, the error element closes the JSON array.
    chunks = _sse_chunks(response.content) if alt_sse else orjson.loads(response.content)
    *content, error = chunks
    assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in content] == ["Bon"]
    assert (error["error"]["code"], error["error"]["status"]) == (503, "UNAVAILABLE")
    assert error["error"]["message"].startswith("Backend at [redacted] failed")
    _clean(response.text, anthropic_fake)
    _assert_cut_record(db, rid, CLAUDE, "Bon", reason="upstream_error")


def test_a_gemini_error_chunk_raises_in_the_genai_sdk_from_an_openai_channel(gateway: Gateway, fake: FakeOpenAI,
                                                                              db: GatewayDB) -> None:
    fake.set("oa", error_event_after=2, error_message=LEAKY)
    rid = new_rid("err-sdk")
    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=gateway.url, timeout=30_000))
    received: list[str] = []
    with pytest.raises(errors.APIError) as caught:
        for chunk in client.models.generate_content_stream(
                model="gpt-4o", contents=QUESTION,
                config=types.GenerateContentConfig(http_options=types.HttpOptions(headers={"X-Request-Id": rid}))):
            received.append(chunk.text or "")
    assert "".join(received) == "Bonjour"
    assert (caught.value.code, caught.value.status) == (500, "INTERNAL")  # OpenAI's server_error
    assert caught.value.message is not None and caught.value.message.startswith("Backend at [redacted] failed")
    _assert_cut_record(db, rid, "gpt-4o", "Bonjour", reason="upstream_error")


def test_passthrough_anthropic_error_event_is_scrubbed(http: httpx.Client, anthropic_fake: FakeAnthropic,
                                                       db: GatewayDB) -> None:
    anthropic_fake.set("an", error_event_after=1, error_event_message=LEAKY)
    rid = new_rid("err-pt")
    body = {**ANTHROPIC_BODY, "model": CLAUDE}
    response = http.post("/v1/messages", json=body,
                         headers={"x-api-key": KEY, "anthropic-version": "2023-06-01", "X-Request-Id": rid})
    name, error = _anthropic_frames(response.content)[-1]
    assert name == "error"
    assert error == {"type": "error", "error": {"type": "overloaded_error",
                                                "message": error["error"]["message"]}}
    assert error["error"]["message"].startswith("Backend at [redacted] failed")
    _clean(response.text, anthropic_fake)
    row = db.wait_usage(rid)
    assert (row["end_reason"], row["usage_source"]) == ("upstream_error", "upstream")
    assert (row["input_tokens"], row["output_tokens"]) == (11, 1)  # message_start's count


# --- before the first byte ----------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_failover_crosses_dialects_and_retranslates(gateway: Gateway, fake: FakeOpenAI, anthropic_fake: FakeAnthropic,
                                                    gemini_fake: FakeGemini, db: GatewayDB, stream: bool) -> None:
    """An Anthropic client's call: the Claude channel is overloaded, the Gemini one rate-limited, the
    OpenAI one answers; each got the request in its own dialect."""
    anthropic_fake.set("mix-an", status=529)
    gemini_fake.set("mix-gm", status=429)
    rid = new_rid("fo")
    with anthropic.Anthropic(api_key=KEY, base_url=gateway.url, max_retries=0, timeout=30) as client:
        kwargs: Any = {"model": "mixed", "max_tokens": 100, "messages": [{"role": "user", "content": QUESTION}],
                       "extra_headers": {"X-Request-Id": rid}}
        if stream:
            with client.messages.stream(**kwargs) as events:
                message = events.get_final_message()
        else:
            message = client.messages.create(**kwargs)
    assert message.content[0].type == "text" and message.content[0].text == "Bonjour!"
    assert message.model == "mixed" and message.stop_reason == "end_turn"
    [to_anthropic] = anthropic_fake.requests_for("mix-an")
    [to_gemini] = gemini_fake.requests_for("mix-gm")
    [to_openai] = fake.requests_for("mix-oa")
    assert to_anthropic.json()["messages"] == [{"role": "user", "content": QUESTION}]
    assert to_gemini.json()["contents"] == [{"role": "user", "parts": [{"text": QUESTION}]}]
    assert to_openai.json()["messages"] == [{"role": "user", "content": QUESTION}]
    row = db.usage(rid)
    assert (row["end_reason"], row["attempts"], row["channel_name"]) == ("done", 3, "mix-oa")
    assert row["cost_nano"] == token_cost(11, 3, *PRICES["mixed"])


def test_all_channels_failing_is_an_error_in_the_clients_dialect(http: httpx.Client, fake: FakeOpenAI,
                                                                 anthropic_fake: FakeAnthropic, gemini_fake: FakeGemini,
                                                                 db: GatewayDB) -> None:
    anthropic_fake.set("mix-an", status=500)
    gemini_fake.set("mix-gm", status=503)
    fake.set("mix-oa", status=502)
    rid = new_rid("down")
    response = http.post("/v1beta/models/mixed:generateContent", json={"contents": [{"parts": [{"text": "hi"}]}]},
                         headers={"x-goog-api-key": KEY, "X-Request-Id": rid})
    assert response.status_code == 502
    error = response.json()["error"]
    assert (error["code"], error["status"]) == (502, "UNAVAILABLE")
    assert error["details"][0]["reason"] == "upstream_error"
    row = db.usage(rid)
    assert (row["end_reason"], row["attempts"], row["cost_nano"]) == ("upstream_error", 3, 0)


def test_an_upstream_refusal_is_relayed_in_the_clients_shape_scrubbed(http: httpx.Client,
                                                                      anthropic_fake: FakeAnthropic,
                                                                      gemini_fake: FakeGemini, db: GatewayDB) -> None:
    anthropic_fake.set("an", status=400, error_message=f"messages.0: bad block ({LEAKY})")
    gemini_fake.set("gm", status=400, error_message=f"Invalid value at 'contents' ({LEAKY})")
    to_gemini_client, to_openai_client = new_rid("rej-gm"), new_rid("rej-oa")
    google = http.post(f"/v1beta/models/{CLAUDE}:generateContent", json={"contents": [{"parts": [{"text": "hi"}]}]},
                       headers={"x-goog-api-key": KEY, "X-Request-Id": to_gemini_client})
    oai = http.post("/v1/chat/completions", json={"model": FLASH, "messages": [{"role": "user", "content": "hi"}]},
                    headers={"Authorization": f"Bearer {KEY}", "X-Request-Id": to_openai_client})
    assert google.status_code == oai.status_code == 400
    google_error = google.json()["error"]
    assert (google_error["code"], google_error["status"]) == (400, "INVALID_ARGUMENT")
    assert google_error["message"].startswith("messages.0: bad block (Backend at [redacted]")
    openai_error = oai.json()["error"]
    assert set(openai_error) == {"message", "type", "param", "code"}
    assert openai_error["message"].startswith("Invalid value at 'contents' (Backend at [redacted]")
    assert openai_error["type"] == "invalid_request_error"  # OpenAI's word, not Google's INVALID_ARGUMENT
    _clean(google.text + oai.text, anthropic_fake, gemini_fake)
    for rid in (to_gemini_client, to_openai_client):
        row = db.usage(rid)
        assert (row["end_reason"], row["status"], row["cost_nano"], row["attempts"]) == ("rejected", 400, 0, 1)


def test_an_upstream_slower_than_the_timeout_is_504_in_the_clients_shape(gateway: Gateway, gemini_fake: FakeGemini,
                                                                         db: GatewayDB) -> None:
    delay = TIMEOUT_S * 1.5
    gemini_fake.set("gm", delay_s=delay)
    rid = new_rid("slow")
    started = time.monotonic()
    with (anthropic.Anthropic(api_key=KEY, base_url=gateway.url, max_retries=0, timeout=30) as client,
          pytest.raises(anthropic.APIStatusError) as caught):
        client.messages.create(model=FLASH, max_tokens=10, messages=[{"role": "user", "content": "hi"}],
                               extra_headers={"X-Request-Id": rid})
    assert caught.value.status_code == 504
    body: Any = caught.value.body
    assert (body["error"]["type"], body["error"]["code"]) == ("timeout_error", "upstream_timeout")
    row = db.usage(rid)
    assert (row["end_reason"], row["cost_nano"]) == ("timeout", 0)
    # Let the fake's delayed handler finish before the module stops the fake (no task left pending).
    time.sleep(max(0.0, started + delay + 0.2 - time.monotonic()))


def test_a_client_leaving_a_translated_stream_is_recorded_as_client_gone(
        gateway: Gateway, anthropic_fake: FakeAnthropic, db: GatewayDB) -> None:
    anthropic_fake.set("an", content=tuple(f"w{i} " for i in range(20)), chunk_delay_s=0.05)
    rid = new_rid("gone")
    with httpx.Client(base_url=gateway.url, timeout=30) as http, http.stream(
            "POST", f"/v1beta/models/{CLAUDE}:streamGenerateContent",
            json={"contents": [{"role": "user", "parts": [{"text": QUESTION}]}]},
            headers={"x-goog-api-key": KEY, "X-Request-Id": rid}) as response:
        assert response.status_code == 200
        first = next(response.iter_raw())
        assert first.startswith(b"[")  # the array's first element, then the client hangs up
    row = db.wait_usage(rid)
    assert (row["end_reason"], row["status"], row["usage_source"]) == ("client_gone", 200, "estimated")
    assert row["input_tokens"] == count_chat_prompt([{"role": "user", "content": QUESTION}], CLAUDE)
    assert 0 < row["output_tokens"] < 20
    assert row["cost_nano"] == token_cost(row["input_tokens"], row["output_tokens"], *PRICES[CLAUDE])
