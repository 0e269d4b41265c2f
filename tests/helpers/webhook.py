"""A webhook receiver on loopback for task notification tests: records every JSON body POSTed to it,
and can be told to fail the first deliveries (to see retries)."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson
from aiohttp import web

from tests.fakes.fake_server import LoopbackServer


class WebhookReceiver(LoopbackServer):
    name = "webhook-receiver"

    def __init__(self, *, fail_first: int = 0) -> None:
        super().__init__()
        self.received: list[Any] = []
        self.attempts = 0
        self._fail_first = fail_first
        self._lock = threading.Lock()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._receive)
        return app

    async def _receive(self, request: web.Request) -> web.Response:
        body = await request.read()
        with self._lock:
            self.attempts += 1
            if self.attempts <= self._fail_first:
                return web.Response(status=503)
            self.received.append(orjson.loads(body))
        return web.Response(status=204)

    def wait(self, count: int, timeout: float = 15.0) -> list[Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.received) >= count:
                    return list(self.received)
            time.sleep(0.05)
        raise AssertionError(f"expected {count} webhook deliveries, got {len(self.received)}")
