"""The fake Gemini upstream itself speaks spec/gemini.md exactly, so that what the gateway tests see is
what the real Generative Language API would send."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from tests.fakes.gemini_upstream import RESPONSE_ID, FakeGemini

KEY = "AIza-fake-gemini-key"
HELLO = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
FLASH = "/v1beta/models/gemini-2.5-flash"
TOOLS = [{"functionDeclarations": [{"name": "get_weather", "parameters": {
    "type": "OBJECT", "properties": {"city": {"type": "STRING"}}, "required": ["city"]}}]}]


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeGemini]:
    with FakeGemini(api_key=KEY) as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeGemini) -> FakeGemini:
    fake_server.reset()
    return fake_server


@pytest.fixture
def http(fake: FakeGemini) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=10, headers={"x-goog-api-key": KEY}) as client:
        yield client


def sse(body: bytes) -> list[dict[str, Any]]:
    """``data: <compact json>`` and a blank line per chunk; no event lines, no [DONE]."""
    frames = body.split(b"\n\n")
    assert frames[-1] == b""
    assert all(f.startswith(b"data: ") and b"\n" not in f for f in frames[:-1])
    return [orjson.loads(f[6:]) for f in frames[:-1]]


def usage(prompt: int, candidates: int, **more: int) -> dict[str, int]:
    out = {"promptTokenCount": prompt, "candidatesTokenCount": candidates,
           "totalTokenCount": prompt + candidates + more.get("thoughtsTokenCount", 0)}
    return {k: v for k, v in {**out, **more}.items() if v or k != "candidatesTokenCount"}


def test_generate_content_shape(http: httpx.Client, fake: FakeGemini) -> None:
    response = http.post(f"{FLASH}:generateContent", json=HELLO)
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.json() == {
        "candidates": [{"content": {"parts": [{"text": "Bonjour!"}], "role": "model"}, "finishReason": "STOP",
                        "index": 0}],
        "usageMetadata": usage(11, 3), "modelVersion": "gemini-2.5-flash", "responseId": RESPONSE_ID}
    [recorded] = fake.requests
    assert recorded.path == f"{FLASH}:generateContent" and recorded.query == {} and recorded.prefix == ""
    assert recorded.json() == HELLO and recorded.headers["x-goog-api-key"] == KEY


def test_sse_stream_shape(http: httpx.Client) -> None:
    response = http.post(f"{FLASH}:streamGenerateContent", params={"alt": "sse"}, json=HELLO)
    assert response.headers["content-type"] == "text/event-stream"
    chunks = sse(response.content)
    assert [c["candidates"][0]["content"] for c in chunks] == [{"parts": [{"text": t}], "role": "model"}
                                                               for t in ("Bon", "jour", "!")]
    assert [c["candidates"][0].get("finishReason") for c in chunks] == [None, None, "STOP"]
    assert [c["usageMetadata"] for c in chunks] == [usage(11, 1), usage(11, 2), usage(11, 3)]  # cumulative
    assert {(c["modelVersion"], c["responseId"]) for c in chunks} == {("gemini-2.5-flash", RESPONSE_ID)}


@pytest.mark.parametrize("pretty", [True, False])
def test_json_array_stream(http: httpx.Client, pretty: bool) -> None:
    body = {**HELLO, "x_fake": {"array_pretty": pretty}}
    response = http.post(f"{FLASH}:streamGenerateContent", json=body)
    assert response.headers["content-type"] == "application/json; charset=UTF-8"
    elements = orjson.loads(response.content)
    assert elements == sse(http.post(f"{FLASH}:streamGenerateContent?alt=sse", json=body).content)
    text = response.content
    assert text.startswith(b"[{") and text.endswith(b"}\n]" if pretty else b"}]")
    assert text.count(b"\n,\r\n" if pretty else b",\r\n") == 2
    assert (b'\n  "candidates": [' in text) is pretty


def test_versions_and_prefixes(http: httpx.Client, fake: FakeGemini) -> None:
    for path in ("/v1/models/gemini-2.5-flash:generateContent", "/a/v1beta/models/gemini-2.5-flash:generateContent",
                 "/v1beta/models/models%2Fgemini-2.5-flash:generateContent"):
        assert http.post(path, json=HELLO).json()["modelVersion"] == "gemini-2.5-flash"
    assert [r.prefix for r in fake.requests] == ["", "a", ""]
    assert http.post(f"{FLASH}:predict", json=HELLO).status_code == 404  # a method the fake does not serve


def test_function_calls_and_thoughts(http: httpx.Client) -> None:
    body = {**HELLO, "tools": TOOLS}
    whole = http.post(f"{FLASH}:generateContent", json=body).json()
    assert whole["candidates"][0]["content"]["parts"] == [{"functionCall": {"name": "get_weather",
                                                                            "args": {"city": "Lyon"}}}]
    assert whole["candidates"][0]["finishReason"] == "STOP"  # no tool-call finish reason in Gemini
    snake = {**HELLO, "tools": [{"function_declarations": TOOLS[0]["functionDeclarations"]}],
             "x_fake": {"thoughts": ["Plan", "ning"], "thought_signature": "c2lnbmF0dXJl", "function_call_id": "fc1"}}
    chunks = sse(http.post(f"{FLASH}:streamGenerateContent?alt=sse", json=snake).content)
    assert [c["candidates"][0]["content"]["parts"] for c in chunks] == [
        [{"text": "Plan", "thought": True}], [{"text": "ning", "thought": True}],
        [{"functionCall": {"name": "get_weather", "args": {"city": "Lyon"}, "id": "fc1"},
          "thoughtSignature": "c2lnbmF0dXJl"}]]
    assert chunks[-1]["usageMetadata"] == usage(11, 1, thoughtsTokenCount=2)
    assert chunks[0]["usageMetadata"] == {"promptTokenCount": 11, "totalTokenCount": 12, "thoughtsTokenCount": 1}
    none = {**body, "toolConfig": {"functionCallingConfig": {"mode": "NONE"}}}
    assert http.post(f"{FLASH}:generateContent", json=none).json()["candidates"][0]["content"]["parts"] == [
        {"text": "Bonjour!"}]


def test_blocked_prompt_and_usage_switches(http: httpx.Client) -> None:
    blocked = http.post(f"{FLASH}:generateContent", json={**HELLO, "x_fake": {"blocked": "SAFETY"}}).json()
    assert "candidates" not in blocked and blocked["promptFeedback"]["blockReason"] == "SAFETY"
    assert blocked["usageMetadata"] == {"promptTokenCount": 11, "totalTokenCount": 11}
    switches = {**HELLO, "x_fake": {"omit_usage": True, "finish_reason": "MAX_TOKENS"}}
    whole = http.post(f"{FLASH}:generateContent", json=switches).json()
    assert "usageMetadata" not in whole and whole["candidates"][0]["finishReason"] == "MAX_TOKENS"
    cached = http.post(f"{FLASH}:generateContent", json={**HELLO, "x_fake": {"cached_tokens": 5}}).json()
    assert cached["usageMetadata"]["cachedContentTokenCount"] == 5


@pytest.mark.parametrize(("status", "expected"), [
    (400, "INVALID_ARGUMENT"), (403, "PERMISSION_DENIED"), (404, "NOT_FOUND"), (429, "RESOURCE_EXHAUSTED"),
    (500, "INTERNAL"), (503, "UNAVAILABLE"), (504, "DEADLINE_EXCEEDED")])
def test_error_bodies(http: httpx.Client, status: int, expected: str) -> None:
    response = http.post(f"{FLASH}:generateContent", json={**HELLO, "x_fake": {"status": status}})
    error = response.json()["error"]
    assert response.status_code == status and (error["code"], error["status"]) == (status, expected)
    assert isinstance(error["message"], str) and error["message"]
    if status == 429:
        assert error["details"] == [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "37s"}]


def test_what_the_real_api_insists_on(fake: FakeGemini) -> None:
    with httpx.Client(base_url=fake.url, timeout=10) as raw:
        no_key = raw.post(f"{FLASH}:generateContent", json=HELLO)
        wrong = raw.post(f"{FLASH}:generateContent", json=HELLO, headers={"x-goog-api-key": "nope"})
        by_query = raw.post(f"{FLASH}:streamGenerateContent", params={"alt": "sse", "key": KEY}, json=HELLO)
        headers = {"x-goog-api-key": KEY}
        unknown = raw.post(f"{FLASH}:generateContent", json={**HELLO, "stream": True}, headers=headers)
        twice = raw.post(f"{FLASH}:generateContent", json={**HELLO, "generationConfig": {}, "generation_config": {}},
                         headers=headers)
        empty = raw.post(f"{FLASH}:generateContent", json={}, headers=headers)
        loose = raw.post(f"{FLASH}:generateContent", json={**HELLO, "stream": True, "x_fake": {"strict_fields": False}},
                         headers=headers)
    assert (no_key.status_code, no_key.json()["error"]["status"]) == (403, "PERMISSION_DENIED")
    assert (wrong.status_code, wrong.json()["error"]["details"][0]["reason"]) == (400, "API_KEY_INVALID")
    assert by_query.status_code == 200 and len(sse(by_query.content)) == 3
    assert unknown.status_code == 400 and 'Unknown name "stream"' in unknown.json()["error"]["message"]
    assert twice.status_code == 400 and "generationConfig" in twice.json()["error"]["message"]
    assert empty.status_code == 400 and "contents is not specified" in empty.json()["error"]["message"]
    assert loose.status_code == 200


@pytest.mark.parametrize("alt", ["sse", "json"])
def test_faults_in_streams(http: httpx.Client, alt: str) -> None:
    url = f"{FLASH}:streamGenerateContent" + ("?alt=sse" if alt == "sse" else "")

    def elements(content: bytes) -> list[dict[str, Any]]:
        parsed: list[dict[str, Any]] = sse(content) if alt == "sse" else orjson.loads(content)
        return parsed

    cut = http.post(url, json={**HELLO, "x_fake": {"cut_after": 2, "cut_mode": "eof"}}).content
    assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in
            (sse(cut) if alt == "sse" else orjson.loads(cut + b"\n]"))] == ["Bon", "jour"]
    errored = elements(http.post(url, json={**HELLO, "x_fake": {"error_event_after": 1}}).content)
    assert len(errored) == 2 and errored[-1] == {"error": {
        "code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}}
    malformed = http.post(url, json={**HELLO, "x_fake": {"malformed_after": 1}}).content
    assert b'{"candidates": [{"content": {' in malformed
    with pytest.raises(orjson.JSONDecodeError):
        elements(malformed)


def test_crlf_sse(http: httpx.Client) -> None:
    content = http.post(f"{FLASH}:streamGenerateContent?alt=sse", json={**HELLO, "x_fake": {"crlf": True}}).content
    assert content.count(b"\r\n\r\n") == 3 and len(sse(content.replace(b"\r\n", b"\n"))) == 3


def test_behaviours_by_prefix_script_and_marker(http: httpx.Client, fake: FakeGemini) -> None:
    fake.set("a", status=503)
    fake.script("a", fake.set("b", content=("once",)))
    first = http.post("/a/v1beta/models/gemini-2.5-flash:generateContent", json=HELLO)
    second = http.post("/a/v1beta/models/gemini-2.5-flash:generateContent", json=HELLO)
    assert first.json()["candidates"][0]["content"]["parts"] == [{"text": "once"}]
    assert second.status_code == 503
    assert [r.prefix for r in fake.requests_for("a")] == ["a", "a"] and len(fake.generate_requests()) == 2


def test_count_tokens_and_models(http: httpx.Client) -> None:
    assert http.post(f"{FLASH}:countTokens", json=HELLO).json() == {
        "totalTokens": 11, "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 11}]}
    listed = http.get("/v1beta/models").json()
    assert [m["name"] for m in listed["models"]] == ["models/gemini-2.5-flash", "models/gemini-2.5-pro"]
    assert http.get("/v1/models/gemini-2.5-pro").json()["displayName"] == "Gemini 2.5 Pro"
    missing = http.get("/v1beta/models/gemini-x")
    assert missing.status_code == 404 and missing.json()["error"]["status"] == "NOT_FOUND"


def test_the_sdk_reads_the_fake_directly(fake: FakeGemini) -> None:
    client = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=fake.url, api_version="v1beta"))
    answer = client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert answer.text == "Bonjour!" and answer.usage_metadata is not None
    assert answer.usage_metadata.total_token_count == 14
    pieces = [c.text for c in client.models.generate_content_stream(model="gemini-2.5-flash", contents="hi")]
    assert pieces == ["Bon", "jour", "!"]
    assert fake.requests[-1].query == {"alt": "sse"}
    tool = types.Tool(function_declarations=[types.FunctionDeclaration(name="get_weather")])
    called = client.models.generate_content(model="gemini-2.5-flash", contents="weather?",
                                            config=types.GenerateContentConfig(tools=[tool]))
    assert called.function_calls is not None and called.function_calls[0].args == {"city": "Lyon"}
    assert [m.name for m in client.models.list()] == ["models/gemini-2.5-flash", "models/gemini-2.5-pro"]
    assert client.models.count_tokens(model="gemini-2.5-flash", contents="hi").total_tokens == 11
    fake.set("", status=429)
    with pytest.raises(genai_errors.ClientError) as caught:
        client.models.generate_content(model="gemini-2.5-flash", contents="hi")
    assert caught.value.code == 429
    on_v1 = genai.Client(api_key=KEY, http_options=types.HttpOptions(base_url=fake.url, api_version="v1"))
    fake.reset()
    assert on_v1.models.generate_content(model="gemini-2.5-flash", contents="hi").text == "Bonjour!"
    assert fake.requests[-1].path == "/v1/models/gemini-2.5-flash:generateContent"
