"""The Anthropic surface itself, with the official ``anthropic`` SDK and raw HTTP: both ways of giving
the key, ``count_tokens``, the Anthropic-shaped model list on the shared ``GET /v1/models``, and every
refusal in Anthropic's error shape (``{"type": "error", "error": {"type", "message"}}``) — none of which
reaches an upstream or bills anything."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import pytest

from relaygate.billing.tokenizer import count_chat_prompt, count_text
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.clients import UPSTREAM_KEY, new_rid, token_cost
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import Gateway

KEY = "sk-anthropic-surface-0001"
LIMITED = "sk-anthropic-limited-0001"  # may use the Claude model only
TINY = "sk-anthropic-tiny-quota-1"  # far too little quota for any call
CAPPED = "sk-anthropic-capped-key-1"  # $0.005: 16 output tokens of Claude fit, 4096 do not
CLAUDE = "claude-sonnet-4-20250514"
VERSION = {"anthropic-version": "2023-06-01"}
HELLO: list[Any] = [{"role": "user", "content": "Say bonjour"}]


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: type[Gateway], fake_upstream: FakeOpenAI, fake_anthropic_upstream: FakeAnthropic,
            tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    config = {
        "channels": [
            {"name": "an", "type": "anthropic", "base_url": fake_anthropic_upstream.channel_url("an"),
             "api_key": UPSTREAM_KEY, "models": [CLAUDE, "claude-unpriced"]},
            {"name": "oa", "type": "openai", "base_url": fake_upstream.channel_url("oa"), "api_key": UPSTREAM_KEY,
             "models": ["gpt-4o"]},
        ],
        "prices": {CLAUDE: {"input": 3, "output": 15}, "gpt-4o": {"input": 2.5, "output": 10}},
        "keys": [{"name": "main", "key": KEY, "quota_usd": 10},
                 {"name": "limited", "key": LIMITED, "models": [CLAUDE]},
                 {"name": "tiny", "key": TINY, "quota_usd": "0.00001"},
                 {"name": "capped", "key": CAPPED, "quota_usd": "0.005"}],
    }
    return module_gateway_factory(Path(tmp_path_factory.mktemp("anthropic-surface")), config).start()


@pytest.fixture(scope="module")
def db(gateway: Gateway) -> GatewayDB:
    return GatewayDB(gateway.database)


@pytest.fixture(autouse=True)
def _fresh_fakes(fake: FakeOpenAI, anthropic_fake: FakeAnthropic) -> None:
    """Every test starts with the fakes' default behaviour and no recorded requests."""


@pytest.fixture
def client(gateway: Gateway) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key=KEY, base_url=gateway.url, max_retries=0, timeout=30) as c:
        yield c


@pytest.fixture
def http(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=30) as c:
        yield c


def assert_anthropic_error(response: httpx.Response, status: int, error_type: str, code: str) -> dict[str, Any]:
    """An error in Anthropic's shape (spec/anthropic.md §5), with relaygate's stable code beside it."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"type", "error", "request_id"}, body
    assert body["type"] == "error"
    assert body["request_id"] == response.headers["x-request-id"]
    error = body["error"]
    assert (error["type"], error["code"]) == (error_type, code), error
    assert isinstance(error["message"], str) and error["message"]
    return dict(error)


# --- keys ---------------------------------------------------------------------------------------

def test_the_key_is_accepted_as_bearer_from_the_sdk_and_as_x_api_key(
        gateway: Gateway, http: httpx.Client, anthropic_fake: FakeAnthropic, db: GatewayDB) -> None:
    """The current SDK sends ``Authorization: Bearer`` (and its own ``anthropic-version``); older clients
    and curl users send ``x-api-key``. Either way the upstream gets only the channel's key and version."""
    sdk_rid, raw_rid = new_rid("bearer"), new_rid("x-api-key")
    sent_headers: list[Any] = []
    with anthropic.Anthropic(api_key=KEY, base_url=gateway.url, max_retries=0, http_client=(
            anthropic.DefaultHttpxClient(timeout=30, event_hooks={"request": [
                lambda r: sent_headers.append(dict(r.headers))]}))) as sdk:
        message = sdk.messages.create(model=CLAUDE, max_tokens=64, messages=HELLO,
                                      extra_headers={"X-Request-Id": sdk_rid})
    assert sent_headers[0]["authorization"] == f"Bearer {KEY}" and "x-api-key" not in sent_headers[0]
    assert message.content[0].type == "text" and message.content[0].text == "Bonjour!"
    response = _post(http, {"model": CLAUDE, "max_tokens": 64, "messages": HELLO}, rid=raw_rid)
    assert response.status_code == 200 and response.json()["content"][0]["text"] == "Bonjour!"
    for sent in anthropic_fake.message_requests():
        assert sent.headers["x-api-key"] == UPSTREAM_KEY and "authorization" not in sent.headers
        assert sent.headers["anthropic-version"] == "2023-06-01"  # the channel's version, not the SDK's
        assert KEY not in str(sent.headers)
    assert len(anthropic_fake.message_requests()) == 2
    for rid in (sdk_rid, raw_rid):
        row = db.usage(rid)
        assert (row["key_name"], row["end_reason"], row["cost_nano"]) == ("main", "done",
                                                                          token_cost(11, 3, "3", "15"))


# --- count_tokens -------------------------------------------------------------------------------

def test_count_tokens_counts_offline_without_an_upstream_or_a_bill(client: anthropic.Anthropic,
                                                                   anthropic_fake: FakeAnthropic,
                                                                   db: GatewayDB) -> None:
    records = db.count_usage()
    messages: list[Any] = [{"role": "user", "content": "What is the weather in Lyon today, please?"},
                           {"role": "assistant", "content": "Let me look."}, {"role": "user", "content": "Thanks"}]
    tools: list[Any] = [{"name": "get_weather", "description": "Weather for a city",
                         "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}]
    counted = client.messages.count_tokens(model=CLAUDE, system="You are terse.", messages=messages, tools=tools)
    plain = client.messages.count_tokens(model=CLAUDE, messages=messages)
    expected = count_chat_prompt(messages, CLAUDE, tools) + count_text("You are terse.", CLAUDE)
    assert counted.input_tokens == expected
    assert plain.input_tokens == count_chat_prompt(messages, CLAUDE, None) < counted.input_tokens
    assert anthropic_fake.requests == []
    assert db.count_usage() == records


def test_count_tokens_refusals(client: anthropic.Anthropic, http: httpx.Client) -> None:
    with pytest.raises(anthropic.NotFoundError) as caught:
        client.messages.count_tokens(model="claude-9-imaginary", messages=HELLO)
    assert caught.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    auth = {"x-api-key": KEY, **VERSION}
    assert_anthropic_error(http.post("/v1/messages/count_tokens", json={"model": CLAUDE}, headers=auth), 400,
                           "invalid_request_error", "missing_messages")
    assert_anthropic_error(http.post("/v1/messages/count_tokens", json={"model": CLAUDE, "messages": HELLO},
                                     headers=VERSION), 401, "authentication_error", "missing_api_key")


# --- models -------------------------------------------------------------------------------------

def test_models_list_in_anthropic_shape(gateway: Gateway, client: anthropic.Anthropic, http: httpx.Client) -> None:
    ids = sorted(m.id for m in client.models.list())
    assert ids == sorted([CLAUDE, "claude-unpriced", "gpt-4o"])
    raw = http.get("/v1/models", headers={"x-api-key": LIMITED, **VERSION})
    assert raw.status_code == 200
    body = raw.json()
    assert set(body) == {"data", "has_more", "first_id", "last_id"}
    assert body["data"] == [{"type": "model", "id": CLAUDE, "display_name": CLAUDE,
                             "created_at": body["data"][0]["created_at"]}]
    assert (body["has_more"], body["first_id"], body["last_id"]) == (False, CLAUDE, CLAUDE)
    model = client.models.retrieve(CLAUDE)
    assert (model.id, model.type) == (CLAUDE, "model")
    # The same path without anthropic-version is OpenAI's list.
    openai_shape = http.get("/v1/models", headers={"Authorization": f"Bearer {LIMITED}"}).json()
    assert openai_shape["object"] == "list" and openai_shape["data"][0]["object"] == "model"


def test_model_retrieve_refusals(client: anthropic.Anthropic, http: httpx.Client) -> None:
    with pytest.raises(anthropic.NotFoundError):
        client.models.retrieve("claude-9-imaginary")
    hidden = http.get("/v1/models/gpt-4o", headers={"x-api-key": LIMITED, **VERSION})
    assert_anthropic_error(hidden, 404, "not_found_error", "model_not_found")
    assert_anthropic_error(http.get("/v1/models", headers={"x-api-key": "sk-nope-nope-nope", **VERSION}), 401,
                           "authentication_error", "invalid_api_key")


# --- refusals in Anthropic's shape --------------------------------------------------------------

def _post(http: httpx.Client, body: Any, *, key: str | None = KEY, rid: str | None = None) -> httpx.Response:
    headers = {**VERSION, "content-type": "application/json"}
    if key:
        headers["x-api-key"] = key
    if rid:
        headers["X-Request-Id"] = rid
    content = body if isinstance(body, bytes) else None
    return http.post("/v1/messages", content=content, json=None if content is not None else body, headers=headers)


@pytest.mark.parametrize(("body", "status", "error_type", "code"), [
    (b'{"model": "claude-sonnet-4-20250514", "max_tokens": 5, "messages": [', 400, "invalid_request_error",
     "invalid_json"),
    (b"", 400, "invalid_request_error", "invalid_json"),
    (b"[1, 2]", 400, "invalid_request_error", "invalid_request"),
    ({"model": CLAUDE, "messages": HELLO}, 400, "invalid_request_error", "missing_field"),
    ({"model": CLAUDE, "max_tokens": "5", "messages": HELLO}, 400, "invalid_request_error", "invalid_type"),
    ({"model": CLAUDE, "max_tokens": 5}, 400, "invalid_request_error", "missing_messages"),
    ({"model": CLAUDE, "max_tokens": 5, "messages": []}, 400, "invalid_request_error", "invalid_type"),
    ({"max_tokens": 5, "messages": HELLO}, 400, "invalid_request_error", "missing_model"),
    ({"model": CLAUDE, "max_tokens": 5, "messages": HELLO, "stream": "yes"}, 400, "invalid_request_error",
     "invalid_type"),
    ({"model": "claude-9-imaginary", "max_tokens": 5, "messages": HELLO}, 404, "not_found_error",
     "model_not_found"),
    ({"model": "claude-unpriced", "max_tokens": 5, "messages": HELLO}, 403, "permission_error",
     "model_price_missing"),
], ids=["malformed-json", "empty-body", "not-an-object", "no-max-tokens", "max-tokens-string", "no-messages",
        "empty-messages", "no-model", "stream-not-bool", "unknown-model", "unpriced-model"])
def test_bad_requests_get_anthropic_errors_and_no_record(http: httpx.Client, anthropic_fake: FakeAnthropic,
                                                         db: GatewayDB, body: Any, status: int, error_type: str,
                                                         code: str) -> None:
    rid = new_rid("bad")
    assert_anthropic_error(_post(http, body, rid=rid), status, error_type, code)
    assert anthropic_fake.requests == []
    assert db.usage_rows(rid) == []


@pytest.mark.parametrize(("key", "code"), [("sk-wrong-key-0000000000", "invalid_api_key"),
                                           (None, "missing_api_key")])
def test_a_bad_or_missing_key_is_401_authentication_error(http: httpx.Client, anthropic_fake: FakeAnthropic,
                                                          key: str | None, code: str) -> None:
    error = assert_anthropic_error(_post(http, {"model": CLAUDE, "max_tokens": 5, "messages": HELLO}, key=key), 401,
                                   "authentication_error", code)
    assert "sk-wrong-key-0000000000" not in error["message"]
    assert anthropic_fake.requests == []


def test_a_key_without_quota_left_is_429(gateway: Gateway, anthropic_fake: FakeAnthropic, db: GatewayDB) -> None:
    rid = new_rid("quota")
    with (anthropic.Anthropic(api_key=TINY, base_url=gateway.url, max_retries=0, timeout=30) as sdk,
          pytest.raises(anthropic.RateLimitError) as caught):
        sdk.messages.create(model=CLAUDE, max_tokens=4096, messages=HELLO, extra_headers={"X-Request-Id": rid})
    assert caught.value.status_code == 429
    body: Any = caught.value.body
    assert body["type"] == "error"
    assert (body["error"]["type"], body["error"]["code"]) == ("billing_error", "insufficient_quota")
    assert anthropic_fake.requests == []
    assert db.usage_rows(rid) == []
    assert db.key_used("tiny") == 0


def test_the_reservation_follows_the_clients_max_tokens(http: httpx.Client) -> None:
    small = _post(http, {"model": CLAUDE, "max_tokens": 16, "messages": HELLO}, key=CAPPED)
    assert small.status_code == 200, small.text
    large = _post(http, {"model": CLAUDE, "max_tokens": 4096, "messages": HELLO}, key=CAPPED)
    assert_anthropic_error(large, 429, "billing_error", "insufficient_quota")


def test_a_model_the_key_may_not_use_is_refused(gateway: Gateway, fake: FakeOpenAI) -> None:
    with (anthropic.Anthropic(api_key=LIMITED, base_url=gateway.url, max_retries=0, timeout=30) as sdk,
          pytest.raises(anthropic.PermissionDeniedError) as caught):
        sdk.messages.create(model="gpt-4o", max_tokens=5, messages=HELLO)
    body: Any = caught.value.body
    assert (body["error"]["type"], body["error"]["code"]) == ("permission_error", "model_not_allowed")
    assert fake.requests == []


def test_sdk_exceptions_match_the_statuses(client: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(model="claude-9-imaginary", max_tokens=5, messages=HELLO)
    with pytest.raises(anthropic.PermissionDeniedError) as unpriced:
        client.messages.create(model="claude-unpriced", max_tokens=5, messages=HELLO)
    assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert "claude-9-imaginary" in missing.value.message
    assert unpriced.value.body["error"]["code"] == "model_price_missing"  # type: ignore[index]


def test_unknown_anthropic_paths_are_404(http: httpx.Client) -> None:
    response = http.post("/v1/messages/batches", json={}, headers={"x-api-key": KEY, **VERSION})
    assert response.status_code == 404
