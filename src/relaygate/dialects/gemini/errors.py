"""Errors in Google's shape: ``{"error": {"code", "message", "status", "details"}}``.

relaygate's stable code travels as a ``google.rpc.ErrorInfo`` detail (``reason``), Google's own way
of giving an error a machine-readable name.
"""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.core.wire import loads_or_none
from relaygate.dialects.gemini.shared import ERROR_KIND_IN
from relaygate.errors import GatewayError, UpstreamRejected
from relaygate.scrub import Scrubber

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


def parse_upstream_error(status: int, body: bytes, scrubber: Scrubber) -> UpstreamRejected:
    """A Gemini upstream's error answer as a relayable error, rebuilt from its message (scrubbed);
    ``details`` (which may name projects, services and URLs) are left out."""
    message, status_word = f"upstream answered HTTP {status}", None
    err = _error_of(loads_or_none(body))
    if isinstance(err, dict):
        if isinstance(err.get("message"), str) and err["message"]:
            message = err["message"]
        status_word = err.get("status")
    # Google's status word is not another dialect's error type: it travels as the neutral kind, which
    # each client dialect renders in its own words (OpenAI's ``type``, Anthropic's ``error.type``).
    kind = ERROR_KIND_IN.get(status_word) if isinstance(status_word, str) else None
    return UpstreamRejected(status, scrubber, message=message, kind=kind)


_STATUS_OF = {word: status for status, word in _STATUS.items() if status not in (413, 502)}


def error_status(parsed: Any) -> int | None:
    """The HTTP status of an error (``{"error": {...}}`` without candidates) that an upstream answered
    with HTTP 200; None when ``parsed`` is not one. Its numeric ``code`` wins, then its status word; an
    error that says neither is the upstream's failure (500)."""
    err = _error_of(parsed)
    if not err:
        return None
    if isinstance(parsed, dict) and (parsed.get("candidates") or parsed.get("embedding") or parsed.get("embeddings")):
        return None
    code = err.get("code") if isinstance(err, dict) else None
    if isinstance(code, int) and not isinstance(code, bool) and 400 <= code <= 599:
        return code
    word = err.get("status") if isinstance(err, dict) else None
    return _STATUS_OF.get(word, 500) if isinstance(word, str) else 500


def _error_of(parsed: Any) -> Any:
    if isinstance(parsed, list) and parsed:  # Google sometimes wraps the error in an array
        parsed = parsed[0]
    return parsed.get("error") if isinstance(parsed, dict) else None
