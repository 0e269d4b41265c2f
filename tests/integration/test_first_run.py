"""What a new user meets on a first run: start-up warnings and error messages that say what to do."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from tests.helpers.gateway import Gateway

KEY = "sk-first-run-tiny-quota"
CONFIG = {
    "channels": [{"name": "play", "type": "mock", "models": ["mock-gpt", "mock-unpriced", "mock-image"],
                  "model_map": {"mapped-unpriced": "mock-gpt"}, "mock_chunk_delay_ms": 0}],
    "prices": {"mock-gpt": {"input": "2.5", "output": "10"}, "mock-image": {"per_image": "0.02"}},
    "keys": [{"name": "tiny", "key": KEY, "quota_usd": "0.001"}],
}


@pytest.fixture(scope="module")
def gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    with Gateway(tmp_path_factory.mktemp("first-run"), CONFIG) as started:
        yield started


def auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY}"}


def test_start_up_warns_about_each_served_model_without_a_price(gateway: Gateway) -> None:
    logs = gateway.logs()
    for model in ("mock-unpriced", "mapped-unpriced"):
        assert f"model {model} is served by a channel but has no price" in logs
    assert "model mock-gpt is served" not in logs and "model mock-image is served" not in logs


def test_ready_only_once_the_tokenizers_are_loaded(gateway: Gateway) -> None:
    """A balancer that waits for /readyz sends no traffic while the vocabularies still load."""
    answer = httpx.get(gateway.url + "/readyz")
    assert answer.status_code == 200
    assert answer.json()["checks"] == {"draining": "no", "snapshot": "loaded", "tokenizers": "loaded",
                                       "database": "ok"}


def test_insufficient_quota_says_what_was_reserved_and_that_max_tokens_lowers_it(gateway: Gateway) -> None:
    body = {"model": "mock-gpt", "max_tokens": 1_000_000, "messages": [{"role": "user", "content": "hi"}]}
    refused = httpx.post(gateway.url + "/v1/chat/completions", json=body, headers=auth())
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["code"] == "insufficient_quota"
    assert "This request needs $10.0000" in error["message"]  # 1M output tokens at $10 per 1M, and the input
    assert "up to 1000000 output tokens; a lower max_tokens" in error["message"]
    assert error["message"].endswith("the key has $0.001 left.")
    fits = httpx.post(gateway.url + "/v1/chat/completions", json={**body, "max_tokens": 10}, headers=auth())
    assert fits.status_code == 200, fits.text


def test_a_refused_webhook_names_the_setting_that_allows_it(gateway: Gateway) -> None:
    refused = httpx.post(gateway.url + "/v1/images/generations", headers=auth(),
                         params={"async": "true", "webhook": "http://127.0.0.1:9/hook"},
                         json={"model": "mock-image", "prompt": "a crane"})
    assert refused.status_code == 400, refused.text
    assert refused.json()["error"]["code"] == "invalid_webhook"
    assert "allow_private_webhooks: true" in refused.json()["error"]["message"]


@pytest.mark.parametrize(("path", "hint"), [
    ("/v1/v1/chat/completions", "The path starts with /v1/v1: the client adds /v1 itself"),
    ("/v1/chat/completion", "This gateway serves /v1/chat/completions,"),
    ("/api/key", "This gateway serves /api/keys,"),
])
def test_unknown_paths_answer_in_the_surface_shape_with_a_hint(gateway: Gateway, path: str, hint: str) -> None:
    answer = httpx.post(gateway.url + path, headers=auth(), json={})
    assert answer.status_code == 404
    error = answer.json()["error"]
    assert error["code"] == "unknown_url" and hint in error["message"]


def test_a_doubled_gemini_prefix_answers_in_gemini_shape(gateway: Gateway) -> None:
    answer = httpx.post(gateway.url + "/v1beta/v1beta/models/mock-gpt:generateContent",
                        headers={"x-goog-api-key": KEY}, json={})
    assert answer.status_code == 404
    error = answer.json()["error"]
    assert error["status"] == "NOT_FOUND" and "the client adds /v1beta itself" in error["message"]


def test_a_doubled_midjourney_prefix_answers_in_midjourney_shape(gateway: Gateway) -> None:
    answer = httpx.post(gateway.url + "/mj/mj/submit/imagine", headers=auth(), json={"prompt": "x"})
    assert answer.status_code == 404
    assert answer.json()["properties"]["error"] == "unknown_url" and "adds /mj itself" in answer.json()["description"]


