"""The address rules shared by media fetches (``infra/media.py``) and webhook deliveries
(``tasks/webhook.py``): which hosts may be called when private addresses are not allowed, read as the
connecting client reads them, and a client session whose every connection is checked.

Below both ``relay/`` and ``tasks/``, so that neither imports the other for them.
"""

from __future__ import annotations

import ipaddress
import socket

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL


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
