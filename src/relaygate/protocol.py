"""The HTTP server's own refusals: requests that are not well-formed HTTP, and request heads that never
complete.

aiohttp answers a request it cannot parse (a bad request line, an oversized or invalid header, bad
chunking) through ``RequestHandler.handle_error``, which logs the parser's exception with a traceback
and sends the exception's text back. Both quote the raw bytes of the request, so a client's key in
an oversized ``Authorization`` header landed in the log. Here every such refusal is one short log
line (what kind of error, the client's address; never a header value or raw bytes) and a short JSON
4xx. A handler's own exceptions never come here: the surfaces render them (surfaces/common.py).

A request head must be complete within ``header_read_timeout_s`` of the connection opening or of the
previous response: aiohttp's keep-alive timer, which closes a connection still waiting for its next
request head, is set to it. So a half-sent request (or an idle keep-alive connection) is closed then.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod, HttpProcessingError, LineTooLong
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_request import BaseRequest

from relaygate.settings import Settings

log = logging.getLogger("relaygate.protocol")


def refusal(exc: HttpProcessingError) -> tuple[int, str, str]:
    """Status, stable code and message for a request aiohttp could not parse (docs/errors.md)."""
    if isinstance(exc, LineTooLong):
        return 431, "request_head_too_large", "The request line or a header field is too long."
    if isinstance(exc, BadHttpMethod):
        return 400, "malformed_http", "The request is not HTTP/1.1 (bad method or request line)."
    return 400, "malformed_http", "The request is not well-formed HTTP/1.1."


def _body(status: int, code: str, message: str) -> bytes:
    kind = "invalid_request_error"
    return orjson.dumps({"error": {"message": message, "type": kind, "param": None, "code": code}})


class _GuardedHandler(RequestHandler):
    """aiohttp's connection handler, with its parse-error answer and log line replaced."""

    def handle_error(self, request: BaseRequest, status: int = 500, exc: BaseException | None = None,
                     message: str | None = None) -> web.StreamResponse:
        if not isinstance(exc, HttpProcessingError):
            return super().handle_error(request, status, exc, message)
        code_status, code, text = refusal(exc)
        # Scanners and TLS on the plain port send a bad method first: common, so not worth more than debug.
        level = logging.DEBUG if isinstance(exc, BadHttpMethod) and self._request_count == 1 else logging.INFO
        log.log(level, "refused a malformed HTTP request from %s: %s (%s)", request.remote, code,
                type(exc).__name__)
        if request.writer.output_size > 0:
            raise ConnectionError("the answer had started; the connection is closed instead")
        response = web.Response(status=code_status, body=_body(code_status, code, text),
                                content_type="application/json")
        response.force_close()
        return response


    def log_exception(self, *args: Any, **kw: Any) -> None:
        """A body that breaks HTTP (bad chunking, a Content-Encoding it is not in) is answered by the
        surface that read it (``400 invalid_body``); aiohttp then meets the same error again while it
        drains what is left of the body, and would log it with a traceback. One short line instead."""
        exc = kw.get("exc_info")
        if isinstance(exc, web.RequestPayloadError | HttpProcessingError):
            peer = self.transport.get_extra_info("peername") if self.transport is not None else None
            log.info("dropped the rest of a malformed request body from %s (%s)", peer, type(exc).__name__)
            return
        super().log_exception(*args, **kw)


class _GuardedServer(web.Server):
    def __call__(self) -> RequestHandler:
        return _GuardedHandler(self, loop=self._loop, **self._kwargs)


class GatewayRunner(web.AppRunner):
    """``web.AppRunner`` whose connections use ``_GuardedHandler``. aiohttp has no public hook for the
    connection handler's class; the server it makes is given the class that makes ours (the one place
    this depends on aiohttp's internals, tested in tests/integration/test_protocol_errors.py)."""

    def __init__(self, app: web.Application, settings: Settings, **kwargs: Any) -> None:
        super().__init__(app, keepalive_timeout=settings.header_read_timeout_s, **kwargs)

    async def _make_server(self) -> web.Server:
        server = await super()._make_server()
        server.__class__ = _GuardedServer
        return server
