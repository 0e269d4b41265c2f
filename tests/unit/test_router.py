"""routing.router and routing.health: priority tiers, weighted order inside a tier, circuit order."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from relaygate.routing.health import HealthBook
from relaygate.routing.records import ChannelRecord
from relaygate.routing.router import Router


def channel(cid: int, models: tuple[str, ...] = ("gpt-4o",), *, priority: int = 0, weight: int = 1,
            enabled: bool = True, model_map: dict[str, str] | None = None) -> ChannelRecord:
    return ChannelRecord(id=cid, name=f"c{cid}", type="openai", base_url="http://x", api_key="k", models=models,
                         model_map=model_map or {}, priority=priority, weight=weight, enabled=enabled)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def ids(router: Router, model: str = "gpt-4o", limit: int = 10) -> list[int]:
    return [c.id for c, _ in router.candidates(model, limit)]


def test_higher_priority_tiers_come_first() -> None:
    channels = [channel(1, priority=0), channel(2, priority=10), channel(3, priority=5), channel(4, priority=10),
                channel(5, priority=-1)]
    router = Router(channels, HealthBook(), random.Random(1))
    for _ in range(50):
        order = ids(router)
        assert set(order[:2]) == {2, 4}
        assert order[2:] == [3, 1, 5]


def test_the_limit_cuts_the_list() -> None:
    router = Router([channel(i, priority=i) for i in range(5)], HealthBook())
    assert ids(router, limit=3) == [4, 3, 2]
    assert ids(router, limit=0) == []


def test_weights_share_the_lead_in_proportion() -> None:
    router = Router([channel(1, weight=3), channel(2, weight=1), channel(3, weight=0)], HealthBook(),
                    random.Random(20240501))
    draws = 8000
    leads = Counter(ids(router)[0] for _ in range(draws))
    assert leads[3] == 0  # weight 0 never leads
    assert abs(leads[1] / draws - 0.75) < 0.03  # 3 : 1, within about five standard deviations
    assert abs(leads[2] / draws - 0.25) < 0.03


def test_weight_zero_is_still_a_last_resort() -> None:
    router = Router([channel(1, weight=0), channel(2, weight=5)], HealthBook(), random.Random(3))
    assert all(ids(router) == [2, 1] for _ in range(20))


def test_every_channel_of_a_tier_is_listed_once() -> None:
    router = Router([channel(i, weight=i + 1) for i in range(6)], HealthBook(), random.Random(5))
    for _ in range(20):
        assert sorted(ids(router)) == list(range(6))


def test_open_circuits_go_after_every_healthy_channel() -> None:
    clock = Clock()
    health = HealthBook(failures=2, cooldown_s=30, clock=clock)
    router = Router([channel(1, priority=10), channel(2, priority=5), channel(3, priority=0)], health)
    health.failure(1)
    assert ids(router) == [1, 2, 3]  # one failure is not enough
    health.failure(1)
    assert ids(router) == [2, 3, 1]  # open: tried last, but still tried
    assert health.status(1) == {"consecutive_failures": 2, "circuit_open": True}
    health.failure(2)
    health.failure(2)
    assert ids(router) == [3, 1, 2]  # sick ones keep their tier order among themselves
    clock.now += 31
    assert ids(router) == [1, 2, 3]  # the cooldown is over: back in place


def test_a_success_closes_the_circuit() -> None:
    clock = Clock()
    health = HealthBook(failures=1, cooldown_s=30, clock=clock)
    router = Router([channel(1, priority=1), channel(2)], health)
    health.failure(1)
    assert ids(router) == [2, 1]
    health.success(1)
    assert ids(router) == [1, 2]
    assert health.status(1) == {"consecutive_failures": 0, "circuit_open": False}


def test_models_patterns_and_mapping() -> None:
    channels = [channel(1, ("gpt-4o", "gpt-4-gizmo-*"), model_map={"gpt-4-vision-preview": "gpt-4o"}),
                channel(2, ("gpt-4o-mini",)), channel(3, ("gpt-4o",), enabled=False)]
    router = Router(channels, HealthBook())
    assert router.serves("gpt-4-gizmo-g-abc") and router.serves("gpt-4-vision-preview")
    assert not router.serves("gpt-4-gizmo") and not router.serves("claude-3")
    assert router.candidates("gpt-4-vision-preview", 3) == [(channels[0], "gpt-4o")]
    assert router.candidates("gpt-4-gizmo-g-abc", 3) == [(channels[0], "gpt-4-gizmo-g-abc")]
    assert ids(router, "gpt-4o") == [1]  # the disabled channel is not a candidate
    assert router.candidates("claude-3", 3) == []
    assert router.listed_models() == ["gpt-4-vision-preview", "gpt-4o", "gpt-4o-mini"]


@pytest.mark.parametrize("model", ["gpt-4o", "gpt-4o-mini"])
def test_answers_are_stable_across_calls(model: str) -> None:
    router = Router([channel(1, ("gpt-4o", "gpt-4o-mini"))], HealthBook())
    assert ids(router, model) == ids(router, model) == [1]
