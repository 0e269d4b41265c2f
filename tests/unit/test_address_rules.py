"""The address rules shared by media fetches and webhooks (infra/addresses.py): which hosts may be called
when private addresses are not allowed, read as the connecting client reads them."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from aiohttp.abc import ResolveResult

from relaygate.infra.addresses import PublicOnlyResolver, address_allowed, host_allowed, parse_url

LOOPBACK_SPELLINGS = ["127.0.0.1", "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "0", "localhost",
                      "LOCALHOST.", "app.localhost", "::1", "::ffff:127.0.0.1", "::ffff:7f00:1"]
PRIVATE = ["10.1", "192.168.0.1", "169.254.169.254", "0xa9fea9fe", "100.64.0.1", "fe80::1%eth0", "fc00::1",
           "64:ff9b::a00:1", "64:ff9b::7f00:1", "2002:7f00:1::1", "::127.0.0.1"]
PUBLIC = ["93.184.215.14", "2606:4700::6810:84e5", "hooks.example.com", "64:ff9b::5db8:d70e"]


@pytest.mark.parametrize("host", LOOPBACK_SPELLINGS + PRIVATE)
def test_loopback_and_private_hosts_are_refused(host: str) -> None:
    assert not host_allowed(host, allow_private=False)
    assert host_allowed(host, allow_private=True)


@pytest.mark.parametrize("host", PUBLIC)
def test_public_hosts_and_names_are_allowed(host: str) -> None:
    """A name is left to the resolver, which checks every address it answers."""
    assert host_allowed(host, allow_private=False)


def test_urls_are_read_as_the_client_reads_them() -> None:
    parsed = parse_url("http://１２７.0.0.1:8080/x")
    assert parsed is not None and parsed.host == "127.0.0.1"
    assert parse_url("http://[::1/x") is None
    assert parse_url("/relative/path") is None


class _Answers:
    """Stands in for the system resolver: answers fixed addresses for any name."""

    def __init__(self, *hosts: str) -> None:
        self.hosts = hosts

    async def resolve(self, host: str, port: int = 0, family: Any = socket.AF_INET) -> list[ResolveResult]:
        return [ResolveResult(hostname=host, host=h, port=port, family=family, proto=0, flags=0) for h in self.hosts]

    async def close(self) -> None:
        return None


async def test_the_resolver_drops_private_answers_and_refuses_when_none_is_left() -> None:
    resolver = PublicOnlyResolver(allow_private=False)
    resolver._inner = _Answers("127.0.0.1", "93.184.215.14")  # type: ignore[assignment]
    assert [r["host"] for r in await resolver.resolve("mixed.example")] == ["93.184.215.14"]
    resolver._inner = _Answers("127.0.0.1", "::ffff:10.0.0.1")  # type: ignore[assignment]
    with pytest.raises(OSError):
        await resolver.resolve("inside.example")


def test_an_address_literal_is_checked_without_its_zone() -> None:
    assert not address_allowed("fe80::1%eth0", allow_private=False)
    assert address_allowed("fe80::1%eth0", allow_private=True)
