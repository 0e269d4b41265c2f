"""Offline token counting, the fallback when an upstream reports no usage.

The vocabularies (o200k_base, cl100k_base) ship inside the ``bpe-openai`` wheel, so nothing is
downloaded at run time. Counts follow OpenAI's published chat accounting (a few tokens of framing per
message); for other vendors' models they are an estimate, and the usage record says so
(``usage_source = "estimated"``).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any, Protocol

from relaygate.core.embeddings import EmbeddingsRequest

_TOKENS_PER_MESSAGE = 3
_TOKENS_PER_NAME = 1
_REPLY_PRIMER = 3
# An image's cost depends on its size, which we do not fetch to count: use OpenAI's "low detail" price.
_TOKENS_PER_IMAGE = 85


class _Encoding(Protocol):
    def encode_ordinary(self, text: str) -> list[int]: ...

    def decode(self, tokens: list[int]) -> str: ...


_lock = threading.Lock()
_encodings: dict[str, _Encoding] = {}


def _encoding(name: str) -> _Encoding:
    enc = _encodings.get(name)
    if enc is None:
        with _lock:
            enc = _encodings.get(name)
            if enc is None:
                import bpe_openai

                enc = _encodings[name] = bpe_openai.get_encoding(name)
    return enc


def encoding_name_for(model: str) -> str:
    legacy = ("gpt-4-", "gpt-4", "gpt-3.5", "text-embedding-", "gpt-35")
    if model.startswith(legacy) and not model.startswith(("gpt-4o", "gpt-4.1", "gpt-4.5")):
        return "cl100k_base"
    return "o200k_base"


def warm_up() -> None:
    """Load the vocabularies (≈0.5 s) at start rather than on the first request that needs them."""
    _encoding("o200k_base")
    _encoding("cl100k_base")


# bpe-openai refuses to encode more than 200,000 tokens at once (TokenLimitError). A character is at
# most 4 tokens (byte-level BPE, at most 4 UTF-8 bytes), so pieces of 40,000 characters stay under it.
_PIECE_CHARS = 40_000


def count_text(text: str, model: str = "") -> int:
    if not text:
        return 0
    encoding = _encoding(encoding_name_for(model))
    if len(text) <= _PIECE_CHARS:
        return len(encoding.encode_ordinary(text))
    return sum(len(encoding.encode_ordinary(piece)) for piece in _pieces(text))


def _pieces(text: str) -> Iterable[str]:
    """``text`` in pieces of at most ``_PIECE_CHARS`` characters, cut at a token boundary
    (``_boundary``) where there is one in the piece's second half, so that the sum of the pieces'
    counts is the whole text's count; a piece with none is cut where it is full (a token or so off)."""
    start = 0
    while start < len(text):
        end = min(start + _PIECE_CHARS, len(text))
        if end < len(text):
            cut = _boundary(text, start + _PIECE_CHARS // 2, end)
            end = cut if cut > start else end
        yield text[start:end]
        start = end


def _boundary(text: str, start: int, end: int) -> int:
    """The last index in ``(start, end)`` of a space that follows a non-space, or -1. No token of either
    vocabulary spans it: their pre-tokenizers never continue a token from a non-space into a space
    (a word, a number or punctuation ends there; only whitespace tokens hold whitespace after their
    first character), and they match left to right, so the text on each side is tokenized alone as
    it is within the whole."""
    cut = text.rfind(" ", start + 1, end)
    while cut > start and text[cut - 1].isspace():
        cut = text.rfind(" ", start + 1, cut)
    return cut if cut > start else -1


# A stream's deltas are counted in batches: a tokenizer call per delta costs ~1.7 µs and miscounts (a
# word split over two deltas counts as two), a call per batch costs ~50 ns a character and is exact.
_BATCH_CHARS = 16_384
_MAX_PENDING_CHARS = 4 * _BATCH_CHARS


class TokenTally:
    """The running token count of a text that arrives in pieces (a stream's deltas), kept without
    keeping the text: pieces wait until a batch is full, which is counted up to its last token boundary
    (``_boundary``); the rest waits for the next batch. ``total()`` equals ``count_text`` of the whole
    text, while what waits stays under ``_MAX_PENDING_CHARS`` characters (plus one piece). A text with no
    boundary in that many characters (CJK without spaces, a long token-free run) is cut where it is:
    the count can differ there by a token or so.

    ``stop()`` is for a stream whose upstream reported its usage: the offline count will not be
    billed, so it drops what waits and ignores the rest (``total()`` is then meaningless)."""

    __slots__ = ("_chars", "_counted", "_model", "_next", "_pending", "_stopped")

    def __init__(self, model: str = "") -> None:
        self._model = model
        self._pending: list[str] = []
        self._chars = 0
        self._next = _BATCH_CHARS  # look for a boundary once this many characters wait
        self._counted = 0
        self._stopped = False

    def add(self, text: str) -> None:
        if self._stopped:
            return
        self._pending.append(text)
        self._chars += len(text)
        if self._chars >= self._next:
            self._count_batch()

    def stop(self) -> None:
        self._stopped = True
        self._pending = []
        self._chars = 0

    @property
    def waiting(self) -> int:
        """Characters added but not yet counted (what the tally holds)."""
        return self._chars

    def total(self) -> int:
        """Tokens of everything added so far (what waits is counted, and still waits)."""
        return self._counted + count_text("".join(self._pending), self._model)

    def _count_batch(self) -> None:
        text = "".join(self._pending)
        cut = _boundary(text, 0, len(text))
        if cut < 0 and len(text) < _MAX_PENDING_CHARS:
            cut = 0  # no boundary yet: wait for another batch before searching again
        elif cut < 0:
            cut = len(text)
        self._counted += count_text(text[:cut], self._model)
        rest = text[cut:]
        self._pending = [rest] if rest else []
        self._chars = len(rest)
        self._next = min(self._chars + _BATCH_CHARS, _MAX_PENDING_CHARS)


def _content_text_and_images(content: Any) -> tuple[list[str], int]:
    if isinstance(content, str):
        return [content], 0
    texts: list[str] = []
    images = 0
    if isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif part.get("type") in ("image_url", "image", "input_image"):
                images += 1
    return texts, images


def count_chat_prompt(messages: Iterable[Any], model: str = "", tools: Any = None) -> int:
    """Prompt tokens of an OpenAI-style ``messages`` list (plus tool definitions, as JSON text)."""
    total = _REPLY_PRIMER
    for message in messages:
        if not isinstance(message, dict):
            continue
        total += _TOKENS_PER_MESSAGE
        texts, images = _content_text_and_images(message.get("content"))
        total += images * _TOKENS_PER_IMAGE
        for text in texts:
            total += count_text(text, model)
        if isinstance(message.get("name"), str):
            total += _TOKENS_PER_NAME + count_text(message["name"], model)
        tool_calls = message.get("tool_calls")
        for call in tool_calls if isinstance(tool_calls, list) else ():
            if isinstance(call, dict) and isinstance(call.get("function"), dict):
                fn = call["function"]
                total += count_text(str(fn.get("name", "")), model) + count_text(str(fn.get("arguments", "")), model)
    if tools:
        import orjson

        total += count_text(orjson.dumps(tools).decode(), model)
    return total


def count_embedding_inputs(req: EmbeddingsRequest, model: str = "") -> int:
    """Input tokens of an embeddings request: each text counted, each token-id array its length."""
    return sum(len(item.tokens) if item.tokens is not None else count_text(item.text or "", model)
               for item in req.inputs)


def decode_tokens(tokens: Iterable[int], model: str = "") -> str:
    """The text of token ids in the vocabulary the model's name implies (for upstreams that take only
    text); raises ``ValueError`` for an id outside it."""
    encoding = _encoding(encoding_name_for(model))
    try:
        return encoding.decode(list(tokens))
    except KeyError as exc:
        raise ValueError(str(exc)) from exc
