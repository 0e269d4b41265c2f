"""The gateway the embeddings integration tests share: one channel of each kind that can embed (the fake
OpenAI and Gemini upstreams, the mock in both of its embeddings formats), an Anthropic channel that
cannot, and a pair of OpenAI channels for failover."""

from __future__ import annotations

from typing import Any

from tests.fakes.clients import NANO, UPSTREAM_KEY
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI

FULL = "sk-embed-full-key-0001"
TINY = "sk-embed-tiny-key-0001"  # a quota of 1000 nano-dollars
LIMITED = "sk-embed-limited-key-01"  # may use text-embedding-3-small only

# USD per 1M input tokens, as configured below (strings: exact).
PRICES = {"text-embedding-3-small": "0.02", "text-embedding-3-large": "0.13", "emb-mapped": "0.13",
          "text-embedding-004": "0.1", "gem-mapped": "0.1", "mock-embed": "0.02", "mock-gem-embed": "0.02",
          "claude-only": "3", "shared-embed": "0.02", "failover-embed": "0.02"}
PER_CALL_NANO = 10_000_000  # percall-embed: USD 0.01 per request


def config(openai_fake: FakeOpenAI, gemini_fake: FakeGemini) -> dict[str, Any]:
    def channel(name: str, kind: str, models: list[str], **more: Any) -> dict[str, Any]:
        base = {"openai": openai_fake.channel_url(name), "gemini": gemini_fake.channel_url(name),
                "anthropic": "http://127.0.0.1:9"}.get(kind)
        return {"name": name, "type": kind, **({"base_url": base, "api_key": UPSTREAM_KEY} if base else {}),
                "models": models, **more}

    return {
        "channels": [
            channel("oa", "openai", ["text-embedding-3-small", "text-embedding-3-large", "shared-embed"],
                    model_map={"emb-mapped": "text-embedding-3-large"}),
            channel("gm", "gemini", ["text-embedding-004"], model_map={"gem-mapped": "text-embedding-004"}),
            channel("mock", "mock", ["mock-embed", "percall-embed"], mock_chunk_delay_ms=0),
            channel("mockgem", "mock", ["mock-gem-embed"], dialect="gemini"),
            # Anthropic cannot embed: the only channel of claude-only, the first tier of shared-embed.
            channel("claude", "anthropic", ["claude-only", "shared-embed"], priority=10),
            channel("down", "openai", ["failover-embed"], priority=5),
            channel("up", "openai", ["failover-embed"]),
        ],
        "prices": {**{model: {"input": usd} for model, usd in PRICES.items()},
                   "percall-embed": {"per_call": PER_CALL_NANO / NANO}},
        "keys": [
            {"name": "full", "key": FULL, "quota_usd": 10},
            {"name": "tiny", "key": TINY, "quota_usd": "0.000001"},
            {"name": "limited", "key": LIMITED, "models": ["text-embedding-3-small"]},
        ],
    }


def input_cost(tokens: int, model: str) -> int:
    """Exact nano-dollars for ``tokens`` input tokens of ``model``, rounded up once (docs/billing.md)."""
    whole, _, frac = PRICES[model].partition(".")
    per_m = int(whole) * NANO + int((frac + "0" * 9)[:9])
    return -(-tokens * per_m // 1_000_000)
