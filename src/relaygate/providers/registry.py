"""The one registration point for upstream kinds."""

from __future__ import annotations

from relaygate.providers.base import ChatProvider
from relaygate.providers.mock import MockProvider
from relaygate.providers.openai import OpenAIProvider

_PROVIDERS: dict[str, ChatProvider] = {
    "openai": OpenAIProvider(),
    "mock": MockProvider(),
}


def provider_for(kind: str) -> ChatProvider:
    return _PROVIDERS[kind]


def known_kinds() -> tuple[str, ...]:
    return tuple(_PROVIDERS)
