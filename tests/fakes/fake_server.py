"""What every fake upstream shares: a real aiohttp server on loopback, served from a background thread
with its own event loop; a record of every request it received; behaviours chosen per path prefix,
scripted per request, or set by an ``"x_fake"`` object in the request body; helpers to misbehave.

A fake upstream subclasses :class:`FakeServer` with its own ``Behavior`` dataclass (which mixes in
:class:`BehaviorBase`) and its routes (``app``). See ``anthropic_upstream.py`` and ``gemini_upstream.py``.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import threading
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar
from urllib.parse import parse_qsl

import orjson
from aiohttp import web

# What a leaky upstream names besides its credential and URL (``echo_text``): addresses a client must
# never see from relaygate.
ECHO_IP = "10.20.30.40"
ECHO_IPV6 = "fd00:dead:beef::17"


def credential_of(request: web.Request) -> str:
    """The credential a request carried, whichever way its dialect sends it."""
    bearer = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
    return (bearer or request.headers.get("x-api-key") or request.headers.get("x-goog-api-key")
            or request.headers.get("api-key") or request.headers.get("mj-api-secret") or request.query.get("key")
            or "")


def echo_text(request: web.Request) -> str:
    """What many OpenAI-compatible relays and midjourney-proxy forks answer: the credential they were given
    (whole, and masked as relays print it), the URL they were called on, their host and an IP address.
    The fakes' ``echo`` switch puts it in every string field of their errors."""
    key = credential_of(request)
    return (f"Incorrect API key provided: {key} ({key[:6]}***{key[-4:]}, {key[:3]}...{key[-3:]}); called on "
            f"{request.url} (host {request.host}, Host: {request.host}) from {ECHO_IP} via [{ECHO_IPV6}]")


class BehaviorBase:
    """Mixed into a frozen dataclass of behaviour switches."""

    __slots__ = ()

    def replace(self, **changes: Any) -> Self:
        return dataclasses.replace(self, **changes)  # type: ignore[type-var]

    def merged(self, raw: Mapping[str, Any]) -> Self:
        """This behaviour with the known fields of ``raw`` (an ``x_fake`` marker) over it; lists become
        tuples."""
        names = {f.name for f in dataclasses.fields(self)}  # type: ignore[arg-type]
        return self.replace(**{k: tuple(v) if isinstance(v, list) else v for k, v in raw.items() if k in names})


B = TypeVar("B", bound=BehaviorBase)


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str  # decoded, without the query
    raw_path: str  # as sent: percent-encoding and query kept
    query: dict[str, str]
    prefix: str
    headers: dict[str, str]  # names lower-cased
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


class LoopbackServer:
    """An aiohttp app served on loopback from its own thread and event loop, for fake upstreams.
    Subclasses provide ``app()``; ``port`` 0 picks a free port, known after ``start()``."""

    name = "fake-upstream"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.port = port
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        """The root, as a channel's ``base_url`` wants it."""
        return f"http://{self.host}:{self.port}"

    def app(self) -> web.Application:
        raise NotImplementedError

    @classmethod
    def serve_from_command_line(cls, description: str, default_port: int) -> None:
        """``python -m tests.fakes.<name> [--host H] [--port P]``: serve in the foreground."""
        parser = argparse.ArgumentParser(description=description)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=default_port)
        args = parser.parse_args()
        fake = cls(args.host, args.port)
        print(f"{description} on {fake.url}", flush=True)
        web.run_app(fake.app(), host=args.host, port=args.port, access_log=None, print=None)

    def start(self) -> Self:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            asyncio.set_event_loop(loop)
            try:
                loop.run_until_complete(self._serve())
            except BaseException as exc:  # reported to start()
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self._shutdown())
            loop.close()

        self._thread = threading.Thread(target=run, name=self.name, daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError(f"the {self.name} upstream did not start")
        if failure:
            raise RuntimeError(f"the {self.name} upstream did not start") from failure[0]
        return self

    def stop(self) -> None:
        if self._loop is None or self._thread is None:
            return
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop = None
        self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _serve(self) -> None:
        self._runner = web.AppRunner(self.app(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        assert server is not None
        sockets: list[Any] = list(getattr(server, "sockets", None) or ())
        self.port = int(sockets[0].getsockname()[1])

    async def _shutdown(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()


class FakeServer(LoopbackServer, Generic[B]):
    """A fake upstream. ``start()`` serves it from a background thread with its own event loop."""

    name = "fake"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host, port)
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._behaviors: dict[str, B] = {}
        self._scripts: dict[str, deque[B]] = {}
        self.active_streams = 0
        self.finished_streams = 0

    # --- to fill in ------------------------------------------------------------------------------

    def default_behavior(self) -> B:
        raise NotImplementedError

    # --- control (from the test's thread) --------------------------------------------------------

    def channel_url(self, prefix: str) -> str:
        return f"{self.url}/{prefix}"

    def set(self, prefix: str = "", behavior: B | None = None, **changes: Any) -> B:
        """Set what requests under ``prefix`` get; ``changes`` apply over ``behavior`` (or the default)."""
        chosen = (behavior or self.default_behavior()).replace(**changes)
        with self._lock:
            self._behaviors[prefix] = chosen
        return chosen

    def script(self, prefix: str, *behaviors: B) -> None:
        """Queue behaviours for the next requests under ``prefix``, one each, before the set one."""
        with self._lock:
            self._scripts.setdefault(prefix, deque()).extend(behaviors)

    def reset(self) -> None:
        with self._lock:
            self._requests.clear()
            self._behaviors.clear()
            self._scripts.clear()

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def requests_for(self, prefix: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.prefix == prefix]

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    # --- for handlers (on the fake's loop) -------------------------------------------------------

    async def record(self, request: web.Request) -> RecordedRequest:
        body = await request.read()
        recorded = RecordedRequest(
            request.method, request.path, request.raw_path, dict(parse_qsl(request.query_string)),
            request.match_info.get("prefix", ""), {k.lower(): v for k, v in request.headers.items()}, body)
        with self._lock:
            self._requests.append(recorded)
        return recorded

    def behavior_for(self, prefix: str, body: Any) -> B:
        with self._lock:
            queue = self._scripts.get(prefix)
            behavior = queue.popleft() if queue else self._behaviors.get(prefix) or self.default_behavior()
        marker = body.get("x_fake") if isinstance(body, dict) else None
        return behavior.merged(marker) if isinstance(marker, dict) else behavior

    @staticmethod
    async def pause(seconds: float) -> None:
        if seconds:
            await asyncio.sleep(seconds)

    @staticmethod
    async def cut(request: web.Request, response: web.StreamResponse, mode: str) -> web.StreamResponse:
        """End a stream early: ``eof`` ends the body cleanly; ``abort`` drops the TCP connection, so the
        reader sees an incomplete body."""
        if mode == "eof":
            await response.write_eof()
            return response
        transport = request.transport
        if transport is not None:
            transport.abort()
        return response
