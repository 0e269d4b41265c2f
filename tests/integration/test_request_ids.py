"""A client's request id is the client's business: two keys sending the same ``X-Request-Id`` (or one key
sending its own twice) on every surface each get their answer, are billed to their own key exactly once,
and their records are told apart by the id relaygate made (issue 9, item 3).

Every response carries relaygate's own ``X-Request-Id`` (``req_…``, the key of the usage record and the
task) and echoes the client's as ``X-Client-Request-Id``; the client's id is stored beside it."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import Gateway

ALICE = "sk-alice-request-ids-0123456789"
BOB = "sk-bob-request-ids-0123456789"
SHARED = "shared-id"
PRICES = {"mock-gpt": 1_000_000, "mock-embed": 2_000_000, "mock-image": 10_000_000, "mj_imagine": 100_000_000}
CONFIG = {
    "mj_poll_s": 0.2,
    "task_poll_s": 0.2,
    "channels": [
        {"name": "mock", "type": "mock", "models": ["mock-gpt", "mock-embed", "mock-image"], "mock_chunk_delay_ms": 0},
        {"name": "mj", "type": "midjourney", "models": ["mj_*"], "options": {"mock": True}},
    ],
    "prices": {"mock-gpt": {"per_call": "0.001"}, "mock-embed": {"per_call": "0.002"},
               "mock-image": {"per_image": "0.01"}, "mj_imagine": {"per_call": "0.1"}},
    "keys": [{"name": "alice", "key": ALICE, "quota_usd": "5"}, {"name": "bob", "key": BOB, "quota_usd": "5"}],
}
CHAT = {"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}]}

Call = Callable[[httpx.Client, dict[str, str]], httpx.Response]


def _openai(path: str, body: dict[str, Any]) -> Call:
    return lambda http, headers: http.post(path, json=body, headers=headers)


def _chat_stream(http: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    with http.stream("POST", "/v1/chat/completions", json={**CHAT, "stream": True}, headers=headers) as response:
        body = response.read()
    assert b"data: [DONE]" in body, body
    return response


def _anthropic(http: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    key = http.headers["Authorization"].removeprefix("Bearer ")
    return http.post("/v1/messages", json={**CHAT, "max_tokens": 32},
                     headers={**headers, "x-api-key": key, "anthropic-version": "2023-06-01"})


def _gemini(http: httpx.Client, headers: dict[str, str]) -> httpx.Response:
    key = http.headers["Authorization"].removeprefix("Bearer ")
    return http.post("/v1beta/models/mock-gpt:generateContent", json={"contents": [{"parts": [{"text": "hi"}]}]},
                     headers={**headers, "x-goog-api-key": key})


SURFACES: dict[str, tuple[Call, int]] = {  # each call and what it costs
    "chat": (_openai("/v1/chat/completions", CHAT), PRICES["mock-gpt"]),
    "chat-stream": (_chat_stream, PRICES["mock-gpt"]),
    "anthropic": (_anthropic, PRICES["mock-gpt"]),
    "gemini": (_gemini, PRICES["mock-gpt"]),
    "embeddings": (_openai("/v1/embeddings", {"model": "mock-embed", "input": "x"}), PRICES["mock-embed"]),
    "images": (_openai("/v1/images/generations", {"model": "mock-image", "prompt": "x"}), PRICES["mock-image"]),
    "images-async": (_openai("/v1/images/generations?async=true", {"model": "mock-image", "prompt": "x"}),
                     PRICES["mock-image"]),
    "mj-imagine": (_openai("/mj/submit/imagine", {"prompt": "a lighthouse"}), PRICES["mj_imagine"]),
}


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: type[Gateway], tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    return module_gateway_factory(Path(tmp_path_factory.mktemp("request-ids")), CONFIG).start()


def _wait_task(http: httpx.Client, surface: str, response: httpx.Response) -> None:
    """Async work is billed when it ends: wait for that."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if surface == "images-async":
            status = http.get(f"/v1/images/tasks/{response.json()['task_id']}").json()["data"]["status"]
        else:
            status = http.get(f"/mj/task/{response.json()['result']}/fetch").json()["status"]
        if status in ("SUCCESS", "FAILURE"):
            assert status == "SUCCESS", (surface, status)
            return
        time.sleep(0.1)
    raise AssertionError(f"{surface}: the task did not end")


@pytest.mark.parametrize("surface", list(SURFACES))
def test_two_keys_reusing_one_request_id(gateway: Gateway, surface: str) -> None:
    send, price = SURFACES[surface]
    db = GatewayDB(gateway.database)
    shared = f"{SHARED}-{surface}"
    before = {name: db.key_used(name) for name in ("alice", "bob")}
    # Alice twice (once under OpenAI's header name), Bob once: all three with the same client id.
    calls = [(ALICE, "alice", {"X-Request-Id": shared}), (BOB, "bob", {"X-Request-Id": shared}),
             (ALICE, "alice", {"X-Client-Request-Id": shared})]
    ours: list[tuple[str, str]] = []
    for key, name, headers in calls:
        with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as http:
            response = send(http, headers)
            assert response.status_code == 200, (surface, name, response.text)
            if surface == "mj-imagine":
                assert response.json()["code"] == 1, response.text
            if surface in ("images-async", "mj-imagine"):
                _wait_task(http, surface, response)
        assert response.headers["x-client-request-id"] == shared
        ours.append((response.headers["x-request-id"], name))

    ids = [rid for rid, _ in ours]
    assert len(set(ids)) == 3 and all(rid.startswith("req_") for rid in ids)
    deadline = time.monotonic() + 10
    while len(db.usage_rows(shared)) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    rows = db.usage_rows(shared)
    assert sorted(r["request_id"] for r in rows) == sorted(ids)  # one record per call, under relaygate's id
    for rid, name in ours:
        record = db.usage(rid)
        assert (record["key_name"], record["client_request_id"], record["cost_nano"]) == (name, shared, price)
    assert db.key_used("alice") - before["alice"] == 2 * price
    assert db.key_used("bob") - before["bob"] == price


def test_no_client_id_no_echo_and_admin_finds_either_id(gateway: Gateway) -> None:
    with httpx.Client(base_url=gateway.url, headers={"Authorization": f"Bearer {ALICE}"}, timeout=30) as http:
        plain = http.post("/v1/chat/completions", json=CHAT)
        unsafe = http.post("/v1/chat/completions", json=CHAT, headers={"X-Request-Id": "x" * 129})
        given = http.post("/v1/chat/completions", json=CHAT, headers={"X-Request-Id": "mine-42"})
        unknown = http.get("/v1/nothing-here", headers={"X-Request-Id": "mine-43"})
    for response in (plain, unsafe):
        assert response.headers["x-request-id"].startswith("req_")
        assert "x-client-request-id" not in response.headers
    assert unknown.status_code == 404 and unknown.headers["x-request-id"].startswith("req_")
    assert unknown.headers["x-client-request-id"] == "mine-43"
    with gateway.admin() as admin:
        by_ours = admin.get(f"/api/usage/{given.headers['x-request-id']}").json()
        by_theirs = admin.get("/api/usage", params={"client_request_id": "mine-42"}).json()["data"]
        by_filter = admin.get("/api/usage", params={"request_id": given.headers["x-request-id"]}).json()["data"]
    assert by_ours["client_request_id"] == "mine-42"
    assert [r["request_id"] for r in by_theirs] == [r["request_id"] for r in by_filter] == [by_ours["request_id"]]
