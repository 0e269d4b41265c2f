"""What every surface needs: request ids, client addresses, bounded JSON bodies, the error response
(surfaces/rendering.py picks the renderer and is the one place that calls it)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import orjson
from aiohttp import web

from relaygate.auth.records import KeyRecord
from relaygate.dialects.base import Dialect
from relaygate.errors import BodyTimeout, BodyTooLarge, GatewayError, InvalidJSON, InvalidRequest, ShuttingDown
from relaygate.relay.chat import ChatRelay
from relaygate.relay.embeddings import EmbeddingsRelay
from relaygate.relay.results import FinalFrame, JsonResult, RelayResult
from relaygate.relay.services import Services

log = logging.getLogger("relaygate.surfaces")

SERVICES: web.AppKey[Services] = web.AppKey("services", Services)
CHAT_RELAY: web.AppKey[ChatRelay] = web.AppKey("chat_relay", ChatRelay)
EMBEDDINGS_RELAY: web.AppKey[EmbeddingsRelay] = web.AppKey("embeddings_relay", EmbeddingsRelay)
REQUEST_ID_HEADER = "X-Request-Id"  # relaygate's own id, on every response
CLIENT_REQUEST_ID_HEADER = "X-Client-Request-Id"  # the client's id, echoed when it sent one

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
T = TypeVar("T")
ErrorRenderer = Callable[[GatewayError, str], tuple[int, bytes]]


# Kept on the request once made or read (typed keys: aiohttp warns about plain string keys).
_REQUEST_ID = web.RequestKey("request_id", str)
_CLIENT_REQUEST_ID: web.RequestKey[str | None] = web.RequestKey("client_request_id")


# How the app finds the renderer of the surface that owns a request's path (surfaces/rendering.py's
# ``renderer_for``, set by app.py: rendering imports every surface, so the surfaces cannot import it).
ERROR_RENDERER: web.AppKey[Callable[[web.Request], ErrorRenderer]] = web.AppKey("error_renderer")


def add_route(app: web.Application, method: str, path: str, handler: Handler) -> None:
    """Register a route: every surface registers through here, so every handler runs inside the one
    error boundary (``_guarded``). GET routes answer HEAD too, as aiohttp's ``add_get`` does."""
    if method == "GET":
        app.router.add_get(path, _guarded(handler))
    else:
        app.router.add_route(method, path, _guarded(handler))


def _guarded(handler: Handler) -> Handler:
    """Handlers only raise. A ``GatewayError`` leaves in the error shape of the surface that owns the
    path; anything else is a bug: logged by type and route pattern (never with the request's own data)
    and answered with a 500 in that same shape. Applied where the route is registered rather than as an
    aiohttp middleware: a middleware cost ~6 µs per request on the bench (aiohttp's per-request chain
    lookup and its current-app wrapper), this costs one call."""

    async def guard(request: web.Request) -> web.StreamResponse:
        try:
            response = await handler(request)
        except GatewayError as error:
            response = error_response(error, request_id(request), request.app[ERROR_RENDERER](request))
        except web.HTTPException as exc:
            stamp_request_ids(request, exc)
            raise
        except Exception as exc:
            rid = request_id(request)
            resource = request.match_info.route.resource
            log.exception("unhandled %s in %s (request id %s)", type(exc).__name__,
                          resource.canonical if resource is not None else "?", rid)
            response = error_response(GatewayError("The gateway had an internal error."), rid,
                                      request.app[ERROR_RENDERER](request))
        if not response.prepared:  # a stream sent by send_result carries them already
            stamp_request_ids(request, response)
        return response

    return functools.wraps(handler)(guard)


def services_of(request: web.Request) -> Services:
    return request.app[SERVICES]


def request_id(request: web.Request) -> str:
    """relaygate's own id for this request (``req_`` and 24 random hex digits), made once and stored on
    the request. It keys the usage record, the task and the access-log line: an id the client chose
    could be anyone's (another key's, or its own from an earlier call), so it is never a key
    (``client_request_id`` keeps it beside)."""
    if _REQUEST_ID in request:
        return request[_REQUEST_ID]
    rid = "req_" + _random_hex.take()
    request[_REQUEST_ID] = rid
    return rid


class _RandomHex:
    """24 random hex digits at a time, from the OS's random bytes read 12 KiB at once: one
    ``getrandom`` call per 1,024 ids instead of one per request (~4 µs each under load). The pool is
    dropped in a forked child (``--workers``), which would otherwise hand out its parent's ids."""

    def __init__(self) -> None:
        self._pool = b""
        self._at = 0

    def take(self) -> str:
        at = self._at
        if at + 12 > len(self._pool):
            self._pool, at = os.urandom(12 * 1024), 0
        self._at = at + 12
        return self._pool[at:at + 12].hex()

    def drop(self) -> None:
        self._pool, self._at = b"", 0


_random_hex = _RandomHex()
os.register_at_fork(after_in_child=_random_hex.drop)


def client_request_id(request: web.Request) -> str | None:
    """The client's own id for this request when it sent a sane one: ``X-Client-Request-Id`` (OpenAI's
    name), else ``X-Request-Id``; at most 128 printable ASCII characters. Stored and echoed, not unique.
    Read once and kept on the request (the handler and the response stamp both ask)."""
    if _CLIENT_REQUEST_ID in request:
        return request[_CLIENT_REQUEST_ID]
    found = None
    for name in (CLIENT_REQUEST_ID_HEADER, REQUEST_ID_HEADER):
        given = request.headers.get(name)
        if given and len(given) <= 128 and given.isascii() and given.isprintable():
            found = given
            break
    request[_CLIENT_REQUEST_ID] = found
    return found


def stamp_request_ids(request: web.Request, response: web.StreamResponse) -> None:
    """Put relaygate's ``X-Request-Id``, and the client's own id as ``X-Client-Request-Id`` when it sent
    one, on a response before it is sent: done by the error boundary for every response a route returns
    (and every aiohttp exception it lets through), and by ``send_result`` for a stream, which it sends itself."""
    response.headers[REQUEST_ID_HEADER] = request_id(request)
    given = client_request_id(request)
    if given is not None:
        response.headers[CLIENT_REQUEST_ID_HEADER] = given


def client_ip(request: web.Request) -> str | None:
    return request.remote


async def read_body(request: web.Request, reading: Awaitable[T]) -> T:
    """Await a read of the request's body (every body is read through here) within ``body_read_timeout_s``:
    a body that does not arrive in time is ``408 body_timeout``; one the connection broke off, or whose
    framing (chunking) is broken, is ``400 invalid_body`` (nobody may be left to read the answer)."""
    timeout_s = services_of(request).settings.body_read_timeout_s
    try:
        if request.content.is_eof():  # the whole body came with the head: nothing to wait for, no timer
            return await reading
        async with asyncio.timeout(timeout_s):
            return await reading
    except TimeoutError as exc:
        raise BodyTimeout(f"The request body did not arrive within {timeout_s:g} s.") from exc
    except (ConnectionError, web.RequestPayloadError) as exc:
        raise InvalidRequest("The request body was cut short or its framing is broken.",
                             code="invalid_body") from exc


async def read_json_object(request: web.Request, limit: int) -> tuple[dict[str, Any], bytes]:
    if request.content_length is not None and request.content_length > limit:
        raise BodyTooLarge(f"The request body is larger than the limit of {limit} bytes.")
    try:
        reading = request.read() if request.content_length is not None else _read_chunked(request, limit)
        raw = await read_body(request, reading)
    except web.HTTPRequestEntityTooLarge as exc:
        raise BodyTooLarge(f"The request body is larger than the limit of {limit} bytes.") from exc
    if not raw:
        raise InvalidJSON("The request body is empty; send a JSON object.")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidJSON(f"The request body is not valid JSON: {exc.msg} at position {exc.pos}.") from exc
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.")
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH and _deeper_than(body, MAX_JSON_DEPTH):
        raise InvalidRequest(f"The request body nests arrays and objects more than {MAX_JSON_DEPTH} levels deep.",
                             code="json_too_deep")
    return body, raw


# orjson reads JSON nested up to 1024 levels but writes at most 254: a body deeper than that would be
# accepted, then fail wherever it must be written again (a mapped model, a translation, a stored task).
# Refused at the door instead, with room to spare for the levels a translation wraps around it. The
# bracket count is a cheap bound (no body can nest deeper than it has brackets), so the walk runs only
# for bodies that could be too deep.
MAX_JSON_DEPTH = 128


def _deeper_than(value: Any, limit: int) -> bool:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


async def _read_chunked(request: web.Request, limit: int) -> bytes:
    """A body sent without Content-Length, read up to ``limit`` bytes and no further."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.content.iter_any():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge(f"The request body is larger than the limit of {limit} bytes.")
        chunks.append(chunk)
    return b"".join(chunks)


def json_response(payload: Any, *, status: int = 200, rid: str | None = None,
                  headers: dict[str, str] | None = None) -> web.Response:
    response = web.Response(body=orjson.dumps(payload), status=status, content_type="application/json",
                            headers=headers)
    if rid:
        response.headers[REQUEST_ID_HEADER] = rid
    return response


def error_response(error: GatewayError, rid: str, render: ErrorRenderer) -> web.Response:
    status, body = render(error, rid)
    response = web.Response(body=body, status=status, content_type="application/json")
    for name, value in error.headers.items():
        response.headers[name] = value
    return response


def visible_models(request: web.Request, key: KeyRecord) -> list[str]:
    """Models some enabled channel serves by name and this key may use."""
    router = services_of(request).snapshots.current.router
    return [m for m in router.listed_models() if key.allows_model(m)]


async def send_result(request: web.Request, result: RelayResult, rid: str, dialect: Dialect, *,
                      stream_type: str = "text/event-stream; charset=utf-8") -> web.StreamResponse:
    """Send a relayed answer: whole, or as a stream that stops (and is billed as such) when the client
    goes away."""
    if isinstance(result, JsonResult):
        response = web.Response(body=result.body, status=result.status)
        response.headers["Content-Type"] = result.content_type
        return response
    stream = web.StreamResponse(status=200, headers={
        "Content-Type": stream_type, "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    })
    stamp_request_ids(request, stream)
    body = result.body
    try:
        await stream.prepare(request)
        async for piece in body:
            if type(piece) is FinalFrame:
                await stream.write_eof(piece)  # the last bytes and the chunked terminator in one write
            elif piece:
                await stream.write(piece)
        await stream.write_eof()  # no-op when the final frame ended the response
    except (ConnectionError, RuntimeError):
        pass  # the client left; closing the body below bills what it received
    except Exception as exc:  # a bug after the 200 went out: end the stream with an error event, not garbage
        log.exception("unhandled %s while streaming (request id %s)", type(exc).__name__, rid)
        with contextlib.suppress(ConnectionError, RuntimeError):
            await stream.write(dialect.stream_error_frame(GatewayError("The gateway had an internal error."), rid))
    finally:
        await body.aclose()  # type: ignore[attr-defined]
    return stream


async def accept_call(request: web.Request,
                      authenticate: Callable[[web.Request], KeyRecord]) -> tuple[str, KeyRecord, dict[str, Any], bytes]:
    """What every relayed call does first: refuse while draining, authenticate (before reading the
    body, so an unknown caller cannot make us read 32 MiB), and read the bounded JSON body.
    Returns the request id, the key, the parsed body and its raw bytes."""
    services = services_of(request)
    rid = request_id(request)
    if services.draining:
        raise ShuttingDown("The gateway is shutting down; retry on another instance.")
    key = authenticate(request)
    body, raw = await read_json_object(request, services.settings.max_body_bytes)
    return rid, key, body, raw
