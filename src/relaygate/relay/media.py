"""Fetching images and documents by URL when the upstream needs their bytes (translation only).

Guards (DESIGN §3): only http and https; only public addresses unless the operator allows private
ones — checked on every connection by the resolver, so a DNS answer cannot point us at the loopback
or a private network, and checked for IP literals and for each redirect; a size limit enforced while
reading; only image and PDF content types.
"""

from __future__ import annotations

import asyncio
import base64
import ipaddress
import socket
from typing import Any
from urllib.parse import urljoin, urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from relaygate.core.media import InlineMedia
from relaygate.errors import InvalidRequest

_MAX_REDIRECTS = 3
_ALLOWED_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")


class MediaFetchError(InvalidRequest):
    code = "media_fetch_failed"


def address_allowed(host: str, allow_private: bool) -> bool:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return True  # a name: the resolver checks what it resolves to
    return allow_private or address.is_global


class PublicOnlyResolver(AbstractResolver):
    """Resolves names to public addresses only (unless private ones are allowed); shared with webhooks."""

    def __init__(self, allow_private: bool) -> None:
        self._inner = DefaultResolver()
        self._allow_private = allow_private

    async def resolve(self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET,
                      ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed = [r for r in results if address_allowed(r["host"], self._allow_private)]
        if not allowed:
            raise OSError(f"{host} resolves only to addresses that may not be fetched")
        return allowed

    async def close(self) -> None:
        await self._inner.close()


def public_session(*, allow_private: bool, timeout_s: float) -> aiohttp.ClientSession:
    """A client session whose every connection is checked by ``PublicOnlyResolver`` (media, webhooks)."""
    connector = aiohttp.TCPConnector(resolver=PublicOnlyResolver(allow_private), limit=64)
    return aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=timeout_s))


class MediaFetcher:
    def __init__(self, *, max_bytes: int, timeout_s: float, allow_private: bool) -> None:
        self._max_bytes = max_bytes
        self._allow_private = allow_private
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = public_session(allow_private=self._allow_private, timeout_s=self._timeout_s)
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch_all(self, urls: list[str]) -> dict[str, InlineMedia]:
        unique = list(dict.fromkeys(urls))
        fetched = await asyncio.gather(*(self.fetch(url) for url in unique))
        return dict(zip(unique, fetched, strict=True))

    async def fetch(self, url: str) -> InlineMedia:
        current = url
        for _ in range(_MAX_REDIRECTS + 1):
            self._check_url(current)
            try:
                async with self._client().get(current, allow_redirects=False) as response:
                    if response.status in (301, 302, 303, 307, 308) and response.headers.get("Location"):
                        current = urljoin(current, response.headers["Location"])
                        continue
                    return await self._read(url, response)
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                raise MediaFetchError(f"The media URL could not be fetched ({type(exc).__name__}).",
                                      param="messages") from exc
        raise MediaFetchError("The media URL redirects too many times.", param="messages")

    def _check_url(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise MediaFetchError("Media URLs must be http or https.", param="messages")
        if not address_allowed(parts.hostname, self._allow_private):
            raise MediaFetchError("That media URL points at an address that may not be fetched.",
                                  param="messages", code="media_url_not_allowed")

    async def _read(self, url: str, response: Any) -> InlineMedia:
        if response.status != 200:
            raise MediaFetchError(f"The media URL answered HTTP {response.status}.", param="messages")
        media_type = (response.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if media_type not in _ALLOWED_TYPES:
            raise MediaFetchError(f"The media URL is not an image or PDF ({media_type or 'no type'}).",
                                  param="messages", code="media_type_not_allowed")
        if response.content_length is not None and response.content_length > self._max_bytes:
            raise self._too_large()
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.content.iter_any():
            size += len(chunk)
            if size > self._max_bytes:
                raise self._too_large()
            chunks.append(chunk)
        return InlineMedia(media_type, base64.b64encode(b"".join(chunks)).decode("ascii"))

    def _too_large(self) -> MediaFetchError:
        return MediaFetchError(f"The media at that URL is larger than {self._max_bytes} bytes.",
                               param="messages", code="media_too_large")
