"""Graceful shutdown: SIGTERM lets in-flight calls finish, and their usage records are durable."""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import httpx
import orjson

from tests.fakes.clients import UPSTREAM_KEY, new_rid, token_cost
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import Gateway

KEY = "sk-shutdown-key-000001"
HELLO = [{"role": "user", "content": "Count slowly"}]
PIECES = tuple(f" {i}" for i in range(20))


def _config(fake: FakeOpenAI) -> dict[str, object]:
    return {
        "shutdown_timeout_s": 20,
        "channels": [{"name": "main", "type": "openai", "base_url": fake.channel_url("main"),
                      "api_key": UPSTREAM_KEY, "models": ["gpt-4o"]}],
        "prices": {"gpt-4o": {"input": 2.5, "output": 10}},
        "keys": [{"name": "k", "key": KEY}],
    }


def _stream(gateway: Gateway, rid: str, first_event: threading.Event) -> bytes:
    received = b""
    with httpx.Client(base_url=gateway.url, timeout=30) as http, http.stream(
            "POST", "/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO, "stream": True},
            headers={"Authorization": f"Bearer {KEY}", "X-Request-Id": rid}) as response:
        assert response.status_code == 200
        for piece in response.iter_raw():
            received += piece
            if b"data: " in received:
                first_event.set()
    return received


def _slow_json(gateway: Gateway, rid: str) -> httpx.Response:
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        return http.post("/v1/chat/completions",
                         json={"model": "gpt-4o", "messages": HELLO, "x_fake": {"delay_s": 1.0}},
                         headers={"Authorization": f"Bearer {KEY}", "X-Request-Id": rid})


def test_sigterm_drains_in_flight_calls_and_their_records_are_durable(
        gateway_factory: type[Gateway], fake: FakeOpenAI, tmp_path: Path) -> None:
    fake.set("main", content=PIECES, chunk_delay_s=0.1)  # a 2-second stream
    gateway = gateway_factory(tmp_path / "gw", _config(fake)).start()
    stream_rid, json_rid = new_rid("drain-stream"), new_rid("drain-json")
    first_event = threading.Event()
    with ThreadPoolExecutor(3) as pool:
        streamed: Future[bytes] = pool.submit(_stream, gateway, stream_rid, first_event)
        answered: Future[httpx.Response] = pool.submit(_slow_json, gateway, json_rid)
        assert first_event.wait(10)
        deadline = time.monotonic() + 10  # both calls must be in flight upstream before the SIGTERM
        while len(fake.chat_requests()) < 2:
            assert time.monotonic() < deadline, "the JSON call never reached the upstream"
            time.sleep(0.01)
        stopped: Future[int | None] = pool.submit(gateway.stop)  # SIGTERM, then wait for the exit
        body = streamed.result(30)
        response = answered.result(30)
        exit_code = stopped.result(30)
    assert exit_code == 0
    assert body.endswith(b"data: [DONE]\n\n")
    events = [orjson.loads(f[6:]) for f in body.split(b"\n\n") if f.startswith(b"data: {")]
    text = "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"])
    assert text == "".join(PIECES)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"] == "".join(PIECES)
    db = GatewayDB(gateway.database)  # read after the process has exited
    for rid, stream in ((stream_rid, True), (json_rid, False)):
        row = db.usage(rid)
        assert (row["end_reason"], row["stream"], row["usage_source"]) == ("done", int(stream), "upstream")
        assert (row["input_tokens"], row["output_tokens"]) == (11, len(PIECES))
        assert row["cost_nano"] == token_cost(11, len(PIECES), "2.5", "10")
    assert db.key_used("k") == 2 * token_cost(11, len(PIECES), "2.5", "10")


def test_no_new_call_is_served_once_draining(gateway_factory: type[Gateway], fake: FakeOpenAI,
                                             tmp_path: Path) -> None:
    fake.set("main", content=PIECES, chunk_delay_s=0.1)
    gateway = gateway_factory(tmp_path / "gw", _config(fake)).start()
    first_event = threading.Event()
    with ThreadPoolExecutor(2) as pool:
        streamed = pool.submit(_stream, gateway, new_rid("drain"), first_event)
        assert first_event.wait(10)
        stopped = pool.submit(gateway.stop)
        late: httpx.Response | None = None
        while not streamed.done():
            try:
                with httpx.Client(base_url=gateway.url, timeout=5) as http:
                    late = http.post("/v1/chat/completions", json={"model": "gpt-4o", "messages": HELLO},
                                     headers={"Authorization": f"Bearer {KEY}"})
            except httpx.TransportError:
                late = None  # the listener is closed: refused, as it should be
                break
            if late.status_code != 200:
                break
        assert streamed.result(30).endswith(b"data: [DONE]\n\n")
        assert stopped.result(30) == 0
    if late is not None:  # a request that still reached the process is turned away, not served
        assert late.status_code == 503
        assert late.json()["error"]["code"] == "shutting_down"
