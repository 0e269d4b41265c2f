"""Hostile-input classes that fail on this branch because another branch fixes them (issue 9).

The one switch for the coordinator: once a fix is merged, delete its name from ``KNOWN_BROKEN``. Then
the generic fuzz tests generate that class too, and its dedicated test (``test_known_classes.py``) runs
as a normal test instead of a strict xfail (which fails loudly if the class starts passing unnoticed).
"""

from __future__ import annotations

from typing import Any

import pytest

ITEM6 = "issue 9 item 6: fixed on branch shield"
ITEM2 = "issue 9 item 2: aiohttp logs oversized headers; fixed on another helper's branch"
FOUND = "found by this suite (issue 9 item 8), reported to the coordinator, not fixed yet"

# class name -> why it fails here
KNOWN_BROKEN: dict[str, str] = {
}


def broken(name: str) -> bool:
    return name in KNOWN_BROKEN


def known_class(name: str, *args: Any) -> Any:
    """A pytest param for a hostile class: a strict xfail while the class is in ``KNOWN_BROKEN``."""
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN_BROKEN[name])] if broken(name) else []
    return pytest.param(name, *args, marks=marks, id="-".join([name, *map(str, args)]))
