"""The Gemini surface itself, with the official ``google-genai`` SDK and raw HTTP: the JSON-array stream
(no ``alt=sse``), ``?key=`` auth, camelCase and snake_case bodies, ``/v1`` and ``/v1beta``,
``countTokens``, the Gemini-shaped model list (also on the shared ``GET /v1/models`` when the caller
sends ``x-goog-api-key``), and bad input answered in Google's error shape
(``{"error": {"code", "message", "status"}}``) without reaching an upstream or billing anything."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from google import genai
from google.genai import errors, types

from relaygate.billing.tokenizer import count_chat_prompt
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.clients import UPSTREAM_KEY, new_rid, token_cost
from tests.fakes.gemini_upstream import RESPONSE_ID, FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import Gateway

KEY = "sk-gemini-surface-key-01"
LIMITED = "sk-gemini-limited-key-01"  # may use gemini-2.5-flash only
TINY = "sk-gemini-tiny-quota-001"
CAPPED = "sk-gemini-capped-quota-1"  # $0.001: 16 output tokens of Flash fit, the default 1024 do not
FLASH = "gemini-2.5-flash"
PRICES = {FLASH: ("0.3", "2.5"), "gpt-4o": ("2.5", "10"), "claude-sonnet-4-20250514": ("3", "15")}
CHANNELS = {FLASH: "gm", "gpt-4o": "oa", "claude-sonnet-4-20250514": "an"}
HELLO = {"contents": [{"role": "user", "parts": [{"text": "Say bonjour"}]}]}


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: type[Gateway], fake_upstream: FakeOpenAI, fake_anthropic_upstream: FakeAnthropic,
            fake_gemini_upstream: FakeGemini, tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    config = {
        "channels": [
            {"name": "gm", "type": "gemini", "base_url": fake_gemini_upstream.channel_url("gm"),
             "api_key": UPSTREAM_KEY, "models": [FLASH, "gemini-unpriced"]},
            {"name": "oa", "type": "openai", "base_url": fake_upstream.channel_url("oa"), "api_key": UPSTREAM_KEY,
             "models": ["gpt-4o"]},
            {"name": "an", "type": "anthropic", "base_url": fake_anthropic_upstream.channel_url("an"),
             "api_key": UPSTREAM_KEY, "models": ["claude-sonnet-4-20250514"]},
        ],
        "prices": {model: {"input": float(i), "output": float(o)} for model, (i, o) in PRICES.items()},
        "keys": [{"name": "main", "key": KEY, "quota_usd": 10},
                 {"name": "limited", "key": LIMITED, "models": [FLASH]},
                 {"name": "tiny", "key": TINY, "quota_usd": "0.000001"},
                 {"name": "capped", "key": CAPPED, "quota_usd": "0.001"}],
    }
    return module_gateway_factory(Path(tmp_path_factory.mktemp("gemini-surface")), config).start()


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


def _sdk(gateway: Gateway, key: str = KEY, version: str | None = None) -> genai.Client:
    return genai.Client(api_key=key, http_options=types.HttpOptions(base_url=gateway.url, api_version=version,
                                                                    timeout=30_000))


def _upstream_count(fake: FakeOpenAI, anthropic_fake: FakeAnthropic, gemini_fake: FakeGemini) -> int:
    return len(fake.requests) + len(anthropic_fake.requests) + len(gemini_fake.requests)


def _billed(db: GatewayDB, rid: str, model: str, *, stream: bool, key: str = "main") -> None:
    row = db.usage(rid)
    assert (row["end_reason"], row["status"], row["usage_source"]) == ("done", 200, "upstream")
    assert (row["surface"], row["model"], row["stream"]) == ("gemini.generate", model, int(stream))
    assert row["key_name"] == key
    assert row["channel_name"] == CHANNELS[model]
    assert (row["input_tokens"], row["output_tokens"]) == (11, 3)
    assert row["cost_nano"] == token_cost(11, 3, *PRICES[model])


def assert_google_error(response: httpx.Response, status: int, google_status: str, reason: str) -> dict[str, Any]:
    """An error in Google's shape (spec/gemini.md §8); relaygate's stable code is the ErrorInfo reason."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert (error["code"], error["status"]) == (status, google_status), error
    assert isinstance(error["message"], str) and error["message"]
    [info] = error["details"]
    assert info["@type"] == "type.googleapis.com/google.rpc.ErrorInfo"
    assert info["reason"] == reason, info
    assert info["metadata"]["request_id"] == response.headers["x-request-id"]
    return dict(error)


# --- the JSON-array stream ----------------------------------------------------------------------

@pytest.mark.parametrize("model", [FLASH, "gpt-4o", "claude-sonnet-4-20250514"])
def test_stream_without_alt_sse_is_one_json_array(http: httpx.Client, fake: FakeOpenAI, anthropic_fake: FakeAnthropic,
                                                  gemini_fake: FakeGemini, db: GatewayDB, model: str) -> None:
    rid = new_rid("array")
    with http.stream("POST", f"/v1beta/models/{model}:streamGenerateContent", json=HELLO,
                     headers={"x-goog-api-key": KEY, "X-Request-Id": rid}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("application/json")
        data = response.read()
    chunks = orjson.loads(data)  # the whole body is one JSON array
    assert isinstance(chunks, list) and data.startswith(b"[") and data.endswith(b"]")
    texts = [p["text"] for c in chunks for p in c["candidates"][0]["content"]["parts"] if p.get("text")]
    assert "".join(texts) == "Bonjour!"
    assert [c["candidates"][0].get("finishReason") for c in chunks][-1] == "STOP"
    assert all("finishReason" not in c["candidates"][0] for c in chunks[:-1])
    assert chunks[-1]["usageMetadata"] == {"promptTokenCount": 11, "candidatesTokenCount": 3, "totalTokenCount": 14}
    assert all(c["modelVersion"] == model for c in chunks)
    if model == FLASH:
        [sent] = gemini_fake.generate_requests()
        assert sent.path == f"/gm/v1beta/models/{FLASH}:streamGenerateContent"
        assert sent.query == {"alt": "sse"}  # upstreams are always asked for SSE
        assert sent.body == orjson.dumps(HELLO)
    _billed(db, rid, model, stream=True)


def test_sse_stream_from_a_gemini_channel_passes_the_upstream_events(http: httpx.Client, gemini_fake: FakeGemini,
                                                                     db: GatewayDB) -> None:
    gemini_fake.set("gm", crlf=True)
    rid = new_rid("sse")
    response = http.post(f"/v1beta/models/{FLASH}:streamGenerateContent?alt=sse", json=HELLO,
                         headers={"x-goog-api-key": KEY, "X-Request-Id": rid})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert b"\r" not in response.content  # line ends are normalised (dialects/sse.py); the events are the upstream's
    events = [e for e in response.content.split(b"\n\n") if e]
    assert all(e.startswith(b"data: {") for e in events)
    chunks = [orjson.loads(e[len(b"data: "):]) for e in events]
    assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks] == ["Bon", "jour", "!"]
    assert chunks[-1]["responseId"] == RESPONSE_ID  # the upstream's own chunks, not re-made ones
    _billed(db, rid, FLASH, stream=True)


# --- keys, paths, spellings ---------------------------------------------------------------------

@pytest.mark.parametrize("version", ["v1", "v1beta"])
def test_key_in_the_query_and_both_api_versions(http: httpx.Client, gemini_fake: FakeGemini, db: GatewayDB,
                                                version: str) -> None:
    rid = new_rid(f"query-{version}")
    response = http.post(f"/{version}/models/{FLASH}:generateContent", params={"key": KEY}, json=HELLO,
                         headers={"X-Request-Id": rid})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["candidates"][0]["content"]["parts"] == [{"text": "Bonjour!"}]
    assert body["candidates"][0]["finishReason"] == "STOP"
    [sent] = gemini_fake.generate_requests()
    assert sent.path == f"/gm/v1beta/models/{FLASH}:generateContent"  # the channel's version
    assert sent.query == {} and sent.headers["x-goog-api-key"] == UPSTREAM_KEY
    assert KEY not in sent.raw_path and KEY not in str(sent.headers)
    _billed(db, rid, FLASH, stream=False)


def test_the_sdk_on_v1beta_and_with_a_models_prefix(gateway: Gateway, gemini_fake: FakeGemini, db: GatewayDB) -> None:
    rid = new_rid("sdk-v1beta")
    client = _sdk(gateway, version="v1beta")
    response = client.models.generate_content(
        model=f"models/{FLASH}", contents="Say bonjour",
        config=types.GenerateContentConfig(http_options=types.HttpOptions(headers={"X-Request-Id": rid})))
    assert response.text == "Bonjour!"
    assert gemini_fake.generate_requests()[0].path == f"/gm/v1beta/models/{FLASH}:generateContent"
    _billed(db, rid, FLASH, stream=False)


SNAKE = {"contents": [{"role": "user", "parts": [{"text": "Say bonjour"}]}],
         "system_instruction": {"parts": [{"text": "Be terse."}]},
         "generation_config": {"max_output_tokens": 50, "temperature": 0.25, "stop_sequences": ["END"]}}
CAMEL = {"contents": [{"role": "user", "parts": [{"text": "Say bonjour"}]}],
         "systemInstruction": {"parts": [{"text": "Be terse."}]},
         "generationConfig": {"maxOutputTokens": 50, "temperature": 0.25, "stopSequences": ["END"]}}


@pytest.mark.parametrize("body", [SNAKE, CAMEL], ids=["snake_case", "camelCase"])
def test_both_field_spellings_pass_through_and_translate_alike(http: httpx.Client, fake: FakeOpenAI,
                                                               gemini_fake: FakeGemini, body: dict[str, Any]) -> None:
    raw = orjson.dumps(body)
    headers = {"x-goog-api-key": KEY, "content-type": "application/json"}
    to_gemini = http.post(f"/v1beta/models/{FLASH}:generateContent", content=raw, headers=headers)
    to_openai = http.post("/v1beta/models/gpt-4o:generateContent", content=raw, headers=headers)
    assert to_gemini.status_code == to_openai.status_code == 200, (to_gemini.text, to_openai.text)
    assert to_openai.json()["candidates"][0]["content"]["parts"] == [{"text": "Bonjour!"}]
    assert gemini_fake.generate_requests()[0].body == raw  # passthrough: untouched, whichever spelling
    sent = fake.chat_requests()[0].json()
    assert sent["messages"] == [{"role": "system", "content": "Be terse."},
                                {"role": "user", "content": "Say bonjour"}]
    assert (sent["max_tokens"], sent["temperature"], sent["stop"]) == (50, 0.25, ["END"])


# --- countTokens ---------------------------------------------------------------------------------

def test_count_tokens_offline_in_both_request_forms(gateway: Gateway, http: httpx.Client, fake: FakeOpenAI,
                                                    anthropic_fake: FakeAnthropic, gemini_fake: FakeGemini,
                                                    db: GatewayDB) -> None:
    records = db.count_usage()
    text = "What is the weather in Lyon today, and tomorrow?"
    expected = count_chat_prompt([{"role": "user", "content": text}], FLASH, None)
    contents = [{"role": "user", "parts": [{"text": text}]}]
    plain = http.post(f"/v1beta/models/{FLASH}:countTokens", json={"contents": contents},
                      headers={"x-goog-api-key": KEY})
    wrapped = http.post(f"/v1/models/{FLASH}:countTokens", params={"key": KEY}, json={
        "generateContentRequest": {"model": f"models/{FLASH}", "contents": contents}})
    assert plain.status_code == wrapped.status_code == 200
    assert plain.json() == wrapped.json() == {"totalTokens": expected}
    assert expected > 5
    client = _sdk(gateway)  # held: a genai client closes its connection pool when collected
    sdk = client.models.count_tokens(model="gpt-4o", contents=text)
    assert sdk.total_tokens == count_chat_prompt([{"role": "user", "content": text}], "gpt-4o", None)
    assert _upstream_count(fake, anthropic_fake, gemini_fake) == 0
    assert db.count_usage() == records


def test_count_tokens_refusals(http: httpx.Client) -> None:
    assert_google_error(http.post("/v1beta/models/gemini-9:countTokens", json=HELLO, headers={"x-goog-api-key": KEY}),
                        404, "NOT_FOUND", "model_not_found")
    assert_google_error(http.post(f"/v1beta/models/{FLASH}:countTokens", json={}, headers={"x-goog-api-key": KEY}),
                        400, "INVALID_ARGUMENT", "missing_field")
    assert_google_error(http.post(f"/v1beta/models/{FLASH}:countTokens", json=HELLO), 401, "UNAUTHENTICATED",
                        "missing_api_key")


# --- models -------------------------------------------------------------------------------------

def test_models_list_in_gemini_shape(gateway: Gateway, http: httpx.Client) -> None:
    listed = http.get("/v1beta/models", headers={"x-goog-api-key": KEY})
    assert listed.status_code == 200
    models = listed.json()["models"]
    assert sorted(m["name"] for m in models) == sorted(
        ["models/gemini-2.5-flash", "models/gemini-unpriced", "models/gpt-4o", "models/claude-sonnet-4-20250514"])
    for model in models:
        assert set(model) >= {"name", "version", "displayName", "supportedGenerationMethods"}
        assert "generateContent" in model["supportedGenerationMethods"]
    limited = http.get("/v1beta/models", params={"key": LIMITED}).json()
    assert [m["name"] for m in limited["models"]] == [f"models/{FLASH}"]
    single = http.get(f"/v1beta/models/{FLASH}", headers={"x-goog-api-key": KEY})
    assert single.status_code == 200 and single.json()["name"] == f"models/{FLASH}"
    client = _sdk(gateway)
    sdk_names = sorted(m.name or "" for m in client.models.list())
    assert sdk_names == sorted(m["name"] for m in models)
    assert client.models.get(model=FLASH).name == f"models/{FLASH}"


def test_shared_v1_models_path_answers_in_the_callers_dialect(http: httpx.Client) -> None:
    google = http.get("/v1/models", headers={"x-goog-api-key": LIMITED})
    by_query = http.get("/v1/models", params={"key": LIMITED})
    openai_style = http.get("/v1/models", headers={"Authorization": f"Bearer {LIMITED}"})
    assert google.json() == by_query.json() == {"models": [google.json()["models"][0]]}
    assert google.json()["models"][0]["name"] == f"models/{FLASH}"
    assert openai_style.json() == {"object": "list", "data": [
        {"id": FLASH, "object": "model", "created": openai_style.json()["data"][0]["created"],
         "owned_by": "relaygate"}]}
    single = http.get(f"/v1/models/{FLASH}", headers={"x-goog-api-key": LIMITED})
    assert single.json()["name"] == f"models/{FLASH}"


def test_model_lookup_refusals(http: httpx.Client) -> None:
    assert_google_error(http.get("/v1beta/models/gemini-9", headers={"x-goog-api-key": KEY}), 404, "NOT_FOUND",
                        "model_not_found")
    assert_google_error(http.get("/v1beta/models/gpt-4o", headers={"x-goog-api-key": LIMITED}), 404, "NOT_FOUND",
                        "model_not_found")
    assert_google_error(http.get("/v1beta/models", params={"key": "wrong"}), 401, "UNAUTHENTICATED",
                        "invalid_api_key")


# --- bad input in Google's error shape ----------------------------------------------------------

@pytest.mark.parametrize(("path", "body", "status", "google_status", "reason"), [
    (f"/v1beta/models/{FLASH}:generateContent", b'{"contents": [', 400, "INVALID_ARGUMENT", "invalid_json"),
    (f"/v1beta/models/{FLASH}:generateContent", b"", 400, "INVALID_ARGUMENT", "invalid_json"),
    (f"/v1beta/models/{FLASH}:streamGenerateContent", b'["contents"]', 400, "INVALID_ARGUMENT", "invalid_request"),
    (f"/v1beta/models/{FLASH}:generateContent", b'{"generationConfig": {}}', 400, "INVALID_ARGUMENT",
     "missing_field"),
    (f"/v1/models/{FLASH}:generateContent", b'{"contents": "hi"}', 400, "INVALID_ARGUMENT", "invalid_type"),
    (f"/v1beta/models/{FLASH}:generateContent", b'{"contents": []}', 400, "INVALID_ARGUMENT", "invalid_type"),
    ("/v1beta/models/gemini-9-imaginary:generateContent", orjson.dumps(HELLO), 404, "NOT_FOUND", "model_not_found"),
    ("/v1beta/models/gemini-unpriced:generateContent", orjson.dumps(HELLO), 403, "PERMISSION_DENIED",
     "model_price_missing"),
    (f"/v1beta/models/{FLASH}:foo", orjson.dumps(HELLO), 404, "NOT_FOUND", "unknown_url"),
    ("/v1beta/models/x:foo", orjson.dumps(HELLO), 404, "NOT_FOUND", "unknown_url"),
    (f"/v1beta/models/{FLASH}", orjson.dumps(HELLO), 404, "NOT_FOUND", "unknown_url"),
], ids=["malformed-json", "empty-body", "not-an-object", "no-contents", "contents-not-a-list", "empty-contents",
        "unknown-model", "unpriced-model", "unknown-action", "unknown-model-and-action", "no-action"])
def test_bad_requests_get_google_errors_and_no_record(
        http: httpx.Client, fake: FakeOpenAI, anthropic_fake: FakeAnthropic, gemini_fake: FakeGemini, db: GatewayDB,
        path: str, body: bytes, status: int, google_status: str, reason: str) -> None:
    rid = new_rid("gbad")
    response = http.post(path, content=body, headers={"x-goog-api-key": KEY, "content-type": "application/json",
                                                      "X-Request-Id": rid})
    assert_google_error(response, status, google_status, reason)
    assert _upstream_count(fake, anthropic_fake, gemini_fake) == 0
    assert db.usage_rows(rid) == []


@pytest.mark.parametrize(("params", "headers", "reason"), [
    ({"key": "wrong"}, {}, "invalid_api_key"), ({}, {"x-goog-api-key": "wrong"}, "invalid_api_key"),
    ({}, {}, "missing_api_key")], ids=["query", "header", "none"])
def test_a_bad_or_missing_key_is_refused_in_googles_shape(http: httpx.Client, gemini_fake: FakeGemini,
                                                          params: dict[str, str], headers: dict[str, str],
                                                          reason: str) -> None:
    response = http.post(f"/v1beta/models/{FLASH}:generateContent", params=params, json=HELLO, headers=headers)
    error = assert_google_error(response, 401, "UNAUTHENTICATED", reason)
    assert "wrong" not in error["message"]
    assert gemini_fake.requests == []


def test_the_reservation_follows_the_clients_max_output_tokens(http: httpx.Client) -> None:
    """``generationConfig.maxOutputTokens`` (either spelling) sizes the reservation, not OpenAI's fields."""
    def call(config: dict[str, Any]) -> httpx.Response:
        return http.post(f"/v1beta/models/{FLASH}:generateContent", json={**HELLO, **config},
                         headers={"x-goog-api-key": CAPPED})

    assert call({"generationConfig": {"maxOutputTokens": 16}}).status_code == 200
    assert call({"generation_config": {"max_output_tokens": 16}}).status_code == 200
    for refused in (call({}), call({"generationConfig": {"maxOutputTokens": 4096}}),
                    call({"generationConfig": {"maxOutputTokens": 16, "candidateCount": 100}})):
        assert_google_error(refused, 429, "RESOURCE_EXHAUSTED", "insufficient_quota")


def test_sdk_errors_and_quota(gateway: Gateway, gemini_fake: FakeGemini, db: GatewayDB) -> None:
    client, tiny, limited = _sdk(gateway), _sdk(gateway, TINY), _sdk(gateway, LIMITED)
    with pytest.raises(errors.ClientError) as missing:
        client.models.generate_content(model="gemini-9-imaginary", contents="hi")
    assert (missing.value.code, missing.value.status) == (404, "NOT_FOUND")
    rid = new_rid("gquota")
    with pytest.raises(errors.ClientError) as broke:
        tiny.models.generate_content(
            model=FLASH, contents="hi",
            config=types.GenerateContentConfig(http_options=types.HttpOptions(headers={"X-Request-Id": rid})))
    assert (broke.value.code, broke.value.status) == (429, "RESOURCE_EXHAUSTED")
    assert broke.value.details["error"]["details"][0]["reason"] == "insufficient_quota"
    with pytest.raises(errors.ClientError) as refused:
        limited.models.generate_content(model="gpt-4o", contents="hi")
    assert (refused.value.code, refused.value.status) == (403, "PERMISSION_DENIED")
    assert gemini_fake.requests == []
    assert db.usage_rows(rid) == [] and db.key_used("tiny") == 0
