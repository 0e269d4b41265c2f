"""The small interfaces every provider and transport fills in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from relaygate.routing.records import ChannelRecord


@dataclass(slots=True)
class UpstreamRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    stream: bool = False
    # Timeouts (seconds) the transport must apply: to connect, and to each read of the response.
    connect_timeout: float = 10.0
    read_timeout: float = 300.0
    meta: dict[str, str] = field(default_factory=dict)
    # A body too large to hold (a multipart image upload), produced afresh for every send so that a
    # failover can send it again; the provider puts its length in Content-Length.
    body_chunks: Callable[[], AsyncIterator[bytes]] | None = None


class UpstreamResponse(Protocol):
    status: int
    content_type: str

    async def read(self, limit: int) -> bytes:
        """The whole body; raises ``UpstreamBodyTooLarge`` past ``limit`` bytes."""
        ...

    def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body as it arrives."""
        ...

    def close(self) -> None: ...


class Transport(Protocol):
    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """Raises ``UpstreamConnectError`` or ``UpstreamReadTimeout`` for failures before a response."""
        ...


class Upstream(Protocol):
    """What every provider has, whatever its abilities: the transport to a channel, and the request
    that proves a channel works."""

    kind: str  # the channels' ``type``

    def transport_for(self, channel: ChannelRecord) -> Transport | None:
        """An in-process transport (the mock), or None to use the shared HTTP client."""
        ...

    def models_request(self, channel: ChannelRecord) -> UpstreamRequest | None:
        """A cheap request that proves the channel works (``channels test``); None: test with a chat."""
        ...


class ChatProvider(Upstream, Protocol):
    """An upstream that answers chat requests in one wire format (``dialect``)."""

    def dialect_for(self, channel: ChannelRecord) -> str:
        """The wire format this channel speaks: "openai" | "anthropic" | "gemini"."""
        ...

    def chat_request(self, channel: ChannelRecord, body: bytes, *, stream: bool, model: str,
                     client_headers: Mapping[str, str]) -> UpstreamRequest:
        """The upstream request for ``body`` (already in the channel's dialect). ``model`` is the upstream
        model name, for dialects that carry it in the URL; ``client_headers`` are the caller's request
        headers (lower-case names), from which a provider forwards only what its dialect defines as
        passthrough (e.g. ``anthropic-beta``) — never credentials."""
        ...


@runtime_checkable
class EmbeddingsProvider(Protocol):
    """An upstream that also computes embeddings (an optional ability: Anthropic has none).

    The transport is the provider's chat one (``ChatProvider.transport_for``)."""

    def embeddings_dialect(self, channel: ChannelRecord) -> str:
        """The embeddings wire format this channel speaks: "openai" | "gemini"."""
        ...

    def embeddings_request(self, channel: ChannelRecord, body: bytes, *, model: str) -> UpstreamRequest:
        """The upstream request for ``body`` (already in the channel's embeddings dialect); ``model`` is
        the upstream model name, for dialects that carry it in the URL."""
        ...


@dataclass(slots=True)
class ImagePayload:
    """An OpenAI-format image request as it goes upstream: a JSON body (generations), or a multipart
    form streamed from its spool (edits, variations). ``fields`` are the request's fields with the
    upstream model name, for providers that answer in-process (the mock)."""

    content_type: str
    fields: Mapping[str, object]
    body: bytes = b""
    chunks: Callable[[], AsyncIterator[bytes]] | None = None
    length: int | None = None


@runtime_checkable
class ImagesProvider(Protocol):
    """An upstream with OpenAI's images API (an optional ability: OpenAI, Azure, the mock). The
    transport is the provider's chat one (``ChatProvider.transport_for``)."""

    def images_request(self, channel: ChannelRecord, operation: str, payload: ImagePayload, *,
                       model: str) -> UpstreamRequest:
        """The upstream request for an OpenAI-format image call; ``operation`` is "generate", "edit" or
        "variation"."""
        ...


@runtime_checkable
class ChatImagesProvider(Protocol):
    """An upstream whose image-output chat models make images, one ``generateContent`` call per image
    (an optional ability: Gemini; the body is built by ``dialects/gemini/images.py``)."""

    def chat_images_request(self, channel: ChannelRecord, body: bytes, *, model: str) -> UpstreamRequest:
        """The upstream request (never a stream) for one image-making call with ``body``."""
        ...


class MidjourneyApi(Protocol):
    """An upstream with midjourney-proxy's task API (spec/midjourney.md; an optional ability: the
    ``midjourney`` kind). Submits and queries are made by ``relay/midjourney.py``, polls by
    ``relay/midjourney_tasks.py``; the transport is the provider's (``Upstream.transport_for``)."""

    def request(self, channel: ChannelRecord, method: str, path: str, body: Mapping[str, Any] | None = None, *,
                mode: str | None = None) -> UpstreamRequest:
        """The upstream request for ``path`` (``/mj/...``); ``mode`` is the client's speed-mode prefix."""
        ...

    def list_request(self, channel: ChannelRecord, upstream_ids: list[str]) -> UpstreamRequest:
        """One batch query of the upstream's tasks by their ids."""
        ...

    def wants_callbacks(self, channel: ChannelRecord) -> bool:
        """Whether the upstream is to call relaygate back on every change of a task."""
        ...

    def proxies_media(self, channel: ChannelRecord) -> bool:
        """Whether task media are shown as relaygate's own signed links instead of the upstream's URLs."""
        ...


class Ability(StrEnum):
    """What channels of a kind can serve; the router is asked for the channels of a model that have one."""

    CHAT = "chat"
    EMBEDDINGS = "embeddings"
    IMAGES = "images"  # OpenAI's images API, or images made by image-output chat models
    MIDJOURNEY = "midjourney"  # midjourney-proxy's task API


def _never(options: Mapping[str, Any]) -> bool:
    return False


@dataclass(frozen=True, slots=True)
class Provider:
    """One upstream kind, declared once, in its module (``PROVIDER``), and named in
    ``providers/registry.py``: what reaches its channels (``upstream``), the channel options it reads
    (any other is refused as a typo) and their rules, whether its channels answer in process (no
    ``base_url`` needed), and each ability it has. An ability it lacks is None: never a stub."""

    upstream: Upstream
    options: tuple[str, ...] = ()
    check_options: Callable[[Mapping[str, Any]], str | None] | None = None  # one sentence naming the option
    offline: Callable[[Mapping[str, Any]], bool] = _never
    chat: ChatProvider | None = None
    embeddings: EmbeddingsProvider | None = None
    images: ImagesProvider | None = None
    chat_images: ChatImagesProvider | None = None
    midjourney: MidjourneyApi | None = None

    @property
    def kind(self) -> str:
        return self.upstream.kind

    @property
    def abilities(self) -> frozenset[Ability]:
        held = {Ability.CHAT: self.chat, Ability.EMBEDDINGS: self.embeddings,
                Ability.IMAGES: self.images or self.chat_images, Ability.MIDJOURNEY: self.midjourney}
        return frozenset(ability for ability, it in held.items() if it is not None)


IMAGE_PATHS = {"generate": "images/generations", "edit": "images/edits", "variation": "images/variations"}


def image_body_headers(payload: ImagePayload) -> dict[str, str]:
    """Content-Type, and Content-Length for a streamed form (so that it is not sent chunked)."""
    headers = {"Content-Type": payload.content_type}
    if payload.chunks is not None and payload.length is not None:
        headers["Content-Length"] = str(payload.length)
    return headers


class UpstreamConnectError(Exception):
    """No response came: refused, reset, DNS, TLS. Safe to try the next channel."""


class UpstreamReadTimeout(Exception):
    """The upstream went quiet for longer than the read timeout."""


class UpstreamBodyTooLarge(Exception):
    pass


def header_map(headers: Mapping[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}
