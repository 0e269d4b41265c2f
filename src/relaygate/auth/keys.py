"""Client key material. Keys are shown once and stored only as SHA-256 hashes: they are 48 random
base62 characters, so a fast hash is enough (there is nothing to brute-force)."""

from __future__ import annotations

import hashlib
import secrets
import string

_ALPHABET = string.ascii_letters + string.digits
KEY_PREFIX = "sk-"


def generate_key(prefix: str = KEY_PREFIX, length: int = 48) -> str:
    return prefix + "".join(secrets.choice(_ALPHABET) for _ in range(length))


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def is_key_text(text: str) -> bool:
    """Whether ``text`` can be key material at all: printable ASCII (generated keys are base62, and
    configured ones are refused at start otherwise)."""
    return text.isascii() and text.isprintable()


def key_hint(key: str) -> str:
    """A recognisable but useless fragment for lists and logs: ``sk-Ab…yz12``."""
    if len(key) <= 10:
        return key[:2] + "…"
    return f"{key[:5]}…{key[-4:]}"


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer":
        return None
    token = token.strip()
    return token or None
