"""The fake Anthropic upstream itself speaks spec/anthropic.md exactly, so that what the gateway tests
see is what the real Messages API would send."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import anthropic
import httpx
import orjson
import pytest

from tests.fakes.anthropic_upstream import MESSAGE_ID, REQUEST_ID, TOOL_USE_ID, FakeAnthropic

KEY = "sk-ant-fake-0123456789"
HEADERS = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}
HELLO = {"model": "claude-sonnet-4-20250514", "max_tokens": 64, "messages": [{"role": "user", "content": "hi"}]}
TOOLS = [{"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]


@pytest.fixture(scope="module")
def fake_server() -> Iterator[FakeAnthropic]:
    with FakeAnthropic(api_key=KEY) as fake:
        yield fake


@pytest.fixture
def fake(fake_server: FakeAnthropic) -> FakeAnthropic:
    fake_server.reset()
    return fake_server


@pytest.fixture
def http(fake: FakeAnthropic) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=10, headers=HEADERS) as client:
        yield client


def events(body: bytes) -> list[tuple[str, dict[str, Any]]]:
    """Every event: ``event: <type>`` then ``data: <json>`` then a blank line; no [DONE]."""
    frames = body.split(b"\n\n")
    assert frames[-1] == b""
    out = []
    for f in frames[:-1]:
        name, data = f.split(b"\n")
        assert name.startswith(b"event: ") and data.startswith(b"data: ")
        payload = orjson.loads(data[6:])
        assert payload["type"] == name[7:].decode()
        out.append((payload["type"], payload))
    return out


def stream(http: httpx.Client, **extra: Any) -> httpx.Response:
    return http.post("/v1/messages", json={**HELLO, "stream": True, **extra})


def test_message_shape(http: httpx.Client, fake: FakeAnthropic) -> None:
    response = http.post("/v1/messages", json=HELLO)
    body = response.json()
    assert response.status_code == 200 and response.headers["content-type"] == "application/json"
    assert response.headers["request-id"] == REQUEST_ID
    assert list(body) == ["id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"]
    assert body | {"usage": None} == {"id": MESSAGE_ID, "type": "message", "role": "assistant",
                                      "model": "claude-sonnet-4-20250514",
                                      "content": [{"type": "text", "text": "Bonjour!"}], "stop_reason": "end_turn",
                                      "stop_sequence": None, "usage": None}
    assert body["usage"] == {"input_tokens": 11, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                             "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                             "output_tokens": 3, "service_tier": "standard"}
    [recorded] = fake.requests
    assert (recorded.path, recorded.prefix, recorded.json()) == ("/v1/messages", "", HELLO)
    assert recorded.headers["x-api-key"] == KEY and recorded.headers["anthropic-version"] == "2023-06-01"


def test_stream_shape(http: httpx.Client) -> None:
    response = stream(http)
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    got = events(response.content)
    assert [name for name, _ in got] == ["message_start", "ping", "content_block_start", "content_block_delta",
                                         "content_block_delta", "content_block_delta", "content_block_stop",
                                         "message_delta", "message_stop"]
    start = got[0][1]["message"]
    assert start == {"id": MESSAGE_ID, "type": "message", "role": "assistant", "model": "claude-sonnet-4-20250514",
                     "content": [], "stop_reason": None, "stop_sequence": None,
                     "usage": {"input_tokens": 11, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0,
                               "output_tokens": 1}}
    assert got[2][1] == {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}
    assert [p["delta"] for _, p in got[3:6]] == [{"type": "text_delta", "text": t} for t in ("Bon", "jour", "!")]
    assert got[7][1] == {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                         "usage": {"output_tokens": 3}}
    assert response.content.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')


def test_thinking_text_and_tool_use_stream_like_the_spec_example(http: httpx.Client) -> None:
    body = {"tools": TOOLS, "x_fake": {"thinking": ["User wants weather; ", "call the tool."],
                                       "tool_text": ["Checking now."]}}
    got = events(stream(http, **body).content)
    starts = [p["content_block"] for n, p in got if n == "content_block_start"]
    assert starts == [{"type": "thinking", "thinking": "", "signature": ""}, {"type": "text", "text": ""},
                      {"type": "tool_use", "id": TOOL_USE_ID, "name": "get_weather", "input": {}}]
    deltas = [(p["index"], p["delta"]) for n, p in got if n == "content_block_delta"]
    assert deltas == [(0, {"type": "thinking_delta", "thinking": "User wants weather; "}),
                      (0, {"type": "thinking_delta", "thinking": "call the tool."}),
                      (0, {"type": "signature_delta", "signature": "EqQBCgIYAhIMfakeSignature"}),
                      (1, {"type": "text_delta", "text": "Checking now."}),
                      (2, {"type": "input_json_delta", "partial_json": ""}),
                      (2, {"type": "input_json_delta", "partial_json": '{"city": "Ly'}),
                      (2, {"type": "input_json_delta", "partial_json": 'on"}'})]
    stops = [p["index"] for n, p in got if n == "content_block_stop"]
    assert stops == [0, 1, 2]
    assert got[-2][1]["delta"] == {"stop_reason": "tool_use", "stop_sequence": None}
    assert got[-2][1]["usage"] == {"output_tokens": 5}
    whole = http.post("/v1/messages", json={**HELLO, **body}).json()
    assert whole["content"] == [
        {"type": "thinking", "thinking": "User wants weather; call the tool.",
         "signature": "EqQBCgIYAhIMfakeSignature"},
        {"type": "text", "text": "Checking now."},
        {"type": "tool_use", "id": TOOL_USE_ID, "name": "get_weather", "input": {"city": "Lyon"}}]
    assert whole["stop_reason"] == "tool_use"


def test_tool_choice(http: httpx.Client) -> None:
    tools = [*TOOLS, {"name": "other", "input_schema": {"type": "object"}}, {"type": "web_search_20250305",
                                                                              "name": "web_search"}]
    named = http.post("/v1/messages", json={**HELLO, "tools": tools, "tool_choice": {"type": "tool", "name": "other"}})
    assert named.json()["content"][-1]["name"] == "other"
    none = http.post("/v1/messages", json={**HELLO, "tools": tools, "tool_choice": {"type": "none"}})
    assert none.json()["content"] == [{"type": "text", "text": "Bonjour!"}]
    server_only = http.post("/v1/messages", json={**HELLO, "tools": tools[2:]})
    assert server_only.json()["stop_reason"] == "end_turn"


def test_usage_switches(http: httpx.Client) -> None:
    cached = {"x_fake": {"cache_read_input_tokens": 3000, "cache_creation_input_tokens": 200,
                         "delta_repeats_input": True, "output_tokens": 40, "ping": False, "stop_reason": "max_tokens"}}
    got = events(stream(http, **cached).content)
    assert got[0][1]["message"]["usage"]["cache_read_input_tokens"] == 3000 and got[1][0] == "content_block_start"
    assert got[-2][1]["usage"] == {"input_tokens": 11, "cache_creation_input_tokens": 200,
                                   "cache_read_input_tokens": 3000, "output_tokens": 40}
    assert got[-2][1]["delta"]["stop_reason"] == "max_tokens"
    bare = events(stream(http, x_fake={"omit_usage": True}).content)
    assert "usage" not in bare[0][1]["message"] and "usage" not in bare[-2][1]
    assert "usage" not in http.post("/v1/messages", json={**HELLO, "x_fake": {"omit_usage": True}}).json()


@pytest.mark.parametrize(("status", "error_type", "message"), [
    (400, "invalid_request_error", "Invalid request"), (401, "authentication_error", "Invalid request"),
    (402, "billing_error", "Invalid request"), (403, "permission_error", "Invalid request"),
    (404, "not_found_error", "Invalid request"), (413, "request_too_large", "Invalid request"),
    (429, "rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    (500, "api_error", "Internal server error"), (504, "timeout_error", "Invalid request"),
    (529, "overloaded_error", "Overloaded")])
def test_error_bodies(http: httpx.Client, status: int, error_type: str, message: str) -> None:
    response = http.post("/v1/messages", json={**HELLO, "x_fake": {"status": status}})
    assert response.status_code == status
    assert response.json() == {"type": "error", "error": {"type": error_type, "message": message},
                               "request_id": REQUEST_ID}
    assert response.headers.get("retry-after") == ("1" if status in (429, 529) else None)


def test_what_the_real_api_insists_on(fake: FakeAnthropic) -> None:
    with httpx.Client(base_url=fake.url, timeout=10) as raw:
        no_version = raw.post("/v1/messages", json=HELLO, headers={"x-api-key": KEY})
        no_key = raw.post("/v1/messages", json=HELLO, headers={"anthropic-version": "2023-06-01"})
        wrong = raw.post("/v1/messages", json=HELLO, headers={**HEADERS, "x-api-key": "sk-wrong"})
        bearer = raw.post("/v1/messages", json=HELLO, headers={"anthropic-version": "2023-06-01",
                                                               "authorization": f"Bearer {KEY}"})
        extra = raw.post("/v1/messages", json={**HELLO, "stream_options": {"include_usage": True}}, headers=HEADERS)
        loose = raw.post("/v1/messages", json={**HELLO, "stream_options": {}, "x_fake": {"strict_fields": False}},
                         headers=HEADERS)
        no_max = raw.post("/v1/messages", json={"model": "m", "messages": []}, headers=HEADERS)
        not_json = raw.post("/v1/messages", content=b"{", headers=HEADERS)
    assert (no_version.status_code, no_version.json()["error"]) == (
        400, {"type": "invalid_request_error", "message": "anthropic-version: header is required"})
    assert (no_key.status_code, no_key.json()["error"]["type"]) == (401, "authentication_error")
    assert (wrong.status_code, wrong.json()["error"]["message"]) == (401, "invalid x-api-key")
    assert bearer.status_code == 200 and loose.status_code == 200
    assert (extra.status_code, extra.json()["error"]["message"]) == (
        400, "stream_options: Extra inputs are not permitted")
    assert (no_max.status_code, no_max.json()["error"]["message"]) == (400, "max_tokens: Field required")
    assert not_json.status_code == 400


def test_faults_in_streams(http: httpx.Client) -> None:
    cut = stream(http, x_fake={"cut_after": 1, "cut_mode": "eof"}).content
    assert [n for n, _ in events(cut)] == ["message_start", "ping", "content_block_start", "content_block_delta"]
    errored = events(stream(http, x_fake={"error_event_after": 2}).content)
    assert errored[-1] == ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})
    assert [n for n, _ in errored].count("content_block_delta") == 2
    malformed = stream(http, x_fake={"malformed_after": 1}).content
    assert b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {\n\n' in malformed
    assert malformed.endswith(b'event: message_stop\ndata: {"type":"message_stop"}\n\n')
    crlf = stream(http, x_fake={"crlf": True}).content
    assert b"\n" not in crlf.replace(b"\r\n", b"") and events(crlf.replace(b"\r\n", b"\n"))[-1][0] == "message_stop"
    raw = stream(http, x_fake={"raw_events": ["event: ping\ndata: {}\n\n"]}).content
    assert raw == b"event: ping\ndata: {}\n\n"


def test_behaviours_by_prefix_script_and_marker(http: httpx.Client, fake: FakeAnthropic) -> None:
    fake.set("a", status=529)
    fake.script("a", fake.set("b", content=("once",)))
    first = http.post("/a/v1/messages", json=HELLO)
    second = http.post("/a/v1/messages", json=HELLO)
    other = http.post("/b/v1/messages", json=HELLO)
    assert first.json()["content"] == [{"type": "text", "text": "once"}]
    assert second.status_code == 529 and other.json()["content"][0]["text"] == "once"
    assert [r.prefix for r in fake.requests] == ["a", "a", "b"]
    assert [r.path for r in fake.message_requests()] == ["/a/v1/messages", "/a/v1/messages", "/b/v1/messages"]


def test_count_tokens_and_models(http: httpx.Client) -> None:
    counted = http.post("/v1/messages/count_tokens", json={"model": "m", "messages": HELLO["messages"]})
    assert counted.json() == {"input_tokens": 11}
    refused = http.post("/v1/messages/count_tokens", json=HELLO)
    assert refused.status_code == 400 and "max_tokens" in refused.json()["error"]["message"]
    listed = http.get("/v1/models").json()
    assert [m["id"] for m in listed["data"]] == ["claude-sonnet-4-20250514", "claude-3-5-haiku-20241022"]
    assert (listed["has_more"], listed["first_id"], listed["last_id"]) == (
        False, "claude-sonnet-4-20250514", "claude-3-5-haiku-20241022")
    assert listed["data"][0] == {"type": "model", "id": "claude-sonnet-4-20250514", "display_name": "Claude Sonnet 4",
                                 "created_at": "2025-05-22T00:00:00Z"}
    assert http.get("/v1/models/claude-3-5-haiku-20241022").json()["display_name"] == "Claude Haiku 3.5"
    missing = http.get("/v1/models/claude-x-9")
    assert missing.status_code == 404 and missing.json()["error"] == {"type": "not_found_error",
                                                                     "message": "model: claude-x-9"}


def test_the_sdk_reads_the_fake_directly(fake: FakeAnthropic) -> None:
    with anthropic.Anthropic(api_key=KEY, base_url=fake.url, max_retries=0) as client:
        message = client.messages.create(model="claude-sonnet-4-20250514", max_tokens=64,
                                         messages=[{"role": "user", "content": "hi"}])
        assert message.content[0].type == "text" and message.content[0].text == "Bonjour!"
        fake.set("", thinking=("Hm.",))
        with client.messages.stream(model="claude-sonnet-4-20250514", max_tokens=64, tools=TOOLS,  # type: ignore[arg-type]
                                    messages=[{"role": "user", "content": "weather?"}]) as streamed:
            final = streamed.get_final_message()
        assert [b.type for b in final.content] == ["thinking", "tool_use"]
        assert final.content[1].type == "tool_use" and final.content[1].input == {"city": "Lyon"}
        assert final.usage.output_tokens == 3
        assert [m.id for m in client.models.list()] == ["claude-sonnet-4-20250514", "claude-3-5-haiku-20241022"]
        fake.set("", status=529)
        with pytest.raises(anthropic.InternalServerError) as caught:
            client.messages.create(model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}])
        assert caught.value.status_code == 529
        fake.set("", cut_after=1)
        # The SDK does not wrap a body broken off mid-stream: its HTTP library's error comes through.
        with pytest.raises(Exception, match="incomplete chunked read"), client.messages.stream(
                model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}]) as broken:
            broken.get_final_message()
        fake.set("", error_event_after=1)
        with pytest.raises(anthropic.APIStatusError), client.messages.stream(
                model="m", max_tokens=5, messages=[{"role": "user", "content": "hi"}]) as failing:
            failing.get_final_message()
