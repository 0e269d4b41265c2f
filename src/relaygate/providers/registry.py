"""The one registration point for upstream kinds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from relaygate.hints import unknown_name
from relaygate.providers.anthropic import AnthropicProvider
from relaygate.providers.azure import AzureProvider
from relaygate.providers.base import ChatImagesProvider, ChatProvider, EmbeddingsProvider, ImagesProvider
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


# The channel ``options`` each kind reads (docs/providers.md); any other name is refused as a typo.
_OPTIONS: dict[str, tuple[str, ...]] = {
    "openai": (),
    "azure": ("api_version", "deployments"),
    "anthropic": ("anthropic_version",),
    "gemini": ("api_version",),
    "mock": ("dialect", "mock_chunk_delay_ms"),
    MIDJOURNEY: ("forward_mode", "callbacks", "image_proxy", "mock"),
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
    """The kind's OpenAI images API, or None when it has none (Gemini, Anthropic, Midjourney)."""
    provider = _PROVIDERS.get(kind)
    return provider if isinstance(provider, ImagesProvider) else None


def chat_images_provider_for(kind: str) -> ChatImagesProvider | None:
    """The kind's images made by image-output chat models (Gemini), or None."""
    provider = _PROVIDERS.get(kind)
    return provider if isinstance(provider, ChatImagesProvider) else None


def makes_images(kind: str) -> bool:
    """Whether channels of this kind have either images ability."""
    return images_provider_for(kind) is not None or chat_images_provider_for(kind) is not None


def chat_kinds() -> tuple[str, ...]:
    """The kinds ``provider_for`` knows: every kind but the task upstreams."""
    return tuple(_PROVIDERS)


def known_kinds() -> tuple[str, ...]:
    return (*_PROVIDERS, MIDJOURNEY)


def offline(kind: str, options: Mapping[str, Any]) -> bool:
    """Channels answered in process need no ``base_url``: the mock, and a mock Midjourney channel."""
    return kind == "mock" or (kind == MIDJOURNEY and options.get("mock") is True)


def channel_options(kind: str) -> tuple[str, ...]:
    """The option names channels of ``kind`` take (none for an unknown kind)."""
    return _OPTIONS.get(kind, ())


def options_problem(kind: str, options: Mapping[str, Any]) -> str | None:
    """What is wrong with a channel's ``options`` for its kind, for config load and the admin API to
    refuse before a request fails; None when they are fine (or the kind is unknown)."""
    unknown = sorted(map(str, set(options) - set(channel_options(kind))))
    if unknown and not channel_options(kind):
        return f"channels of type {kind} take no options; '{unknown[0]}' is unknown"
    if unknown:
        return unknown_name(f"option of {kind} channels", unknown[0], channel_options(kind))
    provider = _MIDJOURNEY if kind == MIDJOURNEY else _PROVIDERS.get(kind)
    return provider.check_options(options) if isinstance(provider, ChecksOptions) else None
