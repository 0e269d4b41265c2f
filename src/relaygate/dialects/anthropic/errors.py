"""Errors in Anthropic's shape: ``{"type": "error", "error": {"type", "message"}}``.

The error object also carries relaygate's stable ``code`` (docs/errors.md); Anthropic's SDKs ignore
fields they do not know and choose the exception class by HTTP status.
"""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.dialects.anthropic.shared import ERROR_KIND_IN, ERROR_KIND_OUT
from relaygate.errors import GatewayError, UpstreamRejected, scrub

_BY_STATUS = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
              403: "permission_error", 404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
              500: "api_error", 502: "api_error", 503: "overloaded_error", 504: "timeout_error",
              529: "overloaded_error"}


def error_type(error: GatewayError) -> str:
    if error.status in (413, 504):
        return _BY_STATUS[error.status]
    if error.kind in ERROR_KIND_OUT and error.kind != "upstream":
        return ERROR_KIND_OUT[error.kind]
    return _BY_STATUS.get(error.status, "api_error" if error.status >= 500 else "invalid_request_error")


def error_payload(error: GatewayError, request_id: str) -> dict[str, Any]:
    message = error.message
    if error.status >= 500:
        message = f"{message} (request id: {request_id})"
    return {"type": "error", "error": {"type": error_type(error), "message": message, "code": error.code},
            "request_id": request_id}


def error_body(error: GatewayError, request_id: str) -> tuple[int, bytes]:
    return error.status, orjson.dumps(error_payload(error, request_id))


def stream_error_frame(error: GatewayError, request_id: str) -> bytes:
    return b"event: error\ndata: " + orjson.dumps(error_payload(error, request_id)) + b"\n\n"


def parse_upstream_error(status: int, body: bytes) -> UpstreamRejected:
    """An Anthropic upstream's 4xx as a relayable error with a scrubbed message."""
    message, error_kind = f"upstream answered HTTP {status}", None
    try:
        parsed: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    err = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(err, dict):
        if isinstance(err.get("message"), str) and err["message"]:
            message = scrub(err["message"])
        if isinstance(err.get("type"), str):
            error_kind = err["type"]
    # Anthropic's error type is not another dialect's: it travels as the neutral kind, which each client
    # dialect renders in its own words (this one's ``error_type`` maps it back).
    rejected = UpstreamRejected(status, message, code=None, param=None, error_type=None)
    if error_kind in ERROR_KIND_IN:
        rejected.kind = ERROR_KIND_IN[error_kind]
    return rejected
