"""Sending hostile requests to a running gateway over raw sockets and judging the answers.

Raw sockets, because the bytes worth sending (non-UTF-8 headers and paths, odd methods) are the ones
HTTP clients refuse to send. Every request is one connection (``Connection: close``); a batch goes out
concurrently. A request passes when the gateway made no 5xx of its own (a 502/503/504 is fine only for
a request whose upstream was told to fail), every 4xx/5xx body is an error in the caller's dialect,
and no 2xx JSON body is an error in disguise. The gateway's log must stay free of tracebacks.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import orjson
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from tests.helpers.gateway import Gateway
from tests.helpers.raw_http import RawAnswer
from tests.helpers.raw_http import parse as parse_answer

SEED = int(os.environ.get("RELAYGATE_FUZZ_SEED", "9"))
TIMEOUT_S = 30.0
CONCURRENCY = 24
LOG_ALARMS = ("Traceback", "Error handling request", "unhandled ")


@dataclass(frozen=True)
class Probe:
    """One hostile request. ``dialect``: the error shape its answer must have; ``fault``: its upstream
    was told to fail (a relayed 502/503/504 is fine); ``protocol``: the bytes break HTTP itself, so
    the answer may be the server's own neutral refusal (``_http_refusal``)."""

    method: bytes
    target: bytes
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    dialect: str
    fault: bool = False
    protocol: bool = False
    chunked: bool = False

    def wire(self) -> bytes:
        lines = [self.method + b" " + self.target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close"]
        lines += [name + b": " + value for name, value in self.headers]
        if self.chunked:
            lines.append(b"Transfer-Encoding: chunked")
            body = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in _pieces(self.body)) + b"0\r\n\r\n"
        else:
            lines.append(b"Content-Length: %d" % len(self.body))
            body = self.body
        return b"\r\n".join(lines) + b"\r\n\r\n" + body

    def show(self, limit: int = 600) -> str:
        """A reproduction: the request as sent, cut to ``limit`` bytes."""
        raw = self.wire()
        return repr(raw[:limit]) + (f" ... ({len(raw)} bytes)" if len(raw) > limit else "")


def _pieces(body: bytes, size: int = 4096) -> Iterable[bytes]:
    return (body[i:i + size] for i in range(0, len(body), size)) if body else ()




async def send(port: int, probe: Probe) -> RawAnswer | str:
    """The reply, or why there was none."""
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        return f"could not connect: {exc!r}"
    try:
        try:
            writer.write(probe.wire())
            await writer.drain()
        except (ConnectionError, OSError):
            pass  # the server may answer (413, 400) and close before the whole body is written
        raw = await asyncio.wait_for(reader.read(), TIMEOUT_S)
    except (OSError, TimeoutError) as exc:
        return f"no reply: {exc!r}"
    finally:
        writer.close()
    return parse(raw)


def parse(raw: bytes) -> RawAnswer | str:
    """The answer, or why the bytes are not one."""
    try:
        return parse_answer(raw)
    except ValueError as exc:
        return str(exc)


async def send_all(port: int, probes: list[Probe]) -> list[RawAnswer | str]:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def one(probe: Probe) -> RawAnswer | str:
        async with gate:
            return await send(port, probe)

    return await asyncio.gather(*(one(p) for p in probes))


# --- judging --------------------------------------------------------------------------------------

def _is_str(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


def _openai_error(body: Any, status: int) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return (isinstance(error, dict) and _is_str(error.get("message")) and _is_str(error.get("type"))
            and "param" in error and "code" in error)


def _anthropic_error(body: Any, status: int) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return (isinstance(body, dict) and body.get("type") == "error" and isinstance(error, dict)
            and _is_str(error.get("type")) and _is_str(error.get("message")))


def _gemini_error(body: Any, status: int) -> bool:
    error = body.get("error") if isinstance(body, dict) else None
    return (isinstance(error, dict) and error.get("code") == status and _is_str(error.get("message"))
            and _is_str(error.get("status")))


def _midjourney_error(body: Any, status: int) -> bool:
    return (isinstance(body, dict) and isinstance(body.get("code"), int) and not isinstance(body["code"], bool)
            and _is_str(body.get("description")))


ERROR_SHAPES: dict[str, Callable[[Any, int], bool]] = {
    "openai": _openai_error, "admin": _openai_error, "anthropic": _anthropic_error,
    "gemini": _gemini_error, "midjourney": _midjourney_error,
}


def _looks_like_error(body: Any) -> bool:
    """A 2xx body that is one of the dialects' error objects (an upstream error relayed as a success)."""
    return isinstance(body, dict) and (isinstance(body.get("error"), dict) or body.get("type") == "error")


def _http_refusal(probe: Probe, body: Any, status: int) -> bool:
    """Bytes that are not HTTP are refused before any route is known (aiohttp keeps no path of a request
    it cannot parse), so in the one neutral shape, OpenAI's, with a protocol code (docs/errors.md)."""
    return (probe.protocol and status in (400, 431) and ERROR_SHAPES["openai"](body, status)
            and body["error"]["code"] in ("malformed_http", "request_head_too_large"))


def judge(probe: Probe, reply: RawAnswer | str) -> str | None:
    """What is wrong with the answer to ``probe``, or None."""
    if isinstance(reply, str):
        return reply
    status = reply.status
    if status >= 500 and not (probe.fault and status in (502, 503, 504)):
        return f"{status} made by the gateway: {reply.body[:300]!r}"
    if probe.method == b"HEAD":
        return None
    json_type = reply.headers.get("content-type", "").startswith("application/json")
    if status >= 400:
        try:
            body = reply.json()
        except orjson.JSONDecodeError:
            return f"{status} not JSON ({reply.headers.get('content-type')}): {reply.body[:200]!r}"
        if not json_type or not (ERROR_SHAPES[probe.dialect](body, status) or _http_refusal(probe, body, status)):
            return f"{status} not in the {probe.dialect} error shape: {reply.body[:300]!r}"
    elif 200 <= status < 300 and json_type:
        try:
            body = reply.json()
        except orjson.JSONDecodeError:
            return f"{status} declares JSON but is not: {reply.body[:200]!r}"
        if _looks_like_error(body):
            return f"{status} carrying an error body: {reply.body[:300]!r}"
    return None


# --- running --------------------------------------------------------------------------------------

@dataclass
class Tally:
    sent: int = 0
    statuses: dict[int, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)


def fuzz(gateway: Gateway, probes: st.SearchStrategy[Probe], *, batches: int, batch_size: int) -> Tally:
    """Send ``batches`` hypothesis-drawn batches of ``batch_size`` probes; fail with reproductions
    (and the seed) when an answer is wrong or the gateway's log shows an unhandled error."""
    tally = Tally()
    log_start = len(gateway.logs())

    @seed(SEED)
    @settings(max_examples=batches, database=None, deadline=None, phases=[Phase.explicit, Phase.generate],
              suppress_health_check=list(HealthCheck), derandomize=False)
    @given(st.lists(probes, min_size=batch_size, max_size=batch_size))
    def batch(drawn: list[Probe]) -> None:
        replies = asyncio.run(send_all(gateway.port, drawn))
        for probe, reply in zip(drawn, replies, strict=True):
            _record(gateway, tally, probe, reply)

    batch()
    return verdict(gateway, tally, log_start, expected=batches * batch_size)


def verdict(gateway: Gateway, tally: Tally, log_start: int, *, expected: int) -> Tally:
    """Fail with reproductions (and the seed) when an answer was wrong, the log shows an unhandled
    error, or the gateway died."""
    log = gateway.logs()[log_start:]
    alarms = [line for line in log.splitlines() if any(a in line for a in LOG_ALARMS)]
    assert gateway.process is not None and gateway.process.poll() is None, "the gateway died"
    report = "\n".join(dict.fromkeys(tally.failures[:12]))
    assert not tally.failures and not alarms, (
        f"{len(tally.failures)} of {tally.sent} answers wrong (RELAYGATE_FUZZ_SEED={SEED}); statuses "
        f"{tally.statuses}\n{report}\nlog alarms: {alarms[:5]}\nwhole requests: {gateway.home / 'fuzz-failures.txt'}")
    assert tally.sent >= expected * 0.9, f"only {tally.sent} requests sent"
    return tally


def check(gateway: Gateway, probes: list[Probe]) -> Tally:
    """Send fixed probes (one known class) and judge them like the fuzzed ones."""
    tally = Tally()
    log_start = len(gateway.logs())
    for probe, reply in zip(probes, asyncio.run(send_all(gateway.port, probes)), strict=True):
        _record(gateway, tally, probe, reply)
    return verdict(gateway, tally, log_start, expected=len(probes))


def _record(gateway: Gateway, tally: Tally, probe: Probe, reply: RawAnswer | str) -> None:
    tally.sent += 1
    if not isinstance(reply, str):
        tally.statuses[reply.status] = tally.statuses.get(reply.status, 0) + 1
    problem = judge(probe, reply)
    if problem is not None:
        tally.failures.append(f"{problem}\n    request: {probe.show()}")
        with (gateway.home / "fuzz-failures.txt").open("a") as saved:  # whole requests, to replay
            saved.write(f"{problem[:200]!r}\n{probe.wire()!r}\n")
