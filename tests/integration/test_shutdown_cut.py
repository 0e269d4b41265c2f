"""Streams the gateway ends itself: on SIGTERM, streams still open when the drain runs out of time end
with the client dialect's in-stream ``gateway_shutdown`` error, and are recorded ``gateway_cut`` and
billed by that rule (docs/billing.md: a per-call price is not charged) — never as ``client_gone``."""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import orjson

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.clients import UPSTREAM_KEY, new_rid
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import Gateway

KEY = "sk-shutdown-cut-0123456789"
PIECES = tuple(f" {i}" for i in range(200))  # 200 pieces 0.2 s apart: a stream far longer than the drain
SHUTDOWN_TIMEOUT_S = 3
STREAMS_PER_DIALECT = 7


def _config(openai_fake: FakeOpenAI, anthropic_fake: FakeAnthropic, gemini_fake: FakeGemini) -> dict[str, Any]:
    def channel(name: str, kind: str, url: str, model: str) -> dict[str, Any]:
        return {"name": name, "type": kind, "base_url": url, "api_key": UPSTREAM_KEY, "models": [model]}

    return {
        "shutdown_timeout_s": SHUTDOWN_TIMEOUT_S,
        "channels": [channel("oai", "openai", openai_fake.channel_url("slow"), "gpt-slow"),
                     channel("ant", "anthropic", anthropic_fake.url, "claude-slow"),
                     channel("gem", "gemini", gemini_fake.url, "gemini-slow")],
        "prices": {"gpt-slow": {"per_call": "0.10"}, "claude-slow": {"per_call": "0.10"},
                   "gemini-slow": {"per_call": "0.10"}},
        "keys": [{"name": "k", "key": KEY}],
    }


def _openai(http: httpx.Client, rid: str) -> httpx.Response:
    return http.send(http.build_request(
        "POST", "/v1/chat/completions", headers={"Authorization": f"Bearer {KEY}", "X-Request-Id": rid},
        json={"model": "gpt-slow", "stream": True, "messages": [{"role": "user", "content": "count"}]}), stream=True)


def _anthropic(http: httpx.Client, rid: str) -> httpx.Response:
    return http.send(http.build_request(
        "POST", "/v1/messages", headers={"x-api-key": KEY, "anthropic-version": "2023-06-01", "X-Request-Id": rid},
        json={"model": "claude-slow", "max_tokens": 1000, "stream": True,
              "messages": [{"role": "user", "content": "count"}]}), stream=True)


def _gemini(http: httpx.Client, rid: str) -> httpx.Response:
    return http.send(http.build_request(
        "POST", "/v1beta/models/gemini-slow:streamGenerateContent?alt=sse",
        headers={"x-goog-api-key": KEY, "X-Request-Id": rid},
        json={"contents": [{"role": "user", "parts": [{"text": "count"}]}]}), stream=True)


def _last_event(body: bytes) -> tuple[str | None, dict[str, Any]]:
    """The stream's last SSE event: its name and its JSON data."""
    frames = [f for f in body.replace(b"\r\n", b"\n").split(b"\n\n") if f.strip()]
    name, data = None, b""
    for line in frames[-1].split(b"\n"):
        if line.startswith(b"event:"):
            name = line[6:].strip().decode()
        elif line.startswith(b"data:"):
            data += line[5:].strip()
    return name, orjson.loads(data)


def _openai_error_code(body: bytes) -> str:
    name, data = _last_event(body)
    assert name is None
    return str(data["error"]["code"])


def _anthropic_error_code(body: bytes) -> str:
    name, data = _last_event(body)
    assert name == "error" and data["type"] == "error"
    return str(data["error"]["code"])


def _gemini_error_code(body: bytes) -> str:
    _, data = _last_event(body)
    assert data["error"]["status"] == "UNAVAILABLE"
    return str(data["error"]["details"][0]["reason"])


DIALECTS: list[tuple[str, Callable[[httpx.Client, str], httpx.Response], Callable[[bytes], str]]] = [
    ("openai", _openai, _openai_error_code),
    ("anthropic", _anthropic, _anthropic_error_code),
    ("gemini", _gemini, _gemini_error_code),
]


def test_streams_open_past_the_drain_end_with_the_dialects_error_and_are_recorded_gateway_cut(
        gateway_factory: type[Gateway], fake: FakeOpenAI, anthropic_fake: FakeAnthropic, gemini_fake: FakeGemini,
        tmp_path: Path) -> None:
    fake.set("slow", content=PIECES, chunk_delay_s=0.2)
    anthropic_fake.set("", content=PIECES, chunk_delay_s=0.2)
    gemini_fake.set("", content=PIECES, chunk_delay_s=0.2)
    gateway = gateway_factory(tmp_path / "gw", _config(fake, anthropic_fake, gemini_fake)).start()
    calls = [(dialect, open_stream, code_of, new_rid(f"cut-{dialect}-{i}"))
             for dialect, open_stream, code_of in DIALECTS for i in range(STREAMS_PER_DIALECT)]
    started = threading.Barrier(len(calls) + 1, timeout=30)

    def run(open_stream: Callable[[httpx.Client, str], httpx.Response], rid: str) -> bytes:
        with httpx.Client(base_url=gateway.url, timeout=60) as http:
            response = open_stream(http, rid)
            assert response.status_code == 200
            chunks = response.iter_raw()
            body = next(chunks)  # the first event is here: the stream is open
            started.wait()
            for chunk in chunks:
                body += chunk
            response.close()
            return body

    with ThreadPoolExecutor(len(calls)) as pool:
        futures = [pool.submit(run, open_stream, rid) for _, open_stream, _, rid in calls]
        started.wait()
        assert gateway.process is not None
        os.kill(gateway.process.pid, signal.SIGTERM)  # the process this test spawned
        bodies = [future.result(60) for future in futures]
    assert gateway.process.wait(60) == 0

    db = GatewayDB(gateway.database)
    for (dialect, _, code_of, rid), body in zip(calls, bodies, strict=True):
        assert code_of(body) == "gateway_shutdown", (dialect, body[-400:])
        row = db.usage(rid)
        assert (row["end_reason"], row["error_code"]) == ("gateway_cut", "gateway_cut"), dialect
        assert row["cost_nano"] == 0, dialect  # a per-call price buys a complete answer
    assert db.key_used("k") == 0
