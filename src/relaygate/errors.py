"""The one error hierarchy. Each error knows its HTTP status and a stable code (docs/errors.md).

Nothing here renders HTTP: each surface turns a ``GatewayError`` into its own dialect's shape.
"""

from __future__ import annotations

import re


class ConfigError(Exception):
    """The configuration cannot be used; raised at start, never while serving."""


class GatewayError(Exception):
    """An error with a client-facing status and stable code.

    ``kind`` is a dialect-neutral category that each surface maps to its own error type
    (OpenAI ``type``, Anthropic ``error.type``, Google ``status``).
    """

    status: int = 500
    code: str = "internal_error"
    kind: str = "server_error"
    retryable: bool = False

    def __init__(self, message: str, *, param: str | None = None, code: str | None = None,
                 status: int | None = None, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.headers = headers or {}


class InvalidRequest(GatewayError):
    status = 400
    code = "invalid_request"
    kind = "invalid_request"


class InvalidJSON(InvalidRequest):
    code = "invalid_json"


class BodyTooLarge(InvalidRequest):
    status = 413
    code = "body_too_large"


class BodyTimeout(InvalidRequest):
    status = 408
    code = "body_timeout"


class AuthenticationFailed(GatewayError):
    status = 401
    code = "invalid_api_key"
    kind = "authentication"


class PermissionDenied(GatewayError):
    status = 403
    code = "permission_denied"
    kind = "permission"


class NotFound(GatewayError):
    status = 404
    code = "not_found"
    kind = "not_found"


class ModelNotFound(NotFound):
    code = "model_not_found"


class InsufficientQuota(GatewayError):
    status = 429
    code = "insufficient_quota"
    kind = "quota"


class RateLimited(GatewayError):
    status = 429
    code = "rate_limit_exceeded"
    kind = "rate_limit"
    retryable = True


class PriceMissing(GatewayError):
    status = 403
    code = "model_price_missing"
    kind = "permission"


class UpstreamError(GatewayError):
    """The upstream failed in a way the client cannot fix; the message is ours, never the upstream's."""

    status = 502
    code = "upstream_error"
    kind = "upstream"
    retryable = True


class UpstreamTimeout(UpstreamError):
    status = 504
    code = "upstream_timeout"


class NoChannelAvailable(GatewayError):
    status = 503
    code = "no_channel_available"
    kind = "overloaded"
    retryable = True


class ShuttingDown(GatewayError):
    status = 503
    code = "shutting_down"
    kind = "overloaded"
    retryable = True


class UpstreamRejected(GatewayError):
    """The upstream refused the request itself (a 4xx it would give any caller): relayed to the client
    with the upstream's status and a scrubbed message, because the client can fix it."""

    kind = "invalid_request"

    def __init__(self, status: int, message: str, *, code: str | None, param: str | None,
                 error_type: str | None) -> None:
        super().__init__(message, code=code or "upstream_rejected", status=status, param=param)
        self.error_type = error_type


_SECRETISH = re.compile(
    r"(sk-[A-Za-z0-9_\-*]{6,}|key-[A-Za-z0-9]{8,}|AIza[0-9A-Za-z_\-]{20,}|Bearer\s+\S+"
    r"|https?://[^\s\"')]+|\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b)"
)


def scrub(message: str, limit: int = 1000) -> str:
    """Upstream text on its way to a client: no keys, URLs or addresses, bounded length."""
    return _SECRETISH.sub("[redacted]", message)[:limit]
