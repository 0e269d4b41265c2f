"""Hostile-input classes known to fail, while their fix is on its way (empty when all are fixed).

A class named in ``KNOWN_BROKEN`` (name -> why, with the issue that fixes it) is left out of the generic
fuzz runs and sent on its own as a strict xfail (``test_known_classes.py``), which fails loudly once the
class passes, so the entry is removed with the fix. Every class of issue 9 is fixed.
"""

from __future__ import annotations

from typing import Any

import pytest

KNOWN_BROKEN: dict[str, str] = {}


def broken(name: str) -> bool:
    return name in KNOWN_BROKEN


def known_class(name: str, *args: Any) -> Any:
    """A pytest param for a hostile class: a strict xfail while the class is in ``KNOWN_BROKEN``."""
    marks = [pytest.mark.xfail(strict=True, reason=KNOWN_BROKEN[name])] if broken(name) else []
    return pytest.param(name, *args, marks=marks, id="-".join([name, *map(str, args)]))
