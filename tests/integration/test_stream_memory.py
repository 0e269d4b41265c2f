"""A 100,000-event stream through a running gateway, from an upstream that reports no usage: the
gateway bills the offline count of the whole text, although its taps keep only a running count.

Passed through (OpenAI client, OpenAI channel) and translated (Anthropic client, OpenAI channel). The
gateway's resident memory (VmRSS of its process) is printed before and during the stream, for
docs/performance.md; it is reported, never asserted.
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from relaygate.billing.tokenizer import count_text
from tests.fakes.clients import UPSTREAM_KEY, new_rid
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import Gateway

KEY = "sk-stream-memory-key-001"
EVENTS = 100_000
WORDS = ("relay", "gateway", "token", "naïve", "数据", "🙂", "stream", "3.14159", "it's", "\n", "{\"a\":", "1}")


def _pieces(count: int) -> tuple[str, ...]:
    """A text cut into ``count`` deltas anywhere (mid-word too), as upstreams send them."""
    rng = random.Random(5)
    text = " ".join(rng.choice(WORDS) for _ in range(count))
    cuts = sorted(rng.sample(range(1, len(text)), count - 1))
    return tuple(text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)], strict=True))


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: type[Gateway], fake_upstream: FakeOpenAI,
            tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    channel = {"name": "long", "type": "openai", "base_url": fake_upstream.channel_url("long"),
               "api_key": UPSTREAM_KEY, "models": ["gpt-4o", "gpt-4"]}
    config = {"channels": [channel], "prices": {"*": {"input": 2.5, "output": 10}},
              "keys": [{"name": "memory", "key": KEY, "quota_usd": 100}], "stream_idle_timeout_s": 30}
    return module_gateway_factory(Path(tmp_path_factory.mktemp("memory")), config).start()


def _request(surface: str, model: str) -> tuple[str, dict[str, Any], dict[str, str]]:
    messages = [{"role": "user", "content": "Talk for an hour."}]
    if surface == "openai":
        return "/v1/chat/completions", {"model": model, "stream": True, "messages": messages}, {}
    return ("/v1/messages", {"model": model, "stream": True, "max_tokens": 100, "messages": messages},
            {"anthropic-version": "2023-06-01"})


def _stream(gateway: Gateway, surface: str, model: str, rid: str, every: int = 0) -> tuple[int, int]:
    """Read a whole stream; the number of SSE events received and the gateway's highest VmRSS sampled
    every ``every`` events (0: not sampled)."""
    path, body, headers = _request(surface, model)
    headers = {**headers, "Authorization": f"Bearer {KEY}", "X-Request-Id": rid}
    events = peak = 0
    assert gateway.process is not None
    with httpx.stream("POST", gateway.url + path, json=body, headers=headers, timeout=120) as response:
        assert response.status_code == 200
        for line in response.iter_lines():
            if line.startswith("data:"):
                events += 1
                if every and events % every == 0:
                    peak = max(peak, rss_kib(gateway.process.pid))
    return events, peak


@pytest.mark.parametrize(("surface", "model"), [("openai", "gpt-4o"), ("anthropic", "gpt-4")])
def test_a_100k_event_stream_without_usage_is_billed_its_whole_text(
        gateway: Gateway, fake: FakeOpenAI, surface: str, model: str) -> None:
    pieces = _pieces(EVENTS)
    # First use of the tokenizer on a whole batch, pools, code paths: a one-time ~5 MB, not measured.
    fake.set("long", content=pieces[:5_000], omit_usage=True)
    _stream(gateway, surface, model, new_rid("warm"))
    fake.set("long", content=pieces, omit_usage=True)
    assert gateway.process is not None
    before = rss_kib(gateway.process.pid)
    rid = new_rid("long")
    events, peak = _stream(gateway, surface, model, rid, every=5_000)
    after = rss_kib(gateway.process.pid)
    assert events >= EVENTS
    record = GatewayDB(gateway.database).usage(rid)
    assert record["usage_source"] == "estimated" and record["end_reason"] == "done"
    assert record["output_tokens"] == count_text("".join(pieces), model)
    print(f"\n{surface} {model}: {events} events; gateway VmRSS {before} KiB before, "
          f"peak {peak} KiB during (+{peak - before}), {after} KiB after (+{after - before})", file=sys.stderr)
