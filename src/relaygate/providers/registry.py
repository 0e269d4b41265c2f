"""The one registration point for upstream kinds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from relaygate.providers.anthropic import AnthropicProvider
from relaygate.providers.azure import AzureProvider
from relaygate.providers.base import ChatProvider, EmbeddingsProvider, ImagesProvider
from relaygate.providers.gemini import GeminiProvider
from relaygate.providers.midjourney import KIND as MIDJOURNEY
from relaygate.providers.midjourney import MidjourneyProvider
from relaygate.providers.mock import MockProvider
from relaygate.providers.openai import OpenAIProvider

_PROVIDERS: dict[str, ChatProvider] = {
    "openai": OpenAIProvider(),
    "azure": AzureProvider(),
    "anthropic": AnthropicProvider(),
    "gemini": GeminiProvider(),
    "mock": MockProvider(),
}


@runtime_checkable
class ChecksOptions(Protocol):
    """A provider whose channel ``options`` have rules of their own (an optional ability)."""

    def check_options(self, options: Mapping[str, Any]) -> str | None:
        """What is wrong with ``options`` (one sentence naming the option), or None."""
        ...


# Task upstreams: no chat, embeddings or images; their channels are routed apart (``Snapshot.mj_router``).
_MIDJOURNEY = MidjourneyProvider()


def provider_for(kind: str) -> ChatProvider:
    return _PROVIDERS[kind]


def midjourney_provider() -> MidjourneyProvider:
    return _MIDJOURNEY


def is_task_kind(kind: str) -> bool:
    """Channels of this kind serve task APIs only (Midjourney), never chat, embeddings or images."""
    return kind == MIDJOURNEY


def embeddings_provider_for(kind: str) -> EmbeddingsProvider | None:
    """The kind's embeddings ability, or None when it has none (Anthropic, Midjourney)."""
    provider = _PROVIDERS.get(kind)
    return provider if isinstance(provider, EmbeddingsProvider) else None


def images_provider_for(kind: str) -> ImagesProvider | None:
    """The kind's images ability, or None when it has none (Anthropic, Midjourney)."""
    provider = _PROVIDERS.get(kind)
    return provider if isinstance(provider, ImagesProvider) else None


def chat_kinds() -> tuple[str, ...]:
    """The kinds ``provider_for`` knows: every kind but the task upstreams."""
    return tuple(_PROVIDERS)


def known_kinds() -> tuple[str, ...]:
    return (*_PROVIDERS, MIDJOURNEY)


def offline(kind: str, options: Mapping[str, Any]) -> bool:
    """Channels answered in process need no ``base_url``: the mock, and a mock Midjourney channel."""
    return kind == "mock" or (kind == MIDJOURNEY and options.get("mock") is True)


def options_problem(kind: str, options: Mapping[str, Any]) -> str | None:
    """What is wrong with a channel's ``options`` for its kind, for config load and the admin API to
    refuse before a request fails; None when they are fine (or the kind has no rules, or is unknown)."""
    provider = _MIDJOURNEY if kind == MIDJOURNEY else _PROVIDERS.get(kind)
    return provider.check_options(options) if isinstance(provider, ChecksOptions) else None
