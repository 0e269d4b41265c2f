"""Bad input on the OpenAI chat surface: every refusal is a 4xx in OpenAI's error shape with a stable
code, nothing reaches the upstream, and nothing is a 500."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletionMessageParam

from tests.fakes.clients import UPSTREAM_KEY, assert_openai_error, new_rid, raw, sdk
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import Gateway

FULL = "sk-bad-input-full-0001"
LIMITED = "sk-bad-input-limited-01"
EXPIRED = "sk-bad-input-expired-01"
DISABLED = "sk-bad-input-disabled-1"
ELSEWHERE = "sk-bad-input-elsewhere1"  # allowed only from an address the tests do not have
LOOPBACK = "sk-bad-input-loopback-1"  # allowed from 127.0.0.1
BROKE = "sk-bad-input-broke-0001"  # a quota of zero
MAX_BODY = 4096
HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: type[Gateway], fake_upstream: FakeOpenAI,
            tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    config = {
        "max_body_bytes": MAX_BODY,
        "channels": [{"name": "main", "type": "openai", "base_url": fake_upstream.channel_url("main"),
                      "api_key": UPSTREAM_KEY, "models": ["gpt-4o", "gpt-4o-mini", "gpt-unpriced"]}],
        "prices": {"gpt-4o": {"input": 2.5, "output": 10}, "gpt-4o-mini": {"input": 0.15, "output": 0.6}},
        "keys": [
            {"name": "full", "key": FULL},
            {"name": "limited", "key": LIMITED, "models": ["gpt-4o-mini"]},
            {"name": "expired", "key": EXPIRED, "expires_at": 1_000_000},
            {"name": "disabled", "key": DISABLED, "enabled": False},
            {"name": "elsewhere", "key": ELSEWHERE, "ip_allow": ["192.0.2.0/24"]},
            {"name": "loopback", "key": LOOPBACK, "ip_allow": ["127.0.0.1"]},
            {"name": "broke", "key": BROKE, "quota_usd": 0},
        ],
    }
    return module_gateway_factory(Path(tmp_path_factory.mktemp("bad")), config).start()


@pytest.fixture
def http(gateway: Gateway, fake: FakeOpenAI) -> Iterator[httpx.Client]:
    with raw(gateway, FULL) as client:
        yield client
    assert fake.chat_requests() == [], "a refused request reached the upstream"


def _post(http: httpx.Client, content: bytes, **headers: str) -> httpx.Response:
    return http.post("/v1/chat/completions", content=content, headers={"Content-Type": "application/json", **headers})


# --- the body -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("content", "code"), [
    pytest.param(b'{"model": "gpt-4o", "messages": [', "invalid_json", id="truncated"),
    pytest.param(b"model=gpt-4o", "invalid_json", id="form-encoded"),
    pytest.param(b"", "invalid_json", id="empty"),
    pytest.param(b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "\xff\xfe"}]}', "invalid_json",
                 id="not-utf8"),
    pytest.param(b'{"model": "gpt-4o", "model": 1', "invalid_json", id="unterminated"),
    pytest.param(b'[{"model": "gpt-4o", "messages": []}]', "invalid_request", id="array"),
    pytest.param(b'"gpt-4o"', "invalid_request", id="string"),
    pytest.param(b"null", "invalid_request", id="null"),
])
def test_bodies_that_are_not_a_json_object(http: httpx.Client, content: bytes, code: str) -> None:
    error = assert_openai_error(_post(http, content), 400, code)
    assert error["type"] == "invalid_request_error"


@pytest.mark.parametrize(("body", "param", "code"), [
    ({"messages": HELLO}, "model", "missing_model"),
    ({"model": 4, "messages": HELLO}, "model", "invalid_type"),
    ({"model": "", "messages": HELLO}, "model", "invalid_type"),
    ({"model": None, "messages": HELLO}, "model", "missing_model"),
    ({"model": ["gpt-4o"], "messages": HELLO}, "model", "invalid_type"),
    ({"model": "gpt-4o"}, "messages", "missing_messages"),
    ({"model": "gpt-4o", "messages": "hi"}, "messages", "invalid_type"),
    ({"model": "gpt-4o", "messages": {"role": "user"}}, "messages", "invalid_type"),
    ({"model": "gpt-4o", "messages": []}, "messages", "invalid_type"),
    ({"model": "gpt-4o", "messages": ["hi"]}, "messages", "invalid_type"),
    ({"model": "gpt-4o", "messages": HELLO, "stream": "yes"}, "stream", "invalid_type"),
    ({"model": "gpt-4o", "messages": HELLO, "stream": 1}, "stream", "invalid_type"),
    ({"model": "gpt-4o", "messages": HELLO, "stream": True, "stream_options": "usage"}, "stream_options",
     "invalid_type"),
])
def test_wrong_types_name_the_field(http: httpx.Client, body: dict[str, Any], param: str, code: str) -> None:
    error = assert_openai_error(_post(http, orjson.dumps(body)), 400, code)
    assert error["param"] == param
    assert error["type"] == "invalid_request_error"


def test_an_oversized_body_is_413(http: httpx.Client) -> None:
    big = orjson.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * MAX_BODY}]})
    assert_openai_error(_post(http, big), 413, "body_too_large")


def test_an_oversized_chunked_body_is_413(http: httpx.Client) -> None:
    big = orjson.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": "x" * 3 * MAX_BODY}]})

    def pieces() -> Iterator[bytes]:  # no Content-Length: the limit must hold while reading
        for i in range(0, len(big), 1000):
            yield big[i:i + 1000]

    response = http.post("/v1/chat/completions", content=pieces(), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert_openai_error(response, 413, "body_too_large")


def test_a_body_just_under_the_limit_is_served(gateway: Gateway, fake: FakeOpenAI) -> None:
    body = orjson.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": ""}]})
    filler = "y" * (MAX_BODY - len(body))
    body = orjson.dumps({"model": "gpt-4o", "messages": [{"role": "user", "content": filler}]})
    assert len(body) == MAX_BODY
    with raw(gateway, FULL) as http:
        assert _post(http, body).status_code == 200
    assert fake.chat_requests()[0].body == body


def _nested(depth: int) -> bytes:
    """A chat body whose ``metadata`` nests lists so that the whole body is ``depth`` levels deep."""
    return (b'{"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}], "metadata": '
            + b"[" * (depth - 1) + b"]" * (depth - 1) + b"}")


def test_json_nested_deeper_than_128_levels_is_refused(http: httpx.Client) -> None:
    """orjson reads up to 1024 levels but writes only 254: refused at the door, not a 500 later."""
    assert_openai_error(_post(http, _nested(129)), 400, "json_too_deep")
    assert_openai_error(_post(http, _nested(600)), 400, "json_too_deep")


def test_json_nested_128_levels_is_served(gateway: Gateway, fake: FakeOpenAI) -> None:
    with raw(gateway, FULL) as http:
        assert _post(http, _nested(128)).status_code == 200
    assert len(fake.chat_requests()) == 1


def test_unknown_model_is_404_model_not_found(http: httpx.Client) -> None:
    error = assert_openai_error(_post(http, orjson.dumps({"model": "gpt-9", "messages": HELLO})), 404,
                                "model_not_found")
    assert error["param"] == "model"
    assert "gpt-9" in error["message"]


def test_the_sdk_raises_its_typed_errors(gateway: Gateway, fake: FakeOpenAI) -> None:
    with sdk(gateway, FULL) as client:
        with pytest.raises(openai.NotFoundError) as not_found:
            client.chat.completions.create(model="gpt-9", messages=HELLO)
        with pytest.raises(openai.PermissionDeniedError) as unpriced:
            client.chat.completions.create(model="gpt-unpriced", messages=HELLO)
    assert not_found.value.code == "model_not_found"
    assert unpriced.value.code == "model_price_missing"
    with sdk(gateway, "sk-not-a-key-at-all") as client, pytest.raises(openai.AuthenticationError) as bad_key:
        client.chat.completions.create(model="gpt-4o", messages=HELLO)
    assert bad_key.value.code == "invalid_api_key"
    assert fake.chat_requests() == []


# --- keys ---------------------------------------------------------------------------------------

OK_BODY = orjson.dumps({"model": "gpt-4o", "messages": HELLO})


@pytest.mark.parametrize(("authorization", "code"), [
    (None, "missing_api_key"),
    ("", "missing_api_key"),
    ("Bearer", "missing_api_key"),
    (f"Basic {FULL}", "missing_api_key"),
    ("Bearer sk-wrong-key-000000000000", "invalid_api_key"),
    (f"Bearer {FULL}x", "invalid_api_key"),
    (f"Bearer {EXPIRED}", "key_expired"),
    (f"Bearer {DISABLED}", "key_disabled"),
])
def test_keys_that_are_refused_with_401(gateway: Gateway, fake: FakeOpenAI, authorization: str | None,
                                        code: str) -> None:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    with raw(gateway) as http:
        response = http.post("/v1/chat/completions", content=OK_BODY, headers=headers)
    error = assert_openai_error(response, 401, code)
    assert error["type"] == "invalid_request_error"
    assert fake.chat_requests() == []


def test_a_model_outside_the_allow_list_is_403(gateway: Gateway, fake: FakeOpenAI) -> None:
    with raw(gateway, LIMITED) as http:
        refused = _post(http, OK_BODY)
        allowed = _post(http, orjson.dumps({"model": "gpt-4o-mini", "messages": HELLO}))
    error = assert_openai_error(refused, 403, "model_not_allowed")
    assert error["param"] == "model"
    assert allowed.status_code == 200
    assert [r.json()["model"] for r in fake.chat_requests()] == ["gpt-4o-mini"]


def test_an_address_outside_the_ip_allow_list_is_403(gateway: Gateway, fake: FakeOpenAI) -> None:
    with raw(gateway, ELSEWHERE) as elsewhere, raw(gateway, LOOPBACK) as loopback:
        refused = _post(elsewhere, OK_BODY)
        allowed = _post(loopback, OK_BODY)
    assert_openai_error(refused, 403, "ip_not_allowed")
    assert allowed.status_code == 200
    assert len(fake.chat_requests()) == 1


def test_an_unpriced_model_is_403_and_not_sent(http: httpx.Client, gateway: Gateway) -> None:
    rid = new_rid("unpriced")
    error = assert_openai_error(_post(http, orjson.dumps({"model": "gpt-unpriced", "messages": HELLO}),
                                      **{"X-Request-Id": rid}), 403, "model_price_missing")
    assert error["param"] == "model"
    assert GatewayDB(gateway.database).usage_rows(rid) == []


def test_a_key_without_quota_is_429_insufficient_quota(gateway: Gateway, fake: FakeOpenAI) -> None:
    with raw(gateway, BROKE) as http:
        error = assert_openai_error(_post(http, OK_BODY), 429, "insufficient_quota")
    assert error["type"] == "insufficient_quota"
    assert fake.chat_requests() == []


def test_unknown_routes_are_404_in_openai_shape(gateway: Gateway) -> None:
    with raw(gateway, FULL) as http:
        for response in (http.post("/v1/engines/gpt-4o/nothing", json={}), http.get("/v2/chat/completions"),
                         http.delete("/v1/models")):
            error = assert_openai_error(response, 404, "unknown_url")
            assert response.request.url.path in error["message"]


def test_a_get_on_the_chat_route_is_a_4xx_not_a_500(gateway: Gateway) -> None:
    with raw(gateway, FULL) as http:
        response = http.get("/v1/chat/completions")
    assert 400 <= response.status_code < 500
    assert set(response.json()["error"]) == {"message", "type", "param", "code"}


# --- odd but valid JSON goes through; odd upstream bodies never make a 500 ----------------------

@pytest.mark.parametrize("extra", [
    {"max_tokens": "lots"}, {"max_tokens": -1}, {"n": "3"}, {"n": 0}, {"max_completion_tokens": 1e308},
    {"tools": "none"}, {"stream": None}, {"stream_options": None}, {"temperature": "hot"},
    {"messages": [{"role": "user", "content": {"text": 1}}, {"role": "assistant", "tool_calls": 5, "name": 7}]},
    {"messages": [{"role": "user", "content": [1, {"type": "text", "text": 2}, {"type": "image_url"}]}]},
])
def test_odd_field_values_are_relayed_and_estimated_without_a_500(gateway: Gateway, fake: FakeOpenAI,
                                                                  extra: dict[str, Any]) -> None:
    """The upstream judges what it accepts; the gateway must not fail even when it has to count tokens."""
    body = {"model": "gpt-4o", "messages": HELLO, **extra, "x_fake": {"omit_usage": True}}
    rid = new_rid("odd")
    with raw(gateway, FULL) as http:
        response = _post(http, orjson.dumps(body), **{"X-Request-Id": rid})
    assert response.status_code == 200, response.text
    row = GatewayDB(gateway.database).usage(rid)
    assert row["usage_source"] == "estimated"
    assert row["input_tokens"] > 0


ODD_MESSAGE = {"role": "assistant", "content": 5, "tool_calls": 5}


@pytest.mark.parametrize("payload", [
    {"choices": [{"index": 0, "message": ODD_MESSAGE, "finish_reason": "stop"}]},
    {"choices": [{"index": 0, "message": {"role": "assistant", "tool_calls": [5, {"function": 3}]}}]},
    {"choices": "none"},
    {"choices": [5]},
    [1, 2],
], ids=["tool-calls-number", "tool-calls-junk", "choices-string", "choice-number", "array"])
def test_odd_upstream_answers_do_not_make_a_500(gateway: Gateway, fake: FakeOpenAI, payload: Any) -> None:
    """An upstream without usage whose answer is valid JSON but not the expected shape is relayed."""
    fake.set("main", raw_body=orjson.dumps(payload).decode())
    rid = new_rid("oddup")
    with raw(gateway, FULL) as http:
        response = _post(http, OK_BODY, **{"X-Request-Id": rid})
    assert response.status_code == 200, response.text
    assert response.json() == payload
    assert GatewayDB(gateway.database).usage(rid)["usage_source"] == "estimated"


def _chunk(delta: Any) -> str:
    return "data: " + orjson.dumps({"id": "c", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": delta, "finish_reason": None}]}).decode() + "\n\n"


@pytest.mark.parametrize("events", [
    (_chunk({"tool_calls": 5}), _chunk({"content": 7}), "data: [DONE]\n\n"),
    (_chunk({"tool_calls": [1, {"function": "x"}]}), _chunk(None), "data: [DONE]\n\n"),
    ('data: {"choices": [1, null, "x"]}\n\n', 'data: {"choices": "x"}\n\n', "data: [DONE]\n\n"),
    ("data: [1, 2]\n\n", 'data: "text"\n\n', 'data: {"error": "plain"}\n\n'),
], ids=["tool-calls-number", "junk-deltas", "junk-choices", "not-objects"])
def test_odd_upstream_stream_events_do_not_break_the_stream(gateway: Gateway, fake: FakeOpenAI,
                                                            events: tuple[str, ...]) -> None:
    fake.set("main", raw_events=events)
    rid = new_rid("oddstream")
    body = orjson.dumps({"model": "gpt-4o", "messages": HELLO, "stream": True})
    with raw(gateway, FULL) as http:
        response = _post(http, body, **{"X-Request-Id": rid})
    assert response.status_code == 200
    row = GatewayDB(gateway.database).usage(rid)
    assert row["end_reason"] in ("done", "upstream_error")
    if row["end_reason"] == "done":
        assert response.text.endswith("data: [DONE]\n\n")
