"""midjourney-proxy upstreams (MJP-OSS, and the "plus" variants such as MJP-NET): the task API of
spec/midjourney.md, with the channel's key sent as ``mj-api-secret``.

``base_url`` is the proxy's root (``https://mj.example.com``; the provider appends ``/mj/...``).
Options:
- ``forward_mode`` (default false): a client's speed-mode prefix (``/mj-fast``, ``/mj-relax``,
  ``/mj-turbo``) is forwarded as ``{base_url}/mj-fast/mj/...``, which MJP-NET honours; stock new-api
  only routes on it, so a proxy that does not know the prefixes keeps the default.
- ``callbacks`` (default false): relaygate gives the upstream its own callback URL as ``notifyHook``
  (needs ``public_url``), so task changes arrive at once instead of at the next poll; polling goes on
  as a safety net.
- ``image_proxy`` (default false): task image and video URLs are answered as relaygate's own signed,
  expiring ``/mj/image/{id}`` links, which stream (and cache) the upstream's file.
- ``mock`` (default false): the built-in offline proxy (``mock_midjourney.py``) answers instead of an
  upstream; no ``base_url`` is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import orjson

from relaygate.providers.base import Provider, Transport, UpstreamRequest
from relaygate.providers.mock_midjourney import MockMidjourneyTransport
from relaygate.routing.records import ChannelRecord

KIND = "midjourney"
MODES = ("mj-fast", "mj-relax", "mj-turbo")
_BOOL_OPTIONS = ("forward_mode", "callbacks", "image_proxy", "mock")
_MOCK = MockMidjourneyTransport()


def option(channel: ChannelRecord, name: str) -> bool:
    return channel.options.get(name) is True


class MidjourneyProvider:
    kind = KIND

    def request(self, channel: ChannelRecord, method: str, path: str, body: Mapping[str, Any] | None = None, *,
                mode: str | None = None) -> UpstreamRequest:
        """``path`` starts with ``/mj/``; the mode prefix is added when the channel forwards it."""
        prefix = f"/{mode}" if mode in MODES and option(channel, "forward_mode") else ""
        headers = {"Accept": "application/json"}
        if channel.api_key:
            headers["mj-api-secret"] = channel.api_key
        payload = b""
        if body is not None:
            headers["Content-Type"] = "application/json"
            payload = orjson.dumps(body)
        root = "mock://midjourney" if option(channel, "mock") else channel.base_url.rstrip("/")
        return UpstreamRequest(method, root + prefix + path, headers, payload)

    def wants_callbacks(self, channel: ChannelRecord) -> bool:
        return option(channel, "callbacks")

    def proxies_media(self, channel: ChannelRecord) -> bool:
        return option(channel, "image_proxy")

    def transport_for(self, channel: ChannelRecord) -> Transport | None:
        """The built-in offline proxy for a ``mock`` channel, else None (the shared HTTP client)."""
        return _MOCK if option(channel, "mock") else None

    def list_request(self, channel: ChannelRecord, upstream_ids: list[str]) -> UpstreamRequest:
        return self.request(channel, "POST", "/mj/task/list-by-condition", {"ids": upstream_ids})

    def models_request(self, channel: ChannelRecord) -> UpstreamRequest:
        """``channels test``: an empty batch query proves the address and the secret."""
        return self.list_request(channel, [])

    def check_options(self, options: Mapping[str, Any]) -> str | None:
        unknown = sorted(set(options) - set(_BOOL_OPTIONS))
        if unknown:  # a misspelt switch would otherwise be silently off
            return f"unknown option {unknown[0]}; midjourney channels take {', '.join(_BOOL_OPTIONS)}"
        for name in _BOOL_OPTIONS:
            if name in options and not isinstance(options[name], bool):
                return f"{name} must be true or false"
        return None


_MIDJOURNEY = MidjourneyProvider()
# A task upstream only: no chat, embeddings or images, so only the Midjourney routes ever reach it.
PROVIDER = Provider(_MIDJOURNEY, options=_BOOL_OPTIONS, check_options=_MIDJOURNEY.check_options,
                    offline=lambda options: options.get("mock") is True, midjourney=_MIDJOURNEY)
