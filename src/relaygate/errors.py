"""The one error hierarchy. Each error knows its HTTP status and a stable code (docs/errors.md).

Nothing here renders HTTP: each surface turns a ``GatewayError`` into its own dialect's shape.
"""

from __future__ import annotations

from relaygate.scrub import Scrubber
from relaygate.scrub import scrub as scrub  # re-exported: text with no channel known


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


QUOTA_EXCEEDED = "You exceeded your current quota, please check your plan and billing details."


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
    with the upstream's status, because the client can fix it.

    Built only from the known fields of an upstream error (message, code, param, type), each passed
    through the channel's scrubber here, so no upstream string reaches a client unscrubbed. ``kind``
    is one of relaygate's own words (a dialect's table maps the upstream's type to it), not upstream text.
    """

    kind = "invalid_request"

    def __init__(self, status: int, scrubber: Scrubber, *, message: str, code: object = None,
                 param: object = None, error_type: object = None, kind: str | None = None) -> None:
        super().__init__(scrubber.text(message), code=scrubber.optional(code) or "upstream_rejected",
                         status=status, param=scrubber.optional(param))
        self.error_type = scrubber.optional(error_type)
        if kind is not None:
            self.kind = kind
