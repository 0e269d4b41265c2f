"""Any OpenAI-compatible upstream: OpenAI, DeepSeek, vLLM, Ollama, other relays.

``base_url`` is the upstream's root without ``/v1`` (``https://api.openai.com``); the provider appends
``/v1/chat/completions`` (``/v1/embeddings`` for embeddings). A base URL that already ends in ``/v1``
is accepted as well, so that ``http://host:8000/v1`` copied from a vLLM README does not end up as
``/v1/v1``.
"""

from __future__ import annotations

from collections.abc import Mapping

from relaygate.providers.base import (
    IMAGE_PATHS,
    ImagePayload,
    Provider,
    Transport,
    UpstreamRequest,
    image_body_headers,
)
from relaygate.routing.records import ChannelRecord


def api_root(base_url: str) -> str:
    root = base_url.rstrip("/")
    return root if root.endswith("/v1") else root + "/v1"


class OpenAIProvider:
    kind = "openai"

    def dialect_for(self, channel: ChannelRecord) -> str:
        return "openai"

    def chat_request(self, channel: ChannelRecord, body: bytes, *, stream: bool, model: str,
                     client_headers: Mapping[str, str]) -> UpstreamRequest:
        headers = {"Content-Type": "application/json"}
        if channel.api_key:
            headers["Authorization"] = "Bearer " + channel.api_key
        if stream:
            headers["Accept"] = "text/event-stream"
        return UpstreamRequest("POST", api_root(channel.base_url) + "/chat/completions", headers, body, stream)

    def transport_for(self, channel: ChannelRecord) -> Transport | None:
        return None

    def models_request(self, channel: ChannelRecord) -> UpstreamRequest | None:
        headers = {"Authorization": "Bearer " + channel.api_key} if channel.api_key else {}
        return UpstreamRequest("GET", api_root(channel.base_url) + "/models", headers, b"")

    def embeddings_dialect(self, channel: ChannelRecord) -> str:
        return "openai"

    def embeddings_request(self, channel: ChannelRecord, body: bytes, *, model: str) -> UpstreamRequest:
        headers = {"Content-Type": "application/json"}
        if channel.api_key:
            headers["Authorization"] = "Bearer " + channel.api_key
        return UpstreamRequest("POST", api_root(channel.base_url) + "/embeddings", headers, body)

    def images_request(self, channel: ChannelRecord, operation: str, payload: ImagePayload, *,
                       model: str) -> UpstreamRequest:
        headers = image_body_headers(payload)
        if channel.api_key:
            headers["Authorization"] = "Bearer " + channel.api_key
        return UpstreamRequest("POST", f"{api_root(channel.base_url)}/{IMAGE_PATHS[operation]}", headers,
                               payload.body, body_chunks=payload.chunks)


_OPENAI = OpenAIProvider()
PROVIDER = Provider(_OPENAI, chat=_OPENAI, embeddings=_OPENAI, images=_OPENAI)
