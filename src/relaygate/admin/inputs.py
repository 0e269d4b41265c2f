"""Reading the operator's input (JSON bodies, query strings, CLI values) into database values.

Every reader raises ``InvalidRequest`` naming the offending ``param`` with a stable code:
``missing_field``, ``unknown_field``, ``unknown_parameter``, ``invalid_type`` or ``invalid_value``.
Messages never repeat the value they reject (it may be a secret).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlsplit

from relaygate.auth.records import parse_networks
from relaygate.billing.money import usd_to_nano
from relaygate.billing.pricing import PRICE_FIELDS
from relaygate.errors import InvalidRequest
from relaygate.hints import did_you_mean
from relaygate.providers.registry import known_kinds
from relaygate.settings import endpoint_in_base_url

INT32_MAX = 2**31 - 1
INT64_MAX = 2**63 - 1
NAME_MAX = 200
MAX_PAGE = 1000
DEFAULT_PAGE = 50
GROUPS = ("key_id", "model", "channel_id", "day")
_MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z

Reader = Callable[[Any, str], Any]


def invalid(param: str, message: str, code: str = "invalid_value") -> InvalidRequest:
    return InvalidRequest(message, param=param, code=code)


def reject_unknown(body: Mapping[str, Any], allowed: tuple[str, ...], code: str = "unknown_field") -> None:
    unknown = sorted(set(body) - set(allowed))
    if unknown:
        raise invalid(unknown[0], f"Unknown field '{unknown[0]}'{did_you_mean(unknown[0], allowed)}; "
                      f"expected one of: {', '.join(allowed)}.", code)


def require(body: Mapping[str, Any], names: tuple[str, ...]) -> None:
    for name in names:
        if body.get(name) is None:
            raise invalid(name, f"'{name}' is required.", "missing_field")


# --- scalar readers -----------------------------------------------------------------------------

def text(value: Any, param: str) -> str:
    if not isinstance(value, str):
        raise invalid(param, f"'{param}' must be a string.", "invalid_type")
    return value


def name(value: Any, param: str) -> str:
    stripped = text(value, param).strip()
    if not stripped or len(stripped) > NAME_MAX:
        raise invalid(param, f"'{param}' must be 1 to {NAME_MAX} characters.")
    return stripped


def boolean(value: Any, param: str) -> bool:
    if not isinstance(value, bool):
        raise invalid(param, f"'{param}' must be true or false.", "invalid_type")
    return value


def integer(value: Any, param: str, low: int = -INT32_MAX - 1, high: int = INT32_MAX) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid(param, f"'{param}' must be an integer.", "invalid_type")
    if not low <= value <= high:
        raise invalid(param, f"'{param}' must be between {low} and {high}.")
    return value


def usd(value: Any, param: str) -> int:
    """Exact nano-dollars from a decimal string or a JSON number (read from its text, never a float)."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise invalid(param, f"'{param}' must be a decimal string or a number of USD.", "invalid_type")
    try:
        nano = usd_to_nano(value, f"'{param}'")
    except ValueError as exc:
        raise invalid(param, str(exc) + ".") from exc
    if nano > INT64_MAX:
        raise invalid(param, f"'{param}' is too large.")
    return nano


def timestamp(value: Any, param: str) -> int:
    return integer(value, param, 0, _MAX_MS // 1000)


def optional(reader: Reader) -> Reader:
    def read(value: Any, param: str) -> Any:
        return None if value is None else reader(value, param)

    return read


def strings(value: Any, param: str) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid(param, f"'{param}' must be an array of strings.", "invalid_type")
    items = [v.strip() for v in value]
    if any(not v or len(v) > NAME_MAX for v in items):
        raise invalid(param, f"Every entry of '{param}' must be 1 to {NAME_MAX} characters.")
    return list(dict.fromkeys(items))


def key_models(value: Any, param: str) -> list[str]:
    items = strings(value, param)
    if not items:
        raise invalid(param, f"'{param}' must list at least one model pattern (\"*\" allows every model).")
    return items


def networks(value: Any, param: str) -> list[str]:
    items = strings(value, param)
    try:
        parse_networks(items)
    except ValueError as exc:
        raise invalid(param, f"Every entry of '{param}' must be an IP address or CIDR block.") from exc
    return items


def string_map(value: Any, param: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) and v for v in value.values()):
        raise invalid(param, f"'{param}' must be an object of model name to model name.", "invalid_type")
    return {name(k, param): v for k, v in value.items()}


def json_object(value: Any, param: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid(param, f"'{param}' must be an object.", "invalid_type")
    return value


def kind(value: Any, param: str) -> str:
    chosen = text(value, param)
    if chosen not in known_kinds():
        hint = did_you_mean(chosen, known_kinds())
        raise invalid(param, f"'{param}' must be one of: {', '.join(known_kinds())}{hint}.")
    return chosen


def _http_url(url: str) -> bool:
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port  # raises ValueError when the port is not a number in range
    except ValueError:
        return False
    plain = not parts.query and not parts.fragment and not any(c.isspace() for c in url)
    return parts.scheme in ("http", "https") and bool(host) and plain


def base_url(value: Any, param: str) -> str:
    url = text(value, param).strip()
    if url and not _http_url(url):
        raise invalid(param, f"'{param}' must be an http:// or https:// URL without query or fragment.")
    problem = endpoint_in_base_url(url)
    if problem:
        raise invalid(param, f"'{param}'{problem.removeprefix('base_url')}.")
    return url


def weight(value: Any, param: str) -> int:
    return integer(value, param, 0, INT32_MAX)


# --- bodies -------------------------------------------------------------------------------------

KEY_READERS: dict[str, tuple[str, Reader]] = {
    "name": ("name", name),
    "quota_usd": ("quota_nano", optional(usd)),
    "models": ("models", key_models),
    "ip_allow": ("ip_allow", networks),
    "expires_at": ("expires_at", optional(timestamp)),
    "enabled": ("enabled", boolean),
}

CHANNEL_READERS: dict[str, tuple[str, Reader]] = {
    "name": ("name", name),
    "type": ("type", kind),
    "base_url": ("base_url", base_url),
    "api_key": ("api_key", optional(text)),
    "models": ("models", strings),
    "model_map": ("model_map", string_map),
    "priority": ("priority", integer),
    "weight": ("weight", weight),
    "enabled": ("enabled", boolean),
    "options": ("options", json_object),
}


def read_body(body: Mapping[str, Any], readers: Mapping[str, tuple[str, Reader]],
              required: tuple[str, ...] = ()) -> dict[str, Any]:
    """Database values for the fields present in ``body`` (a PATCH sends only what changes)."""
    reject_unknown(body, tuple(readers))
    require(body, required)
    values: dict[str, Any] = {}
    for field, raw in body.items():
        column, reader = readers[field]
        values[column] = reader(raw, field)
    return values


def price_body(body: Mapping[str, Any]) -> dict[str, Any]:
    """A price body checked field by field, so that each error names its field."""
    reject_unknown(body, PRICE_FIELDS)
    if not any(body.get(f) is not None for f in PRICE_FIELDS):
        raise invalid(PRICE_FIELDS[0], f"Send at least one of: {', '.join(PRICE_FIELDS)}.", "missing_field")
    for field, raw in body.items():
        if field == "per_image" and isinstance(raw, Mapping):
            _image_amounts(raw)
        else:
            optional(usd)(raw, field)
    return dict(body)


def _image_amounts(raw: Mapping[str, Any]) -> None:
    if "default" not in raw:
        raise invalid("per_image", "'per_image' must have a 'default' amount beside its sizes and qualities "
                      "(e.g. {\"default\": \"0.04\", \"1792x1024/hd\": \"0.12\"}).", "missing_field")
    for key, value in raw.items():
        if not key or len(key) > 64:
            raise invalid("per_image", "'per_image' keys must be sizes ('1024x1024'), 'size/quality', "
                          "'*/quality' or 'default'.")
        usd(value, f"per_image.{key}")


# --- query strings ------------------------------------------------------------------------------

FILTER_PARAMS = ("key_id", "model", "channel_id", "end_reason", "request_id", "client_request_id", "since", "until")
LIST_PARAMS = (*FILTER_PARAMS, "limit", "cursor")
SUMMARY_PARAMS = (*FILTER_PARAMS, "group_by")


def query_int(value: str, param: str, low: int, high: int) -> int:
    if not value.isascii() or not value.isdigit() or len(value) > 19:
        raise invalid(param, f"'{param}' must be a whole number.", "invalid_type")
    return integer(int(value), param, low, high)


def instant_ms(value: str, param: str) -> int:
    """Unix seconds (``1718000000`` or ``1718000000.5``) or ISO-8601 (a zone-less time is UTC)."""
    try:
        seconds = Decimal(value)
    except InvalidOperation:
        return _check_ms(_iso_ms(value, param), param)
    if not seconds.is_finite() or not 0 <= seconds <= _MAX_MS // 1000:
        raise invalid(param, f"'{param}' is out of range.")
    return int(seconds * 1000)


def _iso_ms(value: str, param: str) -> int:
    try:
        moment = datetime.fromisoformat(value)
    except ValueError as exc:
        raise invalid(param, f"'{param}' must be unix seconds or an ISO-8601 time.") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        return int(moment.timestamp() * 1000)
    except (OverflowError, ValueError) as exc:
        raise invalid(param, f"'{param}' is out of range.") from exc


def _check_ms(ms: int, param: str) -> int:
    if not 0 <= ms <= _MAX_MS:
        raise invalid(param, f"'{param}' is out of range.")
    return ms


def usage_filters(params: Mapping[str, str]) -> dict[str, Any]:
    """Filters from a query string. A numeric parameter that is present must be a number (``key_id=``
    is a 400, not a missing filter); an empty text parameter filters nothing."""
    filters: dict[str, Any] = {}
    for param in ("key_id", "channel_id"):
        if param in params:
            filters[param] = query_int(params[param], param, 0, INT32_MAX)
    for param in ("model", "end_reason", "request_id", "client_request_id"):
        if params.get(param):
            filters[param] = params[param]
    for param in ("since", "until"):
        if params.get(param):
            filters[param + "_ms"] = instant_ms(params[param], param)
    return filters


def page(params: Mapping[str, str]) -> tuple[int, int | None]:
    limit = query_int(params["limit"], "limit", 1, MAX_PAGE) if "limit" in params else DEFAULT_PAGE
    cursor = query_int(params["cursor"], "cursor", 1, INT64_MAX) if "cursor" in params else None
    return limit, cursor


def group_by(params: Mapping[str, str]) -> list[str]:
    raw = params.get("group_by") or ""
    groups = list(dict.fromkeys(g.strip() for g in raw.split(",") if g.strip()))
    for group in groups:
        if group not in GROUPS:
            raise invalid("group_by", f"'group_by' takes a comma-separated subset of: {', '.join(GROUPS)}.")
    return groups
