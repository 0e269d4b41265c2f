"""Hints for a misspelt name: the closest valid one. Used by the config file's checks, the admin API's
and the providers' option checks, so it sits below all of them."""

from __future__ import annotations

import difflib


def did_you_mean(name: str, candidates: tuple[str, ...] | list[str]) -> str:
    """`` (did you mean 'x'?)`` naming the closest candidate to a misspelt ``name``, or '' when none is close."""
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.6)
    return f" (did you mean '{match[0]}'?)" if match else ""


def unknown_name(what: str, name: str, allowed: tuple[str, ...] | list[str]) -> str:
    """One sentence for an unknown field: its name, the closest valid one, and every valid one."""
    return f"unknown {what} '{name}'{did_you_mean(name, allowed)}; expected one of: {', '.join(allowed)}"
