"""relaygate's errors in the Midjourney dialect: a ``SubmitResultVO`` (spec/midjourney.md §2) with the
proxies' result code, and the HTTP status of an upstream's failing result code.

The error shape is the proxies' own (``code``/``description``/``result``/``properties``) rather than
new-api's ``{"description", "type", "code"}``, so a client reads refusals from relaygate and from the
upstream the same way; relaygate's stable error code and the request id ride in ``properties``.
"""

from __future__ import annotations

import orjson

from relaygate.dialects.midjourney import codes
from relaygate.errors import GatewayError


def mj_code_for(error: GatewayError) -> int:
    """The result code for a relaygate error: not found 3, rate/quota limits 23 (the proxies' "queue full",
    the one code that says "try later"), other client errors 4, server-side failures 9."""
    status = error.status
    if status == 404:
        return codes.NOT_FOUND
    if status == 429:
        return codes.QUEUE_REJECTED
    if 400 <= status < 500:
        return codes.VALIDATION_ERROR
    return codes.FAILURE


def error_body(error: GatewayError, request_id: str) -> bytes:
    """The JSON body of an error answer."""
    return orjson.dumps({"code": mj_code_for(error), "description": error.message, "result": None,
                         "properties": {"error": error.code, "request_id": request_id}})


def upstream_http_status(code: int) -> int:
    """The HTTP status for an upstream submit answered with a failing result code (newer new-api, §2):
    queue full 429, banned prompt or bad parameters 400, "no account instance" 503, anything else 502."""
    if code == codes.QUEUE_REJECTED:
        return 429
    if code in (codes.BANNED_PROMPT, codes.VALIDATION_ERROR):
        return 400
    if code == codes.NOT_FOUND:
        return 503
    return 502
