"""A client key as the gate sees it (an immutable row of the in-memory snapshot)."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from relaygate.core.patterns import matches

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class KeyRecord:
    id: int
    name: str
    key_hash: str
    enabled: bool = True
    models: tuple[str, ...] = ("*",)
    ip_allow: tuple[IPNetwork, ...] = ()
    quota_nano: int | None = None
    expires_at: int | None = None
    _allowed_cache: dict[str, bool] = field(default_factory=dict, compare=False, repr=False)

    def allows_model(self, model: str) -> bool:
        cached = self._allowed_cache.get(model)
        if cached is None:
            cached = any(matches(pattern, model) for pattern in self.models)
            if len(self._allowed_cache) < 4096:
                self._allowed_cache[model] = cached
        return cached

    def allows_ip(self, ip: str | None) -> bool:
        if not self.ip_allow:
            return True
        if ip is None:
            return False
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in network for network in self.ip_allow)


def parse_networks(values: list[str] | tuple[str, ...]) -> tuple[IPNetwork, ...]:
    """CIDR blocks (a bare address means just that address); raises ValueError on a bad entry."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values)
