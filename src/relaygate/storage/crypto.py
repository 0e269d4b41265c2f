"""Upstream keys at rest: Fernet (AES-128-CBC + HMAC-SHA256) under a key derived from the operator's
secret. Without the secret, a stolen database does not reveal any upstream key."""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken

from relaygate.errors import ConfigError


class SecretBox:
    def __init__(self, secret: str) -> None:
        if len(secret) < 16:
            raise ConfigError("the secret must be at least 16 characters")
        digest = hashlib.sha256(b"relaygate-upstream-keys:" + secret.encode("utf-8")).digest()
        self._fernet = Fernet(base64.urlsafe_b64encode(digest))
        self._secret = secret.encode("utf-8")

    def signing_key(self, purpose: str) -> bytes:
        """A key for HMAC signatures of one purpose (signed URLs, callback tokens), derived from the
        operator's secret so that each purpose's signatures are worthless for the others."""
        return hashlib.sha256(b"relaygate-sign:" + purpose.encode("utf-8") + b":" + self._secret).digest()

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def decrypt(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise ConfigError(
                "an upstream key cannot be decrypted: the secret differs from the one it was stored with"
            ) from exc
