"""Google's Gemini API (spec/gemini.md), natively: the channel speaks the ``gemini`` dialect.

``base_url`` is the upstream's root (``https://generativelanguage.googleapis.com``); a base URL that
already ends in ``/v1beta`` or ``/v1`` is accepted as well. The model is part of the URL
(``/v1beta/models/{model}:generateContent``), streams use ``:streamGenerateContent?alt=sse``, and
embeddings always ``:batchEmbedContents`` (which takes one input as well as many).
The key goes in the ``x-goog-api-key`` header, never in the URL (``?key=`` would put it in access
logs). Options: ``api_version`` (``v1beta``, the default, ``v1`` or ``v1alpha``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from relaygate.providers.base import Provider, Transport, UpstreamRequest
from relaygate.routing.records import ChannelRecord

DEFAULT_API_VERSION = "v1beta"
API_VERSIONS = ("v1beta", "v1", "v1alpha")


def api_root(base_url: str, version: str = DEFAULT_API_VERSION) -> str:
    """``{root}/{version}``, whether ``base_url`` ended in a version segment or not."""
    root = base_url.rstrip("/")
    for known in API_VERSIONS:
        if root.endswith("/" + known):
            root = root[: -len(known) - 1]
            break
    return f"{root}/{version}"


def model_segment(model: str) -> str:
    """The model as one URL path segment. SDKs may write ``models/gemini-2.5-flash``; everything else
    that could leave the segment (``/``, ``?``, ``#``, ``:``, ``%``) is percent-encoded."""
    return quote(model.removeprefix("models/"), safe="")


def _version(channel: ChannelRecord) -> str:
    version = channel.options.get("api_version")
    return version if isinstance(version, str) and version in API_VERSIONS else DEFAULT_API_VERSION


def _auth_headers(channel: ChannelRecord) -> dict[str, str]:
    return {"x-goog-api-key": channel.api_key} if channel.api_key else {}


class GeminiProvider:
    kind = "gemini"

    def dialect_for(self, channel: ChannelRecord) -> str:
        return "gemini"

    def chat_images_request(self, channel: ChannelRecord, body: bytes, *, model: str) -> UpstreamRequest:
        return self.chat_request(channel, body, stream=False, model=model, client_headers={})

    def chat_request(self, channel: ChannelRecord, body: bytes, *, stream: bool, model: str,
                     client_headers: Mapping[str, str]) -> UpstreamRequest:
        method = ":streamGenerateContent?alt=sse" if stream else ":generateContent"
        url = f"{api_root(channel.base_url, _version(channel))}/models/{model_segment(model)}{method}"
        headers = {**_auth_headers(channel), "content-type": "application/json"}
        if stream:
            headers["accept"] = "text/event-stream"
        return UpstreamRequest("POST", url, headers, body, stream, meta={"model": model})

    def embeddings_dialect(self, channel: ChannelRecord) -> str:
        return "gemini"

    def embeddings_request(self, channel: ChannelRecord, body: bytes, *, model: str) -> UpstreamRequest:
        url = f"{api_root(channel.base_url, _version(channel))}/models/{model_segment(model)}:batchEmbedContents"
        headers = {**_auth_headers(channel), "content-type": "application/json"}
        return UpstreamRequest("POST", url, headers, body, meta={"model": model})

    def transport_for(self, channel: ChannelRecord) -> Transport | None:
        return None

    def models_request(self, channel: ChannelRecord) -> UpstreamRequest | None:
        return UpstreamRequest("GET", api_root(channel.base_url, _version(channel)) + "/models",
                               _auth_headers(channel), b"")

    def check_options(self, options: Mapping[str, Any]) -> str | None:
        version = options.get("api_version")
        if version is not None and version not in API_VERSIONS:
            return f"api_version must be one of {', '.join(API_VERSIONS)}"
        return None


_GEMINI = GeminiProvider()
# Images by image-output chat models, not OpenAI's images API (which Gemini does not have).
PROVIDER = Provider(_GEMINI, options=("api_version",), check_options=_GEMINI.check_options,
                    chat=_GEMINI, embeddings=_GEMINI, chat_images=_GEMINI)
