"""The checks every call passes before it may spend anything."""

from __future__ import annotations

import time

from relaygate.auth.keys import hash_key, is_key_text
from relaygate.auth.records import KeyRecord
from relaygate.errors import AuthenticationFailed, PermissionDenied


def authenticate(keys_by_hash: dict[str, KeyRecord], token: str | None, client_ip: str | None,
                 now: float | None = None) -> KeyRecord:
    if not token:
        raise AuthenticationFailed(
            "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.", code="missing_api_key")
    key = keys_by_hash.get(key_digest(token))
    if key is None:
        raise AuthenticationFailed("Incorrect API key provided.")
    if not key.enabled:
        raise AuthenticationFailed("This API key has been disabled.", code="key_disabled")
    if key.expires_at is not None and key.expires_at <= (time.time() if now is None else now):
        raise AuthenticationFailed("This API key has expired.", code="key_expired")
    if not key.allows_ip(client_ip):
        raise PermissionDenied("This API key may not be used from your IP address.", code="ip_not_allowed")
    return key


def key_digest(token: str) -> str:
    """The hash a presented key is looked up by. Every credential a caller sends (client keys in any
    header or ``?key=``, the admin credential) passes here: key material that is not printable ASCII
    (a header's raw non-UTF-8 bytes arrive as surrogates) cannot be a key, so it fails authentication
    instead of failing to hash."""
    if not is_key_text(token):
        raise AuthenticationFailed("Incorrect API key provided.")
    return hash_key(token)


def check_model(key: KeyRecord, model: str) -> None:
    if not key.allows_model(model):
        raise PermissionDenied(f"This API key may not use the model '{model}'.", param="model",
                               code="model_not_allowed")
