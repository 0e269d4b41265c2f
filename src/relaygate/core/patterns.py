"""Model-name patterns: ``*`` matches any run of characters (``gpt-4-gizmo-*``), nothing else is special."""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache


def is_pattern(name: str) -> bool:
    return "*" in name


@lru_cache(maxsize=4096)
def compile_pattern(pattern: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$")


def matches(pattern: str, name: str) -> bool:
    if not is_pattern(pattern):
        return pattern == name
    return compile_pattern(pattern).match(name) is not None


def best_match(patterns: Iterable[str], name: str) -> str | None:
    """The exact name if present, else the most specific matching pattern (most literal characters)."""
    best: str | None = None
    for pattern in patterns:
        if pattern == name:
            return pattern
        more_specific = best is None or len(pattern.replace("*", "")) > len(best.replace("*", ""))
        if more_specific and is_pattern(pattern) and matches(pattern, name):
            best = pattern
    return best
