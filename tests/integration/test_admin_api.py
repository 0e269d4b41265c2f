"""The admin API against a real relaygate process: auth, keys, channels, prices, usage, bad input."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from openai import OpenAI

from relaygate.billing.money import ceil_div, nano_to_usd
from relaygate.surfaces.admin import ROUTES
from tests.helpers.gateway import Gateway

PRICE_IN_NANO = 2_500_000_000  # 2.5 USD per 1M input tokens
PRICE_OUT_NANO = 10_000_000_000  # 10 USD per 1M output tokens
CONFIG: dict[str, Any] = {
    "channels": [{"name": "mock", "type": "mock", "models": ["mock-gpt", "mock-mini"], "mock_chunk_delay_ms": 0}],
    "prices": {"mock-gpt": {"input": "2.5", "output": 10}, "mock-mini": {"input": "0.15", "output": "0.6"}},
    "keys": [{"name": "config-key", "key": "sk-config-key-for-admin-tests"}],
}
UPSTREAM_SECRET = "sk-upstream-secret-DO-NOT-LEAK-0123456789"


@pytest.fixture
def gateway(gateway_factory: type[Gateway], tmp_path: Path) -> Gateway:
    return gateway_factory(tmp_path, CONFIG).start()


@pytest.fixture
def admin(gateway: Gateway) -> Iterator[httpx.Client]:
    with gateway.admin() as client:
        yield client


@pytest.fixture(scope="module")
def rejecting_admin(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """One gateway shared by tests whose requests are all refused (so they change nothing)."""
    with Gateway(tmp_path_factory.mktemp("rejecting"), CONFIG) as gateway, gateway.admin() as client:
        yield client


def chat_client(gateway: Gateway, key: str) -> OpenAI:
    return OpenAI(base_url=gateway.url + "/v1", api_key=key, max_retries=0)


def create_key(admin: httpx.Client, **body: Any) -> dict[str, Any]:
    response = admin.post("/api/keys", json={"name": "k", **body})
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


def ask(client: OpenAI, model: str = "mock-gpt", text: str = "hello there") -> str:
    """One chat; returns the gateway's request id."""
    raw = client.chat.completions.with_raw_response.create(model=model, messages=[{"role": "user", "content": text}])
    raw.parse()
    return raw.headers["x-request-id"]


def expected_cost(record: dict[str, Any], price_in: int = PRICE_IN_NANO, price_out: int = PRICE_OUT_NANO) -> int:
    return ceil_div(record["input_tokens"] * price_in + record["output_tokens"] * price_out, 1_000_000)


def assert_error(response: httpx.Response, status: int, code: str, param: str | None = None) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["code"] == code, error
    if param is not None:
        assert error["param"] == param, error


# --- auth ---------------------------------------------------------------------------------------

def test_every_endpoint_needs_the_admin_key(gateway: Gateway) -> None:
    concrete = {"{id}": "1", "{pattern:.+}": "gpt-4o", "{request_id}": "req_x"}
    for method, path, _ in ROUTES:
        if path == "/api/openapi.json":
            continue
        for placeholder, value in concrete.items():
            path = path.replace(placeholder, value)
        url = gateway.url + path
        missing = httpx.request(method, url, json={})
        assert_error(missing, 401, "missing_api_key")
        assert missing.headers["WWW-Authenticate"].startswith("Bearer")
        wrong = httpx.request(method, url, json={}, headers={"Authorization": "Bearer rg-admin-wrong"})
        assert_error(wrong, 401, "invalid_api_key")
        client_key = httpx.request(method, url, headers={"Authorization": "Bearer sk-config-key-for-admin-tests"})
        assert_error(client_key, 401, "invalid_api_key")


def test_openapi_document_is_public_and_lists_every_endpoint(gateway: Gateway) -> None:
    response = httpx.get(gateway.url + "/api/openapi.json")
    assert response.status_code == 200
    document = response.json()
    assert document["openapi"].startswith("3.1")
    for method, path, _ in ROUTES:
        documented = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", path)  # {pattern:<regex>} is {pattern}
        assert method.lower() in document["paths"][documented], (method, path)
    assert document["paths"]["/api/openapi.json"]["get"]["security"] == []
    for method, path in (("post", "/api/keys"), ("patch", "/api/keys/{id}"), ("post", "/api/channels")):
        assert "409" in document["paths"][path][method]["responses"], (method, path)


# --- keys and metering --------------------------------------------------------------------------

def test_created_key_is_metered_exactly(gateway: Gateway, admin: httpx.Client) -> None:
    created = create_key(admin, name="metered", quota_usd="0.5")
    assert created["key"].startswith("sk-") and created["hint"] != created["key"]
    assert created["key"] not in admin.get("/api/keys").text
    assert created["key"] not in admin.get(f"/api/keys/{created['id']}").text

    request_id = ask(chat_client(gateway, created["key"]))

    page = admin.get("/api/usage", params={"key_id": created["id"]}).json()
    assert len(page["data"]) == 1
    record = page["data"][0]
    assert record["request_id"] == request_id and record["end_reason"] == "done"
    assert record["input_tokens"] > 0 and record["output_tokens"] > 0
    cost = expected_cost(record)
    assert record["cost_nano"] == cost and record["cost_usd"] == nano_to_usd(cost)
    assert admin.get(f"/api/usage/{request_id}").json() == record

    key = admin.get(f"/api/keys/{created['id']}").json()
    assert key["quota_usd"] == "0.5" and key["quota_nano"] == 500_000_000
    assert key["used_nano"] == cost and key["used_usd"] == nano_to_usd(cost)
    assert key["remaining_nano"] == 500_000_000 - cost and key["remaining_usd"] == nano_to_usd(500_000_000 - cost)


def test_usage_summary_per_key_model_and_day(gateway: Gateway, admin: httpx.Client) -> None:
    first, second = create_key(admin, name="one"), create_key(admin, name="two")
    ask(chat_client(gateway, first["key"]), "mock-gpt")
    ask(chat_client(gateway, first["key"]), "mock-gpt", "again")
    ask(chat_client(gateway, first["key"]), "mock-mini")
    ask(chat_client(gateway, second["key"]), "mock-gpt")
    records = admin.get("/api/usage").json()["data"]

    summary = admin.get("/api/usage/summary", params={"group_by": "key_id,model,day"}).json()
    assert summary["group_by"] == ["key_id", "model", "day"]
    groups = {(r["key_id"], r["model"], r["day"]): r for r in summary["data"]}
    assert {(k, m) for k, m, _ in groups} == {(first["id"], "mock-gpt"), (first["id"], "mock-mini"),
                                              (second["id"], "mock-gpt")}
    for (key_id, model, day), row in groups.items():
        mine = [r for r in records if (r["key_id"], r["model"], r["created_at"][:10]) == (key_id, model, day)]
        assert row["requests"] == len(mine)
        assert row["input_tokens"] == sum(r["input_tokens"] for r in mine)
        assert row["cost_nano"] == sum(r["cost_nano"] for r in mine)
        assert row["cost_usd"] == nano_to_usd(row["cost_nano"])
    assert summary["total"]["cost_nano"] == sum(r["cost_nano"] for r in records)

    only_first = admin.get("/api/usage/summary", params={"key_id": first["id"], "group_by": "model"}).json()
    assert [(r["model"], r["requests"]) for r in only_first["data"]] == [("mock-gpt", 2), ("mock-mini", 1)]


def test_disabled_key_is_refused_and_patch_restores_it(gateway: Gateway, admin: httpx.Client) -> None:
    created = create_key(admin, name="to-disable")
    client = chat_client(gateway, created["key"])
    ask(client)

    disabled = admin.post(f"/api/keys/{created['id']}/disable")
    assert disabled.status_code == 200 and disabled.json()["enabled"] is False
    refused = httpx.post(gateway.url + "/v1/chat/completions", headers={"Authorization": f"Bearer {created['key']}"},
                         json={"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]})
    assert_error(refused, 401, "key_disabled")

    patched = admin.patch(f"/api/keys/{created['id']}", json={"enabled": True, "models": ["mock-mini"]})
    assert patched.status_code == 200 and patched.json()["models"] == ["mock-mini"]
    ask(client, "mock-mini")
    not_allowed = httpx.post(gateway.url + "/v1/chat/completions",
                             headers={"Authorization": f"Bearer {created['key']}"},
                             json={"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]})
    assert_error(not_allowed, 403, "model_not_allowed")


def test_key_patch_changes_quota_exactly(admin: httpx.Client) -> None:
    created = create_key(admin, name="patchable", quota_usd=1, ip_allow=["10.0.0.0/8"], expires_at=4_000_000_000)
    assert created["ip_allow"] == ["10.0.0.0/8"] and created["expires_at"] == 4_000_000_000
    patched = admin.patch(f"/api/keys/{created['id']}", json={"quota_usd": "0.000000001", "name": "renamed",
                                                              "ip_allow": [], "expires_at": None}).json()
    assert (patched["quota_nano"], patched["quota_usd"], patched["name"]) == (1, "0.000000001", "renamed")
    assert patched["ip_allow"] == [] and patched["expires_at"] is None
    unlimited = admin.patch(f"/api/keys/{created['id']}", json={"quota_usd": None}).json()
    assert unlimited["quota_usd"] is None and unlimited["remaining_usd"] is None
    listed = admin.get("/api/keys").json()["data"]
    assert [k["name"] for k in listed] == ["config-key", "renamed"]
    assert all("key" not in k and "key_hash" not in k for k in listed)


def test_key_names_are_unique(admin: httpx.Client) -> None:
    # The config file's key counts too, and a disabled key keeps its name.
    assert_error(admin.post("/api/keys", json={"name": "config-key"}), 409, "conflict", "name")
    alice = create_key(admin, name="alice")
    assert admin.post(f"/api/keys/{alice['id']}/disable").status_code == 200
    assert_error(admin.post("/api/keys", json={"name": " alice "}), 409, "conflict", "name")
    bob = create_key(admin, name="bob")
    refused = admin.patch(f"/api/keys/{bob['id']}", json={"name": "alice", "quota_usd": "3"})
    assert_error(refused, 409, "conflict", "name")
    assert refused.json()["error"]["message"] == "A key named 'alice' already exists."
    assert_error(admin.patch(f"/api/keys/{bob['id']}", json={"name": "config-key"}), 409, "conflict", "name")
    assert admin.get(f"/api/keys/{bob['id']}").json()["quota_usd"] is None  # nothing of a refused PATCH applied

    assert admin.patch(f"/api/keys/{bob['id']}", json={"name": "bob", "quota_usd": "3"}).status_code == 200
    assert admin.patch(f"/api/keys/{alice['id']}", json={"name": "alice-old"}).json()["name"] == "alice-old"
    assert admin.patch(f"/api/keys/{bob['id']}", json={"name": "alice"}).json()["name"] == "alice"
    assert [k["name"] for k in admin.get("/api/keys").json()["data"]] == ["config-key", "alice-old", "alice"]


def test_a_config_key_may_reuse_the_name_of_an_api_key(gateway: Gateway) -> None:
    """Config keys are matched by their hash: a file key named like an API key is applied at start."""
    with gateway.admin() as admin:
        made = create_key(admin, name="team")
    gateway.stop()
    declared = {"name": "team", "key": "sk-config-team-key-for-admin-tests"}
    gateway.config["keys"] = [*CONFIG["keys"], declared]
    gateway.start()
    with gateway.admin() as admin:
        keys = admin.get("/api/keys").json()["data"]
        assert [(k["name"], k["source"]) for k in keys] == [("config-key", "config"), ("team", "api"),
                                                            ("team", "config")]
        assert_error(admin.post("/api/keys", json={"name": "team"}), 409, "conflict", "name")
    ask(chat_client(gateway, made["key"]))
    ask(chat_client(gateway, declared["key"]))


# --- channels -----------------------------------------------------------------------------------

def test_channel_secret_is_never_returned(gateway: Gateway, admin: httpx.Client) -> None:
    bodies: list[str] = []

    def call(method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = admin.request(method, path, **kwargs)
        bodies.append(response.text)
        assert response.status_code < 300, response.text
        payload: dict[str, Any] = response.json()
        return payload

    created = call("POST", "/api/channels", json={
        "name": "secret-upstream", "type": "openai", "base_url": "http://127.0.0.1:1", "api_key": UPSTREAM_SECRET,
        "models": ["remote-*"], "model_map": {"alias": "remote-1"}, "priority": 2, "weight": 3,
    })
    assert created["api_key_hint"] == "sk-up…6789"
    assert created["health"] == {"consecutive_failures": 0, "circuit_open": False}
    channel_id = created["id"]
    call("GET", f"/api/channels/{channel_id}")
    call("GET", "/api/channels")
    call("PATCH", f"/api/channels/{channel_id}", json={"api_key": UPSTREAM_SECRET + "-v2", "priority": 1})
    call("POST", f"/api/channels/{channel_id}/test")
    disabled = call("POST", f"/api/channels/{channel_id}/disable")
    assert disabled["enabled"] is False and disabled["priority"] == 1
    call("GET", "/api/openapi.json")
    for body in bodies:
        assert UPSTREAM_SECRET not in body
        assert "api_key_enc" not in body
    assert UPSTREAM_SECRET not in gateway.logs()


def test_channel_test_reports_ok_and_failures_without_leaks(admin: httpx.Client) -> None:
    mock = next(c for c in admin.get("/api/channels").json()["data"] if c["name"] == "mock")
    ok = admin.post(f"/api/channels/{mock['id']}/test").json()
    assert ok["ok"] is True and ok["status"] == 200 and ok["error"] is None and ok["latency_ms"] >= 0

    dead = admin.post("/api/channels", json={"name": "dead", "type": "openai", "base_url": "http://127.0.0.1:1",
                                             "api_key": UPSTREAM_SECRET, "models": ["x"]}).json()
    result = admin.post(f"/api/channels/{dead['id']}/test")
    assert result.status_code == 200
    failed = result.json()
    assert failed["ok"] is False and failed["status"] is None and failed["error"]
    assert "127.0.0.1" not in result.text and UPSTREAM_SECRET not in result.text


class _Refusing(BaseHTTPRequestHandler):
    """An upstream that refuses every call and echoes secrets in its error text, as some do."""

    def do_GET(self) -> None:
        body = (b'{"error": {"message": "Incorrect API key provided: ' + UPSTREAM_SECRET.encode()
                + b'. See https://internal.example/docs", "type": "invalid_request_error"}}')
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_channel_test_scrubs_an_upstream_refusal(admin: httpx.Client) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Refusing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        channel = admin.post("/api/channels", json={"name": "refusing", "type": "openai", "base_url": url,
                                                    "api_key": UPSTREAM_SECRET, "models": ["x"]}).json()
        result = admin.post(f"/api/channels/{channel['id']}/test")
    finally:
        server.shutdown()
        server.server_close()
    failed = result.json()
    assert failed["ok"] is False and failed["status"] == 401
    assert failed["error"].startswith("the upstream answered HTTP 401: Incorrect API key provided")
    assert UPSTREAM_SECRET not in result.text and "internal.example" not in result.text


def test_channel_and_price_created_by_api_serve_at_once(gateway: Gateway, admin: httpx.Client) -> None:
    created = admin.post("/api/channels", json={"name": "second-mock", "type": "mock", "models": ["fresh-model"],
                                                "options": {"mock_chunk_delay_ms": 0}})
    assert created.status_code == 201, created.text
    price = admin.put("/api/prices/fresh-*", json={"per_call": "0.0123"})
    assert price.status_code == 200 and price.json()["per_call"] == "0.0123"
    key = create_key(admin, name="fresh")
    request_id = ask(chat_client(gateway, key["key"]), "fresh-model")
    record = admin.get(f"/api/usage/{request_id}").json()
    assert record["channel_name"] == "second-mock" and record["cost_nano"] == 12_300_000


# --- prices -------------------------------------------------------------------------------------

def test_prices_put_list_and_delete(admin: httpx.Client) -> None:
    put = admin.put("/api/prices/meta/llama-*", json={"input": 0.1, "output": "0.000000001", "cached_input": "0"})
    assert put.status_code == 200, put.text
    assert put.json() | {"updated_at": 0} == {
        "model": "meta/llama-*", "input": "0.1", "output": "0.000000001", "cached_input": "0",
        "cache_write": None, "input_image": None, "per_call": None, "per_image": None, "source": "api",
        "updated_at": 0}
    listed = {p["model"]: p for p in admin.get("/api/prices").json()["data"]}
    assert listed["meta/llama-*"]["output"] == "0.000000001"
    assert listed["mock-gpt"] | {"updated_at": 0} == {
        "model": "mock-gpt", "input": "2.5", "output": "10", "cached_input": None, "cache_write": None,
        "input_image": None, "per_call": None, "per_image": None, "source": "config", "updated_at": 0}

    assert_error(admin.put("/api/prices/x", json={"input": "0.0000000001"}), 400, "invalid_value", "input")
    assert_error(admin.put("/api/prices/x", json={"input": -1}), 400, "invalid_value", "input")
    assert_error(admin.put("/api/prices/x", json={"input": True}), 400, "invalid_type", "input")
    assert_error(admin.put("/api/prices/x", json={"inptu": 1}), 400, "unknown_field", "inptu")
    assert_error(admin.put("/api/prices/x", json={}), 400, "missing_field")

    deleted = admin.delete("/api/prices/meta/llama-*")
    assert deleted.status_code == 200 and deleted.json() == {"model": "meta/llama-*", "deleted": True}
    assert_error(admin.delete("/api/prices/meta/llama-*"), 404, "not_found", "pattern")
    assert "meta/llama-*" not in {p["model"] for p in admin.get("/api/prices").json()["data"]}


# --- usage pages --------------------------------------------------------------------------------

def test_usage_pages_with_a_cursor_and_filters(gateway: Gateway, admin: httpx.Client) -> None:
    key = create_key(admin, name="pager")
    client = chat_client(gateway, key["key"])
    sent = [ask(client, text=f"message {i}") for i in range(5)]

    seen: list[dict[str, Any]] = []
    params: dict[str, Any] = {"key_id": key["id"], "limit": 2}
    pages = 0
    while True:
        page = admin.get("/api/usage", params=params).json()
        pages += 1
        seen.extend(page["data"])
        if page["next_cursor"] is None:
            assert page["has_more"] is False
            break
        assert page["has_more"] is True and page["next_cursor"] == page["data"][-1]["id"]
        params["cursor"] = page["next_cursor"]
    assert pages == 3
    assert [r["request_id"] for r in seen] == sent[::-1]
    ids = [r["id"] for r in seen]
    assert ids == sorted(ids, reverse=True)

    first_ms = seen[-1]["created_at_ms"]
    since_iso = datetime.fromtimestamp(first_ms / 1000, UTC).isoformat()
    assert len(admin.get("/api/usage", params={"key_id": key["id"], "since": since_iso}).json()["data"]) == 5
    assert admin.get("/api/usage", params={"key_id": key["id"], "until": first_ms // 1000}).json()["data"] == []
    assert admin.get("/api/usage", params={"model": "nope"}).json()["data"] == []
    assert admin.get("/api/usage", params={"request_id": sent[2]}).json()["data"][0]["request_id"] == sent[2]


def test_usage_query_errors(rejecting_admin: httpx.Client) -> None:
    admin = rejecting_admin
    assert_error(admin.get("/api/usage", params={"limit": 0}), 400, "invalid_value", "limit")
    assert_error(admin.get("/api/usage", params={"limit": 1001}), 400, "invalid_value", "limit")
    assert_error(admin.get("/api/usage", params={"limit": "ten"}), 400, "invalid_type", "limit")
    assert_error(admin.get("/api/usage", params={"cursor": "-3"}), 400, "invalid_type", "cursor")
    assert_error(admin.get("/api/usage", params={"since": "yesterday"}), 400, "invalid_value", "since")
    assert_error(admin.get("/api/usage", params={"until": "1e999"}), 400, "invalid_value", "until")
    assert_error(admin.get("/api/usage", params={"key": "1"}), 400, "unknown_parameter", "key")
    assert_error(admin.get("/api/usage/summary", params={"group_by": "key_id,hour"}), 400, "invalid_value",
                 "group_by")
    assert_error(admin.get("/api/usage/req_missing"), 404, "not_found", "request_id")


@pytest.mark.parametrize("path", ["/api/usage", "/api/usage/summary"])
@pytest.mark.parametrize("param", ["key_id", "channel_id"])
def test_an_empty_numeric_filter_is_refused(rejecting_admin: httpx.Client, path: str, param: str) -> None:
    """``key_id=`` is not an integer (as the OpenAPI description says), not a missing filter."""
    assert_error(rejecting_admin.get(f"{path}?{param}="), 400, "invalid_type", param)


@pytest.mark.parametrize("param", ["limit", "cursor"])
def test_an_empty_page_parameter_is_refused(rejecting_admin: httpx.Client, param: str) -> None:
    assert_error(rejecting_admin.get(f"/api/usage?{param}="), 400, "invalid_type", param)


def test_a_price_pattern_with_a_newline_is_answered_by_the_admin_api(rejecting_admin: httpx.Client) -> None:
    """``{pattern}`` takes any characters: a newline reaches the handler and is refused in the API's shape."""
    assert_error(rejecting_admin.put("/api/prices/%0A", json={"input": 1}), 400, "invalid_value", "pattern")
    assert_error(rejecting_admin.delete("/api/prices/%0A"), 404, "not_found", "pattern")
    assert_error(rejecting_admin.delete("/api/prices/a%0Ab"), 404, "not_found", "pattern")


# --- bad input ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("body", "code", "param"), [
    ({"name": "x", "ip_allow": ["10.0.0.0/33"]}, "invalid_value", "ip_allow"),
    ({"name": "x", "ip_allow": "10.0.0.0/8"}, "invalid_type", "ip_allow"),
    ({"name": "x", "quota_usd": "-1"}, "invalid_value", "quota_usd"),
    ({"name": "x", "quota_usd": -0.5}, "invalid_value", "quota_usd"),
    ({"name": "x", "quota_usd": "0.0000000001"}, "invalid_value", "quota_usd"),
    ({"name": "x", "quota_usd": "ten"}, "invalid_value", "quota_usd"),
    ({"name": "x", "quota_usd": True}, "invalid_type", "quota_usd"),
    ({"name": "x", "quota_usd": "1e30"}, "invalid_value", "quota_usd"),
    ({"name": "x", "models": []}, "invalid_value", "models"),
    ({"name": "x", "expires_at": "tomorrow"}, "invalid_type", "expires_at"),
    ({"name": "x", "expires_at": -1}, "invalid_value", "expires_at"),
    ({"name": "x", "enabled": "yes"}, "invalid_type", "enabled"),
    ({"name": ""}, "invalid_value", "name"),
    ({"name": 5}, "invalid_type", "name"),
    ({"quota_usd": 1}, "missing_field", "name"),
    ({"name": "x", "key": "sk-chosen"}, "unknown_field", "key"),
])
def test_bad_key_bodies(rejecting_admin: httpx.Client, body: dict[str, Any], code: str, param: str) -> None:
    assert_error(rejecting_admin.post("/api/keys", json=body), 400, code, param)
    if code != "missing_field":  # the same field is refused by PATCH (key 1 is the config key)
        patch = {k: v for k, v in body.items() if k == param}
        assert_error(rejecting_admin.patch("/api/keys/1", json=patch), 400, code, param)


@pytest.mark.parametrize(("body", "code", "param"), [
    ({"name": "c", "type": "bard", "base_url": "http://x"}, "invalid_value", "type"),
    ({"name": "c", "type": "openai"}, "missing_field", "base_url"),
    ({"name": "c", "type": "openai", "base_url": "ftp://host"}, "invalid_value", "base_url"),
    ({"name": "c", "type": "openai", "base_url": "http://[::1"}, "invalid_value", "base_url"),
    ({"name": "c", "type": "openai", "base_url": "http://h:99999"}, "invalid_value", "base_url"),
    ({"name": "c", "type": "mock", "weight": -1}, "invalid_value", "weight"),
    ({"name": "c", "type": "mock", "priority": 2**40}, "invalid_value", "priority"),
    ({"name": "c", "type": "mock", "priority": 1.5}, "invalid_type", "priority"),
    ({"name": "c", "type": "mock", "models": "gpt-4o"}, "invalid_type", "models"),
    ({"name": "c", "type": "mock", "model_map": {"a": 1}}, "invalid_type", "model_map"),
    ({"name": "c", "type": "mock", "options": []}, "invalid_type", "options"),
    ({"name": "c", "type": "mock", "api_key": 123}, "invalid_type", "api_key"),
    ({"type": "mock"}, "missing_field", "name"),
    ({"name": "c", "type": "mock", "colour": "red"}, "unknown_field", "colour"),
])
def test_bad_channel_bodies(rejecting_admin: httpx.Client, body: dict[str, Any], code: str, param: str) -> None:
    assert_error(rejecting_admin.post("/api/channels", json=body), 400, code, param)


@pytest.mark.parametrize(("body", "param", "message"), [
    ({"name": "c", "type": "mock", "model": ["m"]}, "model", "Unknown field 'model' (did you mean 'models'?)"),
    ({"name": "c", "type": "mock", "options": {"mock_chunk_delay": 0}}, "options",
     "unknown option of mock channels 'mock_chunk_delay' (did you mean 'mock_chunk_delay_ms'?)"),
    ({"name": "c", "type": "openai", "base_url": "http://h", "options": {"api_version": "x"}}, "options",
     "channels of type openai take no options; 'api_version' is unknown"),
    ({"name": "c", "type": "opneai", "base_url": "http://h"}, "type", "(did you mean 'openai'?)"),
    ({"name": "c", "type": "openai", "base_url": "https://api.openai.com/v1/chat/completions"}, "base_url",
     "'base_url' must be the upstream's root"),
    ({"name": "c", "type": "gemini", "base_url": "https://g.example/v1beta/models/m:generateContent"}, "base_url",
     "'base_url' must be the upstream's root"),
])
def test_channel_typos_name_the_closest_valid_field(rejecting_admin: httpx.Client, body: dict[str, Any], param: str,
                                                     message: str) -> None:
    response = rejecting_admin.post("/api/channels", json=body)
    assert_error(response, 400, "unknown_field" if param == "model" else "invalid_value", param)
    assert message in response.json()["error"]["message"]
    patch = rejecting_admin.patch("/api/channels/1", json={k: v for k, v in body.items() if k == param})
    assert patch.status_code == 400 and patch.json()["error"]["param"] == param


def test_price_typos_name_the_closest_valid_field(rejecting_admin: httpx.Client) -> None:
    response = rejecting_admin.put("/api/prices/x", json={"ouput": 1})
    assert_error(response, 400, "unknown_field", "ouput")
    assert "(did you mean 'output'?)" in response.json()["error"]["message"]


def test_malformed_requests_and_conflicts(admin: httpx.Client) -> None:
    raw = {"Content-Type": "application/json"}
    assert_error(admin.post("/api/keys", content=b'{"name": ', headers=raw), 400, "invalid_json")
    assert_error(admin.post("/api/keys", content=b"", headers=raw), 400, "invalid_json")
    assert_error(admin.post("/api/keys", json=["name"]), 400, "invalid_request")
    assert_error(admin.patch("/api/channels/1", content=b"\xff\xfe", headers=raw), 400, "invalid_json")
    assert_error(admin.post("/api/keys", content=b"x" * (2 * 1024 * 1024), headers=raw), 413, "body_too_large")

    assert_error(admin.post("/api/channels", json={"name": "mock", "type": "mock"}), 409, "conflict", "name")
    other = admin.post("/api/channels", json={"name": "other", "type": "mock"}).json()
    assert_error(admin.patch(f"/api/channels/{other['id']}", json={"name": "mock"}), 409, "conflict", "name")
    assert_error(admin.patch(f"/api/channels/{other['id']}", json={"type": "openai"}), 400, "missing_field",
                 "base_url")

    for path in ("/api/keys/999", "/api/keys/abc", "/api/keys/99999999999999999999", "/api/channels/999"):
        assert_error(admin.get(path), 404, "not_found")
    assert_error(admin.patch("/api/keys/999", json={"enabled": False}), 404, "not_found")
    assert_error(admin.post("/api/channels/999/test"), 404, "not_found")
    assert_error(admin.post("/api/keys/999/disable"), 404, "not_found")
