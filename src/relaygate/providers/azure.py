"""Azure OpenAI: the OpenAI chat format, with Azure's URL scheme and key header.

``base_url`` is the resource endpoint (``https://<resource>.openai.azure.com``; a trailing
``/openai`` is accepted). Each model is served by a deployment:
``POST {base_url}/openai/deployments/{deployment}/chat/completions?api-version=...`` (``/embeddings``
for embeddings, ``/images/generations`` and ``/images/edits`` for images) with the key in
``api-key``. Options: ``deployments`` (upstream model name → deployment name; a model not listed is
its own deployment name) and ``api_version`` (default ``2024-10-21``, the
GA version that reports usage in streams). ``channels test`` sends a one-token chat: a models listing
would not prove that the deployments exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from relaygate.providers.base import (
    IMAGE_PATHS,
    ImagePayload,
    Provider,
    Transport,
    UpstreamRequest,
    image_body_headers,
)
from relaygate.routing.records import ChannelRecord

DEFAULT_API_VERSION = "2024-10-21"


def deployment_for(channel: ChannelRecord, model: str) -> str:
    deployments = channel.options.get("deployments")
    chosen = deployments.get(model) if isinstance(deployments, Mapping) else None
    return chosen if isinstance(chosen, str) and chosen else model


def chat_url(channel: ChannelRecord, model: str) -> str:
    return deployment_url(channel, model, "chat/completions")


def deployment_url(channel: ChannelRecord, model: str, operation: str) -> str:
    root = channel.base_url.rstrip("/").removesuffix("/openai")
    version = channel.options.get("api_version") or DEFAULT_API_VERSION
    deployment = quote(deployment_for(channel, model), safe="")
    return f"{root}/openai/deployments/{deployment}/{operation}?api-version={quote(str(version), safe='')}"


def _headers(channel: ChannelRecord) -> dict[str, str]:
    headers = {"content-type": "application/json"}
    if channel.api_key:
        headers["api-key"] = channel.api_key
    return headers


class AzureProvider:
    kind = "azure"

    def dialect_for(self, channel: ChannelRecord) -> str:
        return "openai"

    def chat_request(self, channel: ChannelRecord, body: bytes, *, stream: bool, model: str,
                     client_headers: Mapping[str, str]) -> UpstreamRequest:
        headers = _headers(channel)
        if stream:
            headers["accept"] = "text/event-stream"
        return UpstreamRequest("POST", chat_url(channel, model), headers, body, stream)

    def embeddings_dialect(self, channel: ChannelRecord) -> str:
        return "openai"

    def embeddings_request(self, channel: ChannelRecord, body: bytes, *, model: str) -> UpstreamRequest:
        return UpstreamRequest("POST", deployment_url(channel, model, "embeddings"), _headers(channel), body)

    def images_request(self, channel: ChannelRecord, operation: str, payload: ImagePayload, *,
                       model: str) -> UpstreamRequest:
        headers = image_body_headers(payload)
        if channel.api_key:
            headers["api-key"] = channel.api_key
        return UpstreamRequest("POST", deployment_url(channel, model, IMAGE_PATHS[operation]), headers,
                               payload.body, body_chunks=payload.chunks)

    def transport_for(self, channel: ChannelRecord) -> Transport | None:
        return None

    def models_request(self, channel: ChannelRecord) -> UpstreamRequest | None:
        return None

    def check_options(self, options: Mapping[str, Any]) -> str | None:
        deployments = options.get("deployments")
        if deployments is not None and not (
                isinstance(deployments, Mapping)
                and all(isinstance(k, str) and isinstance(v, str) and v for k, v in deployments.items())):
            return "deployments must map model names to deployment names"
        version = options.get("api_version")
        if version is not None and (not isinstance(version, str) or not version):
            return "api_version must be an Azure OpenAI API version such as 2024-10-21"
        return None


_AZURE = AzureProvider()
PROVIDER = Provider(_AZURE, options=("api_version", "deployments"), check_options=_AZURE.check_options,
                    chat=_AZURE, embeddings=_AZURE, images=_AZURE)
