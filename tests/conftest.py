"""Shared fixtures. Services: PostgreSQL (RELAYGATE_TEST_POSTGRES) and Redis (RELAYGATE_TEST_REDIS)
tests skip when the server is unreachable, except under CI=true, where they fail."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.clients import UPSTREAM_KEY
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.helpers.gateway import Gateway

POSTGRES_URL = os.environ.get("RELAYGATE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("RELAYGATE_TEST_REDIS", "redis://127.0.0.1:6379/15")


def service_unavailable(what: str, reason: str) -> None:
    """Skip locally; fail in CI, where the services must be there."""
    message = f"{what} is not reachable ({reason})"
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        pytest.fail(message + " and CI=true requires it")
    pytest.skip(message)


def _tracking_gateways() -> tuple[type[Gateway], list[Gateway]]:
    """A Gateway class that remembers every instance it starts, so a fixture can stop them all."""
    started: list[Gateway] = []

    class _Gateway(Gateway):
        def start(self, timeout: float = 30.0) -> Gateway:
            started.append(self)
            return super().start(timeout)

    return _Gateway, started


@pytest.fixture
def gateway_factory(tmp_path: Path) -> Iterator[type[Gateway]]:
    """Start gateways inside the test's temp dir; all are stopped at the end of the test."""
    factory, started = _tracking_gateways()
    yield factory
    for gateway in started:
        gateway.stop()


@pytest.fixture(scope="module")
def module_gateway_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[type[Gateway]]:
    """Like ``gateway_factory``, for a gateway shared by the tests of one module."""
    factory, started = _tracking_gateways()
    yield factory
    for gateway in started:
        gateway.stop()


@pytest.fixture(scope="module")
def fake_upstream() -> Iterator[FakeOpenAI]:
    """A fake OpenAI upstream (a real HTTP server) shared by the tests of one module."""
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
def fake(fake_upstream: FakeOpenAI) -> FakeOpenAI:
    """The module's fake upstream with its behaviours and recorded requests cleared for this test."""
    fake_upstream.reset()
    return fake_upstream


@pytest.fixture(scope="module")
def fake_anthropic_upstream() -> Iterator[FakeAnthropic]:
    """A fake Anthropic upstream shared by the tests of one module; it accepts only ``UPSTREAM_KEY``
    (the channel's key), so a call that reaches it with any other credential fails."""
    with FakeAnthropic(api_key=UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture
def anthropic_fake(fake_anthropic_upstream: FakeAnthropic) -> FakeAnthropic:
    """The module's fake Anthropic upstream, with behaviours and recorded requests cleared for this test."""
    fake_anthropic_upstream.reset()
    return fake_anthropic_upstream


@pytest.fixture(scope="module")
def fake_gemini_upstream() -> Iterator[FakeGemini]:
    """A fake Gemini upstream shared by the tests of one module; it accepts only ``UPSTREAM_KEY``."""
    with FakeGemini(api_key=UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture
def gemini_fake(fake_gemini_upstream: FakeGemini) -> FakeGemini:
    """The module's fake Gemini upstream, with behaviours and recorded requests cleared for this test."""
    fake_gemini_upstream.reset()
    return fake_gemini_upstream
