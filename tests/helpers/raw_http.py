"""HTTP/1.1 over a plain socket, for what clients refuse to send: raw non-UTF-8 header bytes, newlines
in a path, oversized or malformed request heads, requests left half-sent."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Any

import orjson


@dataclass
class RawAnswer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)


def request_bytes(method: str, target: bytes, headers: dict[str, bytes] | None = None, body: bytes = b"") -> bytes:
    """A request with ``Connection: close`` and a Content-Length; header values are sent byte for byte."""
    lines = [method.encode() + b" " + target + b" HTTP/1.1", b"Host: gateway", b"Connection: close"]
    lines += [name.encode() + b": " + value for name, value in (headers or {}).items()]
    if body or method in ("POST", "PUT", "PATCH"):
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def exchange(port: int, data: bytes, *, timeout: float = 15.0) -> bytes:
    """Send ``data``, read until the server closes the connection; the raw answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        return read_until_closed(sock)


def read_until_closed(sock: socket.socket) -> bytes:
    received = b""
    while True:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            break
        if not chunk:
            break
        received += chunk
    return received


def parse(raw: bytes) -> RawAnswer:
    """The final answer in ``raw`` (interim 1xx answers skipped, a chunked body joined). Raises
    ``ValueError`` when ``raw`` is not an HTTP answer."""
    while raw.startswith(b"HTTP/1.1 1"):  # an interim answer (100 Continue) before the real one
        raw = raw.partition(b"\r\n\r\n")[2]
    head, sep, body = raw.partition(b"\r\n\r\n")
    if not sep:
        raise ValueError(f"not an HTTP answer: {raw[:200]!r}")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    parts = status_line.split(" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        raise ValueError(f"bad status line: {status_line[:200]!r}")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = _unchunk(body)
    return RawAnswer(int(parts[1]), headers, body)


def send(port: int, method: str, target: bytes, headers: dict[str, bytes] | None = None,
         body: bytes = b"") -> RawAnswer:
    return parse(exchange(port, request_bytes(method, target, headers, body)))


def _unchunk(body: bytes) -> bytes:
    out = b""
    while body:
        size_line, _, rest = body.partition(b"\r\n")
        size = int(size_line.split(b";")[0] or b"0", 16)
        if size == 0:
            break
        out += rest[:size]
        body = rest[size + 2:]
    return out
