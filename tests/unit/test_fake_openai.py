"""The fake OpenAI upstream itself speaks spec/openai.md §1.3/§1.4 exactly, so that what the gateway
tests see is what a real upstream would send."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import openai
import orjson
import pytest

from tests.fakes.openai_upstream import CHAT_ID, FakeOpenAI

HELLO = [{"role": "user", "content": "hi"}]


@pytest.fixture
def http(fake: FakeOpenAI) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake.url, timeout=10) as client:
        yield client


def events(body: bytes) -> list[Any]:
    frames = body.split(b"\n\n")
    assert frames[-1] == b"" and frames[-2] == b"data: [DONE]"
    assert all(f.startswith(b"data: ") and b"\n" not in f for f in frames[:-1])
    return [orjson.loads(f[6:]) for f in frames[:-2]]


def test_non_stream_shape(http: httpx.Client, fake: FakeOpenAI) -> None:
    response = http.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO})
    body = response.json()
    assert response.headers["content-type"].startswith("application/json")
    assert list(body) == ["id", "object", "created", "model", "choices", "usage", "service_tier",
                          "system_fingerprint"]
    assert body["object"] == "chat.completion" and body["id"] == CHAT_ID
    assert body["choices"] == [{"index": 0, "message": {"role": "assistant", "content": "Bonjour!", "refusal": None,
                                                        "annotations": []},
                                "logprobs": None, "finish_reason": "stop"}]
    assert body["usage"]["total_tokens"] == 14
    [recorded] = fake.requests
    assert recorded.path == "/v1/chat/completions" and recorded.prefix == ""
    assert recorded.json() == {"model": "gpt-4o", "messages": HELLO}


@pytest.mark.parametrize("include_usage", [False, True])
def test_stream_shape(http: httpx.Client, include_usage: bool) -> None:
    body: dict[str, Any] = {"model": "gpt-4o-mini", "messages": HELLO, "stream": True}
    if include_usage:
        body["stream_options"] = {"include_usage": True}
    response = http.post("/v1/chat/completions", json=body)
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    chunks = events(response.content)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas == [{"role": "assistant", "content": "", "refusal": None}, {"content": "Bon"},
                      {"content": "jour"}, {"content": "!"}, {}]
    assert all(c["object"] == "chat.completion.chunk" and c["model"] == "gpt-4o-mini" for c in chunks)
    if include_usage:
        assert all("usage" in c for c in chunks)
        assert [c["usage"] is None for c in chunks] == [True] * 5 + [False]
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    else:
        assert all("usage" not in c for c in chunks)
        assert len(chunks) == 5


def test_streamed_tool_call_shape(http: httpx.Client) -> None:
    tools = [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}]
    response = http.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO, "stream": True,
                                                       "tools": tools})
    deltas = [c["choices"][0]["delta"] for c in events(response.content)]
    assert deltas[0] == {"role": "assistant", "content": None, "tool_calls": [
        {"index": 0, "id": "call_8xQ2", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}
    assert deltas[1:] == [{"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]},
                          {"tool_calls": [{"index": 0, "function": {"arguments": '"Lyon"}'}}]}, {}]


def test_behaviours_by_prefix_script_and_body_marker(http: httpx.Client, fake: FakeOpenAI) -> None:
    fake.set("a", status=429)
    fake.script("a", fake.set("b", status=200).replace(content=("once",)))
    first = http.post("/a/v1/chat/completions", json={"model": "m", "messages": HELLO})
    second = http.post("/a/v1/chat/completions", json={"model": "m", "messages": HELLO})
    marked = http.post("/a/v1/chat/completions", json={"model": "m", "messages": HELLO,
                                                       "x_fake": {"status": 400, "error_code": "invalid_value"}})
    assert first.json()["choices"][0]["message"]["content"] == "once"
    assert second.status_code == 429
    assert second.json()["error"] == {"message": "The server had an error while processing your request. Sorry "
                                                 "about that!", "type": "requests", "param": None,
                                      "code": "rate_limit_exceeded"}
    assert marked.status_code == 400 and marked.json()["error"]["code"] == "invalid_value"
    assert [r.prefix for r in fake.requests] == ["a", "a", "a"]


def test_the_sdk_reads_the_fake_directly(fake: FakeOpenAI) -> None:
    with openai.OpenAI(api_key="sk-x", base_url=fake.url + "/v1", max_retries=0) as client:
        assert [m.id for m in client.models.list()] == ["gpt-4o", "gpt-4o-mini"]
        fake.set("", cut_after=1)
        with pytest.raises(openai.APIConnectionError):
            list(client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}],
                                                stream=True))
