"""The provider-neutral embeddings model: what is to be embedded, and the vectors that come back.

OpenAI's ``/v1/embeddings`` and Gemini's ``embedContent`` / ``batchEmbedContents`` convert to and from
these types (``dialects/<name>/embeddings.py``). What only one dialect can say travels in ``extras``
(keyed by dialect name), as in ``core.chat``; ``docs/translation.md`` says what each direction keeps.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum

from relaygate.core.chat import Extras
from relaygate.core.usage import Usage


class VectorEncoding(StrEnum):
    """How the caller wants each vector written: JSON numbers, or (OpenAI only) base64 of float32s."""

    FLOAT = "float"
    BASE64 = "base64"


@dataclass(frozen=True, slots=True)
class EmbeddingInput:
    """One thing to embed: ``text``, or (OpenAI only) the ``tokens`` of a text, already tokenized.

    ``task_type`` and ``title`` are Gemini's hints (``RETRIEVAL_DOCUMENT``...); other dialects drop
    them. ``extras["gemini"]`` keeps a Gemini request's ``content`` as sent (with any non-text part) and
    its fields without a neutral meaning.
    """

    text: str | None = None
    tokens: tuple[int, ...] | None = None
    task_type: str | None = None
    title: str | None = None
    extras: Extras = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class EmbeddingsRequest:
    model: str
    inputs: tuple[EmbeddingInput, ...]
    dimensions: int | None = None  # None: the model's own size
    encoding: VectorEncoding = VectorEncoding.FLOAT
    user: str | None = None
    extras: Extras = field(default_factory=dict)  # e.g. unknown top-level OpenAI fields

    @property
    def has_tokens(self) -> bool:
        return any(item.tokens is not None for item in self.inputs)


@dataclass(frozen=True, slots=True)
class EmbeddingsResponse:
    """One vector per input, in input order. ``usage`` is None when the upstream reported none (Gemini)."""

    vectors: tuple[tuple[float, ...], ...]
    model: str | None = None
    usage: Usage | None = None
