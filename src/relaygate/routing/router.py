"""Which channels may serve a model, in the order to try them.

Higher ``priority`` tiers come first; inside a tier the order is a weighted random shuffle
(Efraimidis–Spirakis), so that a channel with weight 3 leads three times as often as one with weight
1. Channels whose circuit is open go after all healthy ones.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

from relaygate.routing.health import HealthBook
from relaygate.routing.records import ChannelRecord

Candidate = tuple[ChannelRecord, str]  # the channel and the model name to send upstream


class Router:
    def __init__(self, channels: Iterable[ChannelRecord], health: HealthBook,
                 rng: random.Random | None = None) -> None:
        self._channels = [c for c in channels if c.enabled]
        self._health = health
        self._rng = rng or random.Random()
        self._tiers: dict[str, list[list[ChannelRecord]]] = {}

    def serves(self, model: str) -> bool:
        return bool(self._tiers_for(model))

    def candidates(self, model: str, limit: int) -> list[Candidate]:
        ordered: list[ChannelRecord] = []
        sick: list[ChannelRecord] = []
        for tier in self._tiers_for(model):
            shuffled = tier if len(tier) == 1 else self._weighted_shuffle(tier)
            for channel in shuffled:
                (ordered if self._health.healthy(channel.id) else sick).append(channel)
        return [(c, c.upstream_model(model)) for c in (ordered + sick)[:limit]]

    def listed_models(self) -> list[str]:
        names: set[str] = set()
        for channel in self._channels:
            names.update(channel.listed_models())
        return sorted(names)

    def _tiers_for(self, model: str) -> list[list[ChannelRecord]]:
        tiers = self._tiers.get(model)
        if tiers is None:
            serving = [c for c in self._channels if c.serves(model)]
            by_priority: dict[int, list[ChannelRecord]] = {}
            for channel in serving:
                by_priority.setdefault(channel.priority, []).append(channel)
            tiers = [by_priority[p] for p in sorted(by_priority, reverse=True)]
            if len(self._tiers) < 10_000:
                self._tiers[model] = tiers
        return tiers

    def _weighted_shuffle(self, tier: list[ChannelRecord]) -> list[ChannelRecord]:
        def key(channel: ChannelRecord) -> float:
            weight = max(channel.weight, 0)
            return self._rng.random() ** (1.0 / weight) if weight else -1.0

        return sorted(tier, key=key, reverse=True)
