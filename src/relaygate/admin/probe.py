"""Testing a channel: one cheap upstream request, reported without the upstream's URL or key."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson

from relaygate.errors import scrub
from relaygate.providers.base import (
    ChatProvider,
    Transport,
    UpstreamBodyTooLarge,
    UpstreamConnectError,
    UpstreamReadTimeout,
    UpstreamRequest,
)
from relaygate.providers.registry import known_kinds, provider
from relaygate.routing.records import ChannelRecord
from relaygate.upstream.attempt import Timeouts, Wait, transport_for

_BODY_LIMIT = 64 * 1024
_ERROR_TEXT_LIMIT = 300


def _result(ok: bool, status: int | None, started: float, error: str | None) -> dict[str, Any]:
    latency = int((time.perf_counter() - started) * 1000)
    return {"ok": ok, "status": status, "latency_ms": latency, "error": error}


def _chat_probe(provider: ChatProvider, channel: ChannelRecord) -> UpstreamRequest | None:
    """For providers without a models request: a one-token chat with the channel's first model."""
    models = channel.listed_models()
    if not models:
        return None
    model = channel.upstream_model(models[0])
    body = {"model": model, "max_tokens": 1, "messages": [{"role": "user", "content": "ping"}]}
    return provider.chat_request(channel, orjson.dumps(body), stream=False, model=model, client_headers={})


def _upstream_message(body: bytes) -> str | None:
    try:
        parsed: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parsed, dict):
        return None
    err = parsed.get("error", parsed.get("message"))
    if isinstance(err, dict):
        err = err.get("message")
    return err if isinstance(err, str) and err else None


def _refusal(status: int, body: bytes) -> str:
    message = _upstream_message(body)
    text = f"the upstream answered HTTP {status}"
    return f"{text}: {scrub(message, _ERROR_TEXT_LIMIT)}" if message else text


async def _exchange(transport: Transport, request: UpstreamRequest) -> tuple[int, bytes]:
    response = await transport.send(request)
    try:
        return response.status, await response.read(_BODY_LIMIT)
    except UpstreamBodyTooLarge:
        return response.status, b""
    finally:
        response.close()


async def probe_channel(channel: ChannelRecord, http: Transport | None, timeout_s: float) -> dict[str, Any]:
    """``{ok, status, latency_ms, error}``; ``ok`` means the upstream answered 2xx within ``timeout_s``."""
    started = time.perf_counter()
    if channel.type not in known_kinds():
        return _result(False, None, started, f"unknown channel type '{channel.type}'")
    declared = provider(channel.type)
    request = declared.upstream.models_request(channel)
    if request is None and declared.chat is not None:
        request = _chat_probe(declared.chat, channel)
    if request is None:
        return _result(False, None, started, "the channel lists no model to test with")
    Timeouts.uniform(timeout_s).apply(request, Wait.ANSWER)
    transport = transport_for(channel, http)
    if transport is None:
        return _result(False, None, started, "no HTTP client is available to reach the upstream")
    try:
        async with asyncio.timeout(timeout_s):
            status, body = await _exchange(transport, request)
    except UpstreamConnectError:
        return _result(False, None, started, "the upstream could not be reached")
    except (UpstreamReadTimeout, TimeoutError):
        return _result(False, None, started, f"the upstream did not answer within {timeout_s:g} s")
    ok = 200 <= status < 300
    return _result(ok, status, started, None if ok else _refusal(status, body))
