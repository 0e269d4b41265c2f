"""An upstream channel as the router sees it (an immutable row of the in-memory snapshot)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from relaygate.core.patterns import is_pattern, matches
from relaygate.scrub import Scrubber


@dataclass(frozen=True, slots=True)
class ChannelRecord:
    id: int
    name: str
    type: str
    base_url: str
    api_key: str = field(repr=False)  # decrypted; never rendered, logged or returned
    models: tuple[str, ...] = ()
    model_map: Mapping[str, str] = field(default_factory=dict)
    priority: int = 0
    weight: int = 1
    enabled: bool = True
    options: Mapping[str, Any] = field(default_factory=dict)
    # What every upstream string passes through on its way to a client (built once, with the record).
    scrubber: Scrubber = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "scrubber", Scrubber.for_channel(self.api_key, self.base_url, self.options))

    def serves(self, model: str) -> bool:
        return any(matches(pattern, model) for pattern in self.models) or model in self.model_map

    def upstream_model(self, model: str) -> str:
        return self.model_map.get(model, model)

    def listed_models(self) -> list[str]:
        """Concrete model names this channel offers (patterns cannot be listed)."""
        names = [m for m in self.models if not is_pattern(m)]
        names.extend(m for m in self.model_map if m not in names)
        return names
