"""Deterministic embedding vectors for the fake upstreams: each value is one byte of a SHAKE-256 hash of
the input, scaled to [-1, 1] and rounded to 4 decimals, so a test can compute what the fake answered."""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Sequence
from typing import Any

import orjson

DEFAULT_DIMENSIONS = 8


def fake_vector(item: Any, dimensions: int | None = None) -> list[float]:
    """The vector of a text (or of a token-id array, hashed as its JSON)."""
    seed = item.encode() if isinstance(item, str) else orjson.dumps(item)
    size = dimensions or DEFAULT_DIMENSIONS
    return [round(b / 127.5 - 1.0, 4) for b in hashlib.shake_256(seed).digest(size)]


def as_float32(vector: Sequence[float]) -> list[float]:
    """The values a float32 encoding (OpenAI's base64) keeps."""
    return list(struct.unpack(f"<{len(vector)}f", struct.pack(f"<{len(vector)}f", *vector)))


def to_base64(vector: Sequence[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def from_base64(text: str) -> list[float]:
    raw = base64.b64decode(text)
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))
