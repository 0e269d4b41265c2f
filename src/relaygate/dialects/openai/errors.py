"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.errors import GatewayError, UpstreamRejected, scrub

_TYPES = {
    "invalid_request": "invalid_request_error",
    "authentication": "invalid_request_error",
    "permission": "invalid_request_error",
    "not_found": "invalid_request_error",
    "quota": "insufficient_quota",
    "rate_limit": "requests",
    "upstream": "server_error",
    "overloaded": "server_error",
    "server_error": "server_error",
}


def error_body(error: GatewayError, request_id: str | None = None) -> bytes:
    message = error.message
    if request_id and error.status >= 500:
        message = f"{message} (request id: {request_id})"
    error_type = error.error_type if isinstance(error, UpstreamRejected) and error.error_type else None
    return orjson.dumps({"error": {
        "message": message,
        "type": error_type or _TYPES.get(error.kind, "server_error"),
        "param": error.param,
        "code": error.code,
    }})


def stream_error_frame(error: GatewayError, request_id: str | None = None) -> bytes:
    """The in-stream error event OpenAI sends after a stream has started (the SDK raises on it)."""
    return b"data: " + error_body(error, request_id) + b"\n\n"


def parse_upstream_error(status: int, body: bytes) -> UpstreamRejected:
    """Turn an upstream's 4xx body into a relayable error with a scrubbed message."""
    message, code, param, error_type = f"upstream answered HTTP {status}", None, None, None
    try:
        parsed: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    err = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(err, dict):
        if isinstance(err.get("message"), str) and err["message"]:
            message = scrub(err["message"])
        code = err.get("code") if isinstance(err.get("code"), str) else None
        param = err.get("param") if isinstance(err.get("param"), str) else None
        error_type = err.get("type") if isinstance(err.get("type"), str) else None
    elif isinstance(err, str):
        message = scrub(err)
    return UpstreamRejected(status, message, code=code, param=param, error_type=error_type)
