"""The one registration point for upstream kinds: one line per provider, each declared (with its
abilities) in its own module as ``PROVIDER``. Everything else asks this module what a kind can do."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relaygate.hints import unknown_name
from relaygate.providers import anthropic, azure, gemini, midjourney, mock, openai
from relaygate.providers.base import (
    Ability,
    ChatImagesProvider,
    ChatProvider,
    EmbeddingsProvider,
    ImagesProvider,
    MidjourneyApi,
    Provider,
    Transport,
)
from relaygate.routing.records import ChannelRecord

_PROVIDERS: dict[str, Provider] = {provider.kind: provider for provider in (
    openai.PROVIDER,
    azure.PROVIDER,
    anthropic.PROVIDER,
    gemini.PROVIDER,
    mock.PROVIDER,
    midjourney.PROVIDER,
)}

# The chat ability by kind, read once per attempt on the chat hot path (one dict lookup).
_CHAT: dict[str, ChatProvider] = {kind: p.chat for kind, p in _PROVIDERS.items() if p.chat is not None}


def provider(kind: str) -> Provider:
    """The declaration of a known kind (``known_kinds``); KeyError for any other."""
    return _PROVIDERS[kind]


def provider_for(kind: str) -> ChatProvider:
    """The chat ability of a kind that has one (its channels are the chat router's); KeyError otherwise."""
    return _CHAT[kind]


def has_ability(kind: str, ability: Ability) -> bool:
    found = _PROVIDERS.get(kind)
    return found is not None and ability in found.abilities


def embeddings_provider_for(kind: str) -> EmbeddingsProvider | None:
    """The kind's embeddings ability, or None when it has none (Anthropic, Midjourney)."""
    found = _PROVIDERS.get(kind)
    return found.embeddings if found is not None else None


def images_provider_for(kind: str) -> ImagesProvider | None:
    """The kind's OpenAI images API, or None when it has none (Gemini, Anthropic, Midjourney)."""
    found = _PROVIDERS.get(kind)
    return found.images if found is not None else None


def chat_images_provider_for(kind: str) -> ChatImagesProvider | None:
    """The kind's images made by image-output chat models (Gemini), or None."""
    found = _PROVIDERS.get(kind)
    return found.chat_images if found is not None else None


def midjourney_provider_for(kind: str) -> MidjourneyApi | None:
    """The kind's midjourney-proxy task API, or None."""
    found = _PROVIDERS.get(kind)
    return found.midjourney if found is not None else None


def transport_for(channel: ChannelRecord) -> Transport | None:
    """The channel's in-process transport (a mock), or None for the shared HTTP client."""
    return _PROVIDERS[channel.type].upstream.transport_for(channel)


def chat_kinds() -> tuple[str, ...]:
    """The kinds with the chat ability (``provider_for`` knows them)."""
    return tuple(_CHAT)


def known_kinds() -> tuple[str, ...]:
    return tuple(_PROVIDERS)


def offline(kind: str, options: Mapping[str, Any]) -> bool:
    """Whether channels of ``kind`` with ``options`` are answered in process and need no ``base_url``."""
    found = _PROVIDERS.get(kind)
    return found is not None and found.offline(options)


def channel_options(kind: str) -> tuple[str, ...]:
    """The option names channels of ``kind`` take (none for an unknown kind)."""
    found = _PROVIDERS.get(kind)
    return found.options if found is not None else ()


def options_problem(kind: str, options: Mapping[str, Any]) -> str | None:
    """What is wrong with a channel's ``options`` for its kind, for config load and the admin API to
    refuse before a request fails; None when they are fine (or the kind is unknown)."""
    unknown = sorted(map(str, set(options) - set(channel_options(kind))))
    if unknown and not channel_options(kind):
        return f"channels of type {kind} take no options; '{unknown[0]}' is unknown"
    if unknown:
        return unknown_name(f"option of {kind} channels", unknown[0], channel_options(kind))
    found = _PROVIDERS.get(kind)
    check = found.check_options if found is not None else None
    return check(options) if check is not None else None
