"""Per-channel circuit breaker: after ``failures`` consecutive failures a channel is tried only after
every healthy candidate, until ``cooldown_s`` has passed; one success closes it again."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(slots=True)
class _State:
    failures: int = 0
    open_until: float = 0.0


class HealthBook:
    def __init__(self, failures: int = 5, cooldown_s: float = 30.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._threshold = failures
        self._cooldown = cooldown_s
        self._clock = clock
        self._states: dict[int, _State] = {}

    def healthy(self, channel_id: int) -> bool:
        state = self._states.get(channel_id)
        return state is None or state.open_until <= self._clock()

    def success(self, channel_id: int) -> None:
        state = self._states.get(channel_id)
        if state is not None:
            state.failures = 0
            state.open_until = 0.0

    def failure(self, channel_id: int) -> None:
        state = self._states.setdefault(channel_id, _State())
        state.failures += 1
        if state.failures >= self._threshold:
            state.open_until = self._clock() + self._cooldown

    def status(self, channel_id: int) -> dict[str, object]:
        state = self._states.get(channel_id, _State())
        return {"consecutive_failures": state.failures, "circuit_open": not self.healthy(channel_id)}
