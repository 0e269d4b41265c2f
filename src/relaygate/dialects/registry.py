"""The one place that names the wire dialects."""

from __future__ import annotations

from relaygate.dialects.anthropic.adapter import ANTHROPIC
from relaygate.dialects.base import Dialect
from relaygate.dialects.gemini.adapter import GEMINI, GEMINI_JSON_ARRAY
from relaygate.dialects.openai.adapter import OPENAI

_DIALECTS: dict[str, Dialect] = {d.name: d for d in (OPENAI, ANTHROPIC, GEMINI)}
_DIALECTS["gemini-json-array"] = GEMINI_JSON_ARRAY  # streams without ?alt=sse (surfaces/gemini.py)


def dialect(name: str) -> Dialect:
    return _DIALECTS[name]


def known_dialects() -> tuple[str, ...]:
    return tuple(_DIALECTS)
