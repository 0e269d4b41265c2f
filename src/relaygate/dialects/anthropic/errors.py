"""Errors in Anthropic's shape: ``{"type": "error", "error": {"type", "message"}}``.

The error object also carries relaygate's stable ``code`` (docs/errors.md); Anthropic's SDKs ignore
fields they do not know and choose the exception class by HTTP status.
"""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.core.wire import loads_or_none
from relaygate.dialects.anthropic.shared import ERROR_KIND_IN, ERROR_KIND_OUT
from relaygate.errors import GatewayError, UpstreamRejected
from relaygate.scrub import Scrubber

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


def parse_upstream_error(status: int, body: bytes, scrubber: Scrubber) -> UpstreamRejected:
    """An Anthropic upstream's error answer as a relayable error, rebuilt from its message (scrubbed)."""
    message, error_kind = f"upstream answered HTTP {status}", None
    parsed = loads_or_none(body)
    err = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(err, dict):
        if isinstance(err.get("message"), str) and err["message"]:
            message = err["message"]
        error_kind = err.get("type")
    # Anthropic's error type is not another dialect's: it travels as the neutral kind, which each client
    # dialect renders in its own words (this one's ``error_type`` maps it back).
    kind = ERROR_KIND_IN.get(error_kind) if isinstance(error_kind, str) else None
    return UpstreamRejected(status, scrubber, message=message, kind=kind)


# The HTTP status of each error type (spec/anthropic.md §5).
_STATUS_OF = {"invalid_request_error": 400, "authentication_error": 401, "billing_error": 402,
              "permission_error": 403, "not_found_error": 404, "request_too_large": 413, "rate_limit_error": 429,
              "api_error": 500, "timeout_error": 504, "overloaded_error": 529}


def error_status(parsed: Any) -> int | None:
    """The HTTP status of an error (``{"type": "error", ...}``) that an upstream answered with HTTP 200;
    None when ``parsed`` is not one. An unknown error type is the upstream's failure (500)."""
    if not isinstance(parsed, dict) or parsed.get("type") != "error":
        return None
    err = parsed.get("error")
    error_kind = err.get("type") if isinstance(err, dict) else None
    return _STATUS_OF.get(error_kind, 500) if isinstance(error_kind, str) else 500
