"""Errors in OpenAI's shape: ``{"error": {"message", "type", "param", "code"}}``."""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.core.wire import loads_or_none
from relaygate.errors import GatewayError, UpstreamRejected
from relaygate.scrub import Scrubber

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


def parse_upstream_error(status: int, body: bytes, scrubber: Scrubber) -> UpstreamRejected:
    """An upstream's error answer as a relayable error, rebuilt from its known fields (scrubbed there)."""
    message: str = f"upstream answered HTTP {status}"
    code = param = error_type = None
    err = _error_of(loads_or_none(body))
    if isinstance(err, dict):
        if isinstance(err.get("message"), str) and err["message"]:
            message = err["message"]
        code, param, error_type = err.get("code"), err.get("param"), err.get("type")
    elif isinstance(err, str) and err:
        message = err
    return UpstreamRejected(status, scrubber, message=message, code=code, param=param, error_type=error_type)


def scrubbed_error(error: Any, scrubber: Scrubber) -> dict[str, Any]:
    """An upstream's in-stream error object rebuilt from its known fields (message, type, param, code),
    every one scrubbed; anything else it carried is left out."""
    fields: dict[str, Any] = error if isinstance(error, dict) else {"message": str(error)}
    message, code = fields.get("message"), fields.get("code")
    return {
        "message": scrubber.message(message, "The upstream failed mid-stream."),
        "type": scrubber.optional(fields.get("type")) or "server_error",
        "param": scrubber.optional(fields.get("param")),
        "code": code if isinstance(code, int) and not isinstance(code, bool) else scrubber.optional(code),
    }


# What an error answered with HTTP 200 stands for, when it names no HTTP status itself.
_STATUS_OF = {"invalid_request_error": 400, "invalid_api_key": 401, "authentication_error": 401,
              "permission_error": 403, "not_found_error": 404, "model_not_found": 404, "insufficient_quota": 429,
              "rate_limit_exceeded": 429, "requests": 429, "tokens": 429}


def error_status(parsed: Any) -> int | None:
    """The HTTP status of an error that an upstream answered with HTTP 200 (``{"error": {...}}`` and no
    result); None when ``parsed`` is not an error. The error's own numeric code wins, then its code or
    type; an error that says neither is the upstream's failure (500)."""
    err = _error_of(parsed)
    if not err or not isinstance(err, dict | str) or not isinstance(parsed, dict) \
            or parsed.get("choices") or parsed.get("data"):
        return None
    if isinstance(err, str):
        return 500
    for value in (err.get("code"), err.get("status"), parsed.get("status")):
        number = int(value) if isinstance(value, str) and value.isdigit() else value
        if isinstance(number, int) and not isinstance(number, bool) and 400 <= number <= 599:
            return number
    for value in (err.get("code"), err.get("type")):
        if isinstance(value, str) and value in _STATUS_OF:
            return _STATUS_OF[value]
    return 500


def _error_of(parsed: Any) -> Any:
    return parsed.get("error") if isinstance(parsed, dict) else None

