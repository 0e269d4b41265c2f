"""Fetching images and documents by URL when the upstream needs their bytes (translation only).

Guards (DESIGN §3): only http and https; only public addresses unless the operator allows private
ones — checked on every connection by the resolver (``infra/addresses.py``, shared with webhooks), so a DNS
answer cannot point us at the loopback or a private network, and checked for IP literals and for each
redirect; a size limit enforced while reading; only image and PDF content types.
"""

from __future__ import annotations

import asyncio
import base64
from typing import Any
from urllib.parse import urljoin

import aiohttp

from relaygate.core.media import InlineMedia
from relaygate.errors import InvalidRequest
from relaygate.infra.addresses import host_allowed, parse_url, public_session

_MAX_REDIRECTS = 3
_ALLOWED_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")


class MediaFetchError(InvalidRequest):
    code = "media_fetch_failed"


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
        parsed = parse_url(url)
        if parsed is None or parsed.host is None or parsed.scheme not in ("http", "https"):
            raise MediaFetchError("Media URLs must be http or https.", param="messages")
        if not host_allowed(parsed.host, self._allow_private):
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
