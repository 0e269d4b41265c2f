"""Errors in Google's shape: ``{"error": {"code", "message", "status", "details"}}``.

relaygate's stable code travels as a ``google.rpc.ErrorInfo`` detail (``reason``), Google's own way
of giving an error a machine-readable name.
"""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.dialects.gemini.shared import ERROR_KIND_IN
from relaygate.errors import GatewayError, UpstreamRejected, scrub

_STATUS = {400: "INVALID_ARGUMENT", 401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND",
           408: "DEADLINE_EXCEEDED", 409: "ABORTED", 413: "INVALID_ARGUMENT", 429: "RESOURCE_EXHAUSTED",
           500: "INTERNAL", 502: "UNAVAILABLE",
           503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED"}


def error_payload(error: GatewayError, request_id: str) -> dict[str, Any]:
    message = error.message if error.status < 500 else f"{error.message} (request id: {request_id})"
    status = _STATUS.get(error.status, "INTERNAL" if error.status >= 500 else "INVALID_ARGUMENT")
    info = {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": error.code, "domain": "relaygate",
            "metadata": {"request_id": request_id}}
    return {"error": {"code": error.status, "message": message, "status": status, "details": [info]}}


def error_body(error: GatewayError, request_id: str) -> tuple[int, bytes]:
    return error.status, orjson.dumps(error_payload(error, request_id))


def stream_error_frame(error: GatewayError, request_id: str) -> bytes:
    return b"data: " + orjson.dumps(error_payload(error, request_id)) + b"\n\n"


def array_error_frame(error: GatewayError, request_id: str) -> bytes:
    """The error as the last element of a JSON-array stream (which it also closes)."""
    return b",\r\n" + orjson.dumps(error_payload(error, request_id)) + b"]"


def parse_upstream_error(status: int, body: bytes) -> UpstreamRejected:
    message, status_word = f"upstream answered HTTP {status}", None
    try:
        parsed: Any = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, list) and parsed:  # Google sometimes wraps the error in an array
        parsed = parsed[0]
    err = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(err, dict):
        if isinstance(err.get("message"), str) and err["message"]:
            message = scrub(err["message"])
        if isinstance(err.get("status"), str):
            status_word = err["status"]
    # Google's status word is not another dialect's error type: it travels as the neutral kind, which
    # each client dialect renders in its own words (OpenAI's ``type``, Anthropic's ``error.type``).
    rejected = UpstreamRejected(status, message, code=None, param=None, error_type=None)
    if status_word in ERROR_KIND_IN:
        rejected.kind = ERROR_KIND_IN[status_word]
    return rejected
