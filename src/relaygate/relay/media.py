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
from urllib.parse import urljoin

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from relaygate.core.media import InlineMedia
from relaygate.errors import InvalidRequest

_MAX_REDIRECTS = 3
_ALLOWED_TYPES = ("image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf")


class MediaFetchError(InvalidRequest):
    code = "media_fetch_failed"


def address_allowed(host: str, allow_private: bool) -> bool:
    """Whether an address (a literal, as a resolver answers) may be connected to; True for a name,
    which the resolver checks when it resolves it."""
    try:
        address = ipaddress.ip_address(host.split("%")[0])  # a zone (fe80::1%eth0) is not part of the address
    except ValueError:
        return True
    return allow_private or _public(address)


def _public(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    """A global address, and for IPv6 one whose embedded IPv4 address (mapped, 6to4, NAT64 or the old
    IPv4-compatible form) is global too: ``::ffff:127.0.0.1`` and ``64:ff9b::7f00:1`` reach 127.0.0.1."""
    if not address.is_global:
        return False
    if isinstance(address, ipaddress.IPv4Address):
        return True
    embedded = address.ipv4_mapped or address.sixtofour
    if embedded is None and (int(address) >> 32 in (0, _NAT64_PREFIX)):
        embedded = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return embedded is None or embedded.is_global


_NAT64_PREFIX = int(ipaddress.IPv6Address("64:ff9b::")) >> 32


def host_allowed(host: str, allow_private: bool) -> bool:
    """Whether a URL's host may be called. A numeric host is read as the OS resolver reads it when the
    client connects (``127.1``, ``2130706433``, ``0x7f000001`` and ``0177.0.0.1`` are all 127.0.0.1,
    and the client never asks the resolver about a literal), so every spelling meets the address rule
    here; names for the loopback (``localhost``, ``localhost.``, RFC 6761's ``*.localhost``) are
    refused; other names are checked on every connection by ``PublicOnlyResolver``."""
    if allow_private:
        return True
    name = host.rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return False
    address = _numeric_address(host)
    return address is None or address_allowed(address, allow_private=False)


def _numeric_address(host: str) -> str | None:
    """The address a numeric host stands for, as ``getaddrinfo`` reads it (no DNS: AI_NUMERICHOST);
    None for a name."""
    try:
        infos = socket.getaddrinfo(host, None, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return None
    return str(infos[0][4][0]) if infos else None


def parse_url(url: str) -> URL | None:
    """An absolute URL with a host, read as the delivering client reads it (yarl, which maps
    ``１２７.0.0.1`` to ``127.0.0.1`` where ``urlsplit`` would keep it as a name); None otherwise."""
    try:
        parsed = URL(url)
        if parsed.host is None or not parsed.is_absolute():
            return None
    except (ValueError, TypeError, UnicodeError):
        return None
    return parsed


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
