"""Defensive readers for parsed JSON wire bodies, shared by every dialect's converters.

Client and upstream bodies are untrusted: a field of the wrong type reads as absent rather than
raising, so a converter never fails halfway on a malformed value (surfaces validate what matters).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def as_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def as_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def as_number(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def count(value: Any) -> int:
    """A token count: a non-negative int, else 0."""
    number = as_int(value)
    return number if number is not None and number > 0 else 0


def leftovers(body: Mapping[str, Any], known: frozenset[str]) -> dict[str, Any]:
    """The fields of ``body`` a converter does not map (they go to ``extras``)."""
    return {key: value for key, value in body.items() if key not in known}


def merge_missing(target: dict[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    """Add ``extra``'s fields that ``target`` does not already have; returns ``target``."""
    for key, value in extra.items():
        target.setdefault(key, value)
    return target


def loads_or_none(payload: bytes) -> Any:
    """The parsed JSON, or None when the bytes are empty or not JSON (an upstream's broken answer)."""
    try:
        return orjson.loads(payload) if payload else None
    except orjson.JSONDecodeError:
        return None
