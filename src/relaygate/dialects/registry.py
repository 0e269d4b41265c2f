"""The one place that names the wire dialects."""

from __future__ import annotations

from relaygate.dialects.anthropic.adapter import ANTHROPIC
from relaygate.dialects.base import Dialect, EmbeddingsDialect
from relaygate.dialects.gemini.adapter import GEMINI, GEMINI_JSON_ARRAY
from relaygate.dialects.gemini.embeddings import GEMINI_EMBEDDINGS, GEMINI_SINGLE_EMBEDDINGS
from relaygate.dialects.openai.adapter import OPENAI
from relaygate.dialects.openai.embeddings import OPENAI_EMBEDDINGS

_DIALECTS: dict[str, Dialect] = {d.name: d for d in (OPENAI, ANTHROPIC, GEMINI)}
_DIALECTS["gemini-json-array"] = GEMINI_JSON_ARRAY  # streams without ?alt=sse (surfaces/gemini.py)

# Embeddings formats: Anthropic has none. "gemini-single" is a client's embedContent (surfaces/gemini.py).
_EMBEDDINGS: dict[str, EmbeddingsDialect] = {
    d.name: d for d in (OPENAI_EMBEDDINGS, GEMINI_EMBEDDINGS, GEMINI_SINGLE_EMBEDDINGS)}


def dialect(name: str) -> Dialect:
    return _DIALECTS[name]


def known_dialects() -> tuple[str, ...]:
    return tuple(_DIALECTS)


def embeddings_dialect(name: str) -> EmbeddingsDialect:
    return _EMBEDDINGS[name]
