"""Client-side helpers shared by the OpenAI-surface integration tests: SDK clients bound to a gateway,
request ids, the OpenAI error shape, exact expected costs, and secret checks."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import openai

from tests.helpers.gateway import Gateway

# The upstream credential the gateway holds for its channels; it must never reach a client or a log.
UPSTREAM_KEY = "sk-upstreamSECRET0d1e2b3c4f5a6978"
NANO = 1_000_000_000


def new_rid(tag: str = "t") -> str:
    return f"{tag}-{uuid.uuid4().hex[:16]}"


def sdk(gateway: Gateway, key: str, **kwargs: Any) -> openai.OpenAI:
    """The official sync client against the gateway; no SDK retries, so each call is one request."""
    return openai.OpenAI(api_key=key, base_url=gateway.url + "/v1", max_retries=0, timeout=30, **kwargs)


def async_sdk(gateway: Gateway, key: str, **kwargs: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(api_key=key, base_url=gateway.url + "/v1", max_retries=0, timeout=30, **kwargs)


def raw(gateway: Gateway, key: str | None = None, timeout: float = 30) -> httpx.Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.Client(base_url=gateway.url, headers=headers, timeout=timeout)


def token_cost(input_tokens: int, output_tokens: int, input_usd_per_m: str, output_usd_per_m: str,
               cached_tokens: int = 0, cached_usd_per_m: str | None = None) -> int:
    """The exact cost in nano-USD, rounded up once (docs/billing.md), computed independently here."""
    def per_m(usd: str) -> int:
        whole, _, frac = usd.partition(".")
        return int(whole) * NANO + int((frac + "0" * 9)[:9])

    cached_rate = per_m(cached_usd_per_m) if cached_usd_per_m is not None else per_m(input_usd_per_m)
    scaled = ((input_tokens - cached_tokens) * per_m(input_usd_per_m) + cached_tokens * cached_rate
              + output_tokens * per_m(output_usd_per_m))
    return -(-scaled // 1_000_000)


def assert_openai_error(response: httpx.Response, status: int, code: str | None) -> dict[str, Any]:
    """The response is an error in OpenAI's exact shape with this status and code; returns ``error``."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}, error
    assert isinstance(error["message"], str) and error["message"]
    assert isinstance(error["type"], str) and error["type"]
    assert error["code"] == code, error
    assert response.headers.get("x-request-id")
    return dict(error)


def assert_no_secrets(text: str, *secrets: str) -> None:
    for secret in (UPSTREAM_KEY, *secrets):
        assert secret not in text, f"{secret!r} leaked"
