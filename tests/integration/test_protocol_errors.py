"""Requests that are not well-formed HTTP, sent over raw sockets to a gateway process: each gets a short
JSON 4xx, and the gateway's log names the kind of error and the client, never a header value, the raw
bytes or a traceback. A request head that never completes is closed after ``header_read_timeout_s``."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from tests.helpers.gateway import Gateway
from tests.helpers.raw_http import exchange, parse, read_until_closed

KEY = "sk-protocol-errors-0123456789"
SECRET = "sk-" + "Secret0123456789" * 1250  # 20 KB of key material that must not reach the log
HEADER_TIMEOUT_S = 1.0


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: type[Gateway], tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    config = {"header_read_timeout_s": HEADER_TIMEOUT_S, "body_read_timeout_s": 1.0,
              "channels": [{"name": "mock", "type": "mock", "models": ["mock-chat"]}],
              "prices": {"mock-chat": {"per_call": "0.01"}}, "keys": [{"name": "k", "key": KEY}]}
    return module_gateway_factory(Path(tmp_path_factory.mktemp("protocol")), config).start()


CHUNKED_HEAD = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode()
                + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n")

MALFORMED: list[tuple[str, bytes, int, str]] = [
    ("oversized-authorization", b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
     + SECRET.encode() + b"\r\nContent-Length: 2\r\n\r\n{}", 431, "request_head_too_large"),
    ("oversized-header-name", b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX-" + b"sk-Secret" * 2000
     + b": 1\r\n\r\n", 431, "request_head_too_large"),
    ("oversized-url", b"GET /v1/models?key=" + SECRET.encode() + b" HTTP/1.1\r\nHost: x\r\n\r\n", 431,
     "request_head_too_large"),
    ("control-byte-in-url", b"GET /v1/\x01models?key=sk-Secret0123456789 HTTP/1.1\r\nHost: x\r\n\r\n", 400,
     "malformed_http"),
    ("control-byte-in-header", b"GET /v1/models HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer sk-Secret0123456789"
     b"\x01\r\n\r\n", 400, "malformed_http"),
    ("bad-header-name", b"GET /v1/models HTTP/1.1\r\nHost: x\r\nX(sk-Secret0123456789): 1\r\n\r\n", 400,
     "malformed_http"),
    ("bad-chunk-size", CHUNKED_HEAD + b"sk-Secret0123456789\r\nabc\r\n0\r\n\r\n", 400, "malformed_http"),
    ("two-content-lengths", b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n"
     b"Content-Length: 3\r\n\r\n{}", 400, "malformed_http"),
    ("not-http", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03sk-Secret0123456789\r\n\r\n", 400, "malformed_http"),
    ("bad-version", b"GET /v1/models HTTP/9.sk-Secret0123456789\r\nHost: x\r\n\r\n", 400, "malformed_http"),
]


@pytest.mark.parametrize(("data", "status", "code"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED])
def test_a_malformed_request_gets_a_short_json_4xx(gateway: Gateway, data: bytes, status: int, code: str) -> None:
    answer = parse(exchange(gateway.port, data))
    assert answer.status == status, answer.body
    assert answer.headers["content-type"].startswith("application/json")
    assert answer.json()["error"]["code"] == code
    assert b"Secret0123456789" not in answer.body  # nothing of the request is echoed back


def test_a_chunked_body_that_turns_malformed_later_is_a_4xx(gateway: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=15) as sock:
        sock.sendall(CHUNKED_HEAD + b"5\r\n{\"mod\r\n")
        time.sleep(0.3)  # the handler is reading the body when the bad chunk arrives
        sock.sendall(b"sk-Secret0123456789\r\nxyz\r\n0\r\n\r\n")
        raw = read_until_closed(sock)
    if raw:  # a 4xx, or the connection closed without an answer; never a 5xx
        assert 400 <= parse(raw).status < 500, raw


def test_a_request_head_that_never_completes_is_closed(gateway: Gateway) -> None:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + KEY.encode())
        closed = read_until_closed(sock)  # the socket's own 30 s timeout raises if the gateway never closes
    assert closed == b"" or parse(closed).status == 408
    assert time.monotonic() - started >= HEADER_TIMEOUT_S * 0.9


def test_an_idle_connection_is_closed_too(gateway: Gateway) -> None:
    with socket.create_connection(("127.0.0.1", gateway.port), timeout=30) as sock:
        assert read_until_closed(sock) == b""


def test_the_log_has_one_short_line_per_refusal_and_nothing_of_the_requests(gateway: Gateway) -> None:
    for _, data, _, _ in MALFORMED:
        exchange(gateway.port, data)
    logs = gateway.logs()
    assert "Secret0123456789" not in logs
    assert "Traceback" not in logs
    assert "Error handling request" not in logs
    assert "refused a malformed HTTP request from 127.0.0.1: request_head_too_large" in logs
