"""Per-request cost of relaygate's own request handling inside one process, without sockets' noise
dominating: how many µs the app spends from the router to the handler's answer.

Two loops over an app built by ``create_app`` with the built-in mock channel:
  * ``dispatch``: ``app._handle`` on mocked requests (router, error rendering, handler; no sockets),
    for ``GET /v1/models`` (a success) and the same with an unknown key (a rendered 401);
  * ``client``: aiohttp's test client in a loop, ``POST /v1/chat/completions`` (non-stream, the mock
    channel: auth, reservation, relay, metering, access log) and ``GET /v1/models``.

Usage: ``python bench/dispatch.py [N]`` (default 5000 dispatches, N/10 client calls); prints the median
of 5 rounds in µs/request. Used to compare two versions of the code in one sitting (run each twice).
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiohttp.test_utils import TestClient, TestServer, make_mocked_request

from relaygate.app import create_app
from relaygate.server import prepare_database
from relaygate.settings import load_settings

_CONFIG = """
home: {home}
database: sqlite:///{home}/bench.db
admin_key: rg-bench-admin-not-a-secret
secret: bench-secret-not-a-secret-0123456789
access_log: false
channels:
  - name: playground
    type: mock
    models: [mock-gpt]
prices:
  mock-gpt: {{input: 2.50, output: 10.00}}
keys:
  - name: bench
    key: sk-bench
    quota_usd: 1000000
    models: ["*"]
"""
_ROUNDS = 5
_CHAT = b'{"model": "mock-gpt", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 8}'


async def _dispatch(app: object, n: int, key: str) -> float:
    headers = {"Authorization": f"Bearer {key}"}
    handle = app._handle  # type: ignore[attr-defined]
    requests = [make_mocked_request("GET", "/v1/models", headers=headers, app=app) for _ in range(n)]  # untimed
    started = time.perf_counter()
    for request in requests:
        response = await handle(request)
        assert response.status in (200, 401)
    return (time.perf_counter() - started) / n * 1e6


async def _client(client: TestClient, n: int, chat: bool) -> float:
    headers = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}
    started = time.perf_counter()
    for _ in range(n):
        if chat:
            response = await client.post("/v1/chat/completions", data=_CHAT, headers=headers)
        else:
            response = await client.get("/v1/models", headers=headers)
        await response.read()
        assert response.status == 200, response.status
    return (time.perf_counter() - started) / n * 1e6


async def main(n: int) -> None:
    with tempfile.TemporaryDirectory() as home:
        path = Path(home) / "bench.yaml"
        path.write_text(_CONFIG.format(home=home))
        settings = load_settings(path)
        app = create_app(settings, await prepare_database(settings))
        async with TestClient(TestServer(app)) as client:
            results: dict[str, list[float]] = {}
            for _ in range(_ROUNDS):
                results.setdefault("dispatch GET /v1/models 200", []).append(await _dispatch(app, n, "sk-bench"))
                results.setdefault("dispatch GET /v1/models 401", []).append(await _dispatch(app, n, "sk-unknown"))
                results.setdefault("client GET /v1/models", []).append(await _client(client, n // 10, False))
                results.setdefault("client POST /v1/chat/completions", []).append(await _client(client, n // 10, True))
        for name, figures in results.items():
            print(f"{name:36s} {statistics.median(figures):8.1f} µs/request  (rounds: "
                  + ", ".join(f"{f:.1f}" for f in figures) + ")")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5000))
