"""One gateway per fuzz module, with every kind of channel: the built-in mock (chat, embeddings,
images, Midjourney) and the fake OpenAI, Anthropic and Gemini upstreams, each behind three channels —
``fake-*`` (answers normally), ``faulty-*`` (told to answer 500: a relayed 5xx is fine) and
``err200-*`` (an error body with HTTP 200)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.clients import UPSTREAM_KEY
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.helpers.gateway import Gateway

KEY = "sk-fuzz-key-0123456789abcdef"
PER_TOKEN = {"input": "1", "output": "2", "per_image": "0.01"}
ERR200 = {
    "openai": '{"error": {"message": "Incorrect API key provided", "type": "invalid_request_error", '
              '"param": null, "code": "invalid_api_key"}}',
    "anthropic": '{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}',
    "gemini": '{"error": {"code": 429, "message": "Resource exhausted", "status": "RESOURCE_EXHAUSTED"}}',
}


def _channels(kind: str, fake: Any, models: str) -> list[dict[str, Any]]:
    fake.set("faulty", status=500)
    fake.set("err200", raw_body=ERR200[kind])
    return [{"name": f"{kind}-{prefix}", "type": kind, "base_url": fake.channel_url(prefix), "api_key": UPSTREAM_KEY,
             "models": [f"{prefix}-{models}"]} for prefix in ("fake", "faulty", "err200")]


@pytest.fixture(scope="module")
def fuzz_gateway(module_gateway_factory: type[Gateway], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with FakeOpenAI() as openai, FakeAnthropic(api_key=UPSTREAM_KEY) as anthropic, \
            FakeGemini(api_key=UPSTREAM_KEY) as gemini:
        config = {
            "mj_poll_s": 0.5, "task_poll_s": 0.5, "max_image_upload_bytes": 2_000_000,
            "channels": [
                {"name": "mock", "type": "mock", "models": ["mock-*", "dall-e-2", "gpt-image-1"],
                 "mock_chunk_delay_ms": 0},
                {"name": "mj", "type": "midjourney", "models": ["mj_*", "swap_face"], "options": {"mock": True}},
                *_channels("openai", openai, "gpt"), *_channels("anthropic", anthropic, "claude"),
                *_channels("gemini", gemini, "gemini"),
            ],
            "prices": {"*": PER_TOKEN},
            "keys": [{"name": "fuzz", "key": KEY}],
        }
        gateway = module_gateway_factory(Path(tmp_path_factory.mktemp("fuzz")), config).start()
        yield gateway
        assert gateway.process is not None and gateway.process.poll() is None, "the gateway died"
        gateway.stop()
