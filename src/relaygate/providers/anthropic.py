"""Anthropic's Messages API (spec/anthropic.md), natively: the channel speaks the ``anthropic`` dialect.

``base_url`` is the upstream's root (``https://api.anthropic.com``); the provider appends
``/v1/messages``. A base URL that already ends in ``/v1`` is accepted as well, as for OpenAI channels.
Options: ``anthropic_version`` (default ``2023-06-01``, the only current value).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from relaygate.providers.base import Provider, Transport, UpstreamRequest
from relaygate.routing.records import ChannelRecord

DEFAULT_VERSION = "2023-06-01"
PASSTHROUGH_HEADERS = ("anthropic-beta",)
"""Caller headers Anthropic defines as part of the request (beta flags), forwarded verbatim."""


def api_root(base_url: str) -> str:
    """The root with ``/v1`` (``https://api.anthropic.com/v1``), whether or not ``base_url`` had it."""
    root = base_url.rstrip("/")
    return root if root.endswith("/v1") else root + "/v1"


def _auth_headers(channel: ChannelRecord) -> dict[str, str]:
    version = channel.options.get("anthropic_version") or DEFAULT_VERSION
    headers = {"anthropic-version": str(version)}
    if channel.api_key:
        headers["x-api-key"] = channel.api_key
    return headers


class AnthropicProvider:
    kind = "anthropic"

    def dialect_for(self, channel: ChannelRecord) -> str:
        return "anthropic"

    def chat_request(self, channel: ChannelRecord, body: bytes, *, stream: bool, model: str,
                     client_headers: Mapping[str, str]) -> UpstreamRequest:
        headers = {**_auth_headers(channel), "content-type": "application/json"}
        for name in PASSTHROUGH_HEADERS:
            value = client_headers.get(name)
            if value:
                headers[name] = value
        if stream:
            headers["accept"] = "text/event-stream"
        return UpstreamRequest("POST", api_root(channel.base_url) + "/messages", headers, body, stream)

    def transport_for(self, channel: ChannelRecord) -> Transport | None:
        return None

    def models_request(self, channel: ChannelRecord) -> UpstreamRequest | None:
        return UpstreamRequest("GET", api_root(channel.base_url) + "/models", _auth_headers(channel), b"")

    def check_options(self, options: Mapping[str, Any]) -> str | None:
        version = options.get("anthropic_version")
        if version is not None and (not isinstance(version, str) or not version.strip()
                                    or any(c in version for c in "\r\n")):
            return "anthropic_version must be a version string such as 2023-06-01"
        return None


_ANTHROPIC = AnthropicProvider()
# No embeddings and no images: Anthropic has neither API.
PROVIDER = Provider(_ANTHROPIC, options=("anthropic_version",), check_options=_ANTHROPIC.check_options,
                    chat=_ANTHROPIC)
