"""Providers build the upstream requests of their wire format: URL, headers, body, and nothing more."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Any

import orjson
import pytest

from relaygate.infra.http import HttpTransport, create_session
from relaygate.providers.anthropic import AnthropicProvider
from relaygate.providers.azure import AzureProvider
from relaygate.providers.base import Ability, UpstreamRequest
from relaygate.providers.gemini import GeminiProvider, model_segment
from relaygate.providers.mock import MockProvider
from relaygate.providers.openai import OpenAIProvider
from relaygate.providers.registry import (
    chat_images_provider_for,
    chat_kinds,
    has_ability,
    images_provider_for,
    known_kinds,
    midjourney_provider_for,
    offline,
    options_problem,
    provider,
    provider_for,
)
from relaygate.routing.records import ChannelRecord
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.gemini_upstream import FakeGemini

BODY = b'{"model":"m","messages":[]}'
KEY = "sk-upstream-secret-0123456789"


def channel(kind: str, base_url: str = "", options: dict[str, Any] | None = None, api_key: str = KEY) -> ChannelRecord:
    return ChannelRecord(1, "c", kind, base_url, api_key, options=options or {})


def build(provider: Any, ch: ChannelRecord, *, stream: bool = False, model: str = "m",
          headers: dict[str, str] | None = None) -> UpstreamRequest:
    request: UpstreamRequest = provider.chat_request(ch, BODY, stream=stream, model=model,
                                                     client_headers=headers or {})
    return request


def test_every_kind_is_registered_once() -> None:
    assert known_kinds() == ("openai", "azure", "anthropic", "gemini", "mock", "midjourney")
    assert chat_kinds() == known_kinds()[:-1]
    for kind in chat_kinds():
        assert provider_for(kind).kind == kind
    for kind in known_kinds():
        assert provider(kind).kind == kind
    # Midjourney is a task upstream like any provider: one ability, and no chat kind has it.
    assert provider("midjourney").abilities == {Ability.MIDJOURNEY}
    assert midjourney_provider_for("midjourney") is not None
    assert not any(has_ability(kind, Ability.MIDJOURNEY) for kind in chat_kinds())


@pytest.mark.parametrize(("kind", "dialect"), [("openai", "openai"), ("azure", "openai"),
                                               ("anthropic", "anthropic"), ("gemini", "gemini"), ("mock", "openai")])
def test_dialects(kind: str, dialect: str) -> None:
    assert provider_for(kind).dialect_for(channel(kind, "https://x")) == dialect


# -- anthropic -------------------------------------------------------------------------------------

@pytest.mark.parametrize("base", ["https://api.anthropic.com", "https://api.anthropic.com/",
                                  "https://api.anthropic.com/v1", "https://api.anthropic.com/v1/"])
def test_anthropic_url_with_or_without_v1(base: str) -> None:
    request = build(AnthropicProvider(), channel("anthropic", base))
    assert (request.method, request.url) == ("POST", "https://api.anthropic.com/v1/messages")
    models = AnthropicProvider().models_request(channel("anthropic", base))
    assert models is not None and (models.method, models.url) == ("GET", "https://api.anthropic.com/v1/models")


def test_anthropic_headers_body_and_stream() -> None:
    request = build(AnthropicProvider(), channel("anthropic", "https://a.example"), stream=True)
    assert request.headers == {"x-api-key": KEY, "anthropic-version": "2023-06-01",
                               "content-type": "application/json", "accept": "text/event-stream"}
    assert request.body is BODY and request.stream
    plain = build(AnthropicProvider(), channel("anthropic", "https://a.example"))
    assert "accept" not in plain.headers and not plain.stream
    models = AnthropicProvider().models_request(channel("anthropic", "https://a.example"))
    assert models is not None and models.headers == {"x-api-key": KEY, "anthropic-version": "2023-06-01"}


def test_anthropic_beta_is_passed_through_and_nothing_else() -> None:
    client = {"anthropic-beta": "prompt-caching-2024-07-31,output-128k-2025-02-19", "authorization": "Bearer sk-c",
              "x-api-key": "sk-client", "anthropic-version": "2099-01-01", "user-agent": "sdk"}
    request = build(AnthropicProvider(), channel("anthropic", "https://a.example"), headers=client)
    assert request.headers["anthropic-beta"] == "prompt-caching-2024-07-31,output-128k-2025-02-19"
    assert request.headers["x-api-key"] == KEY and request.headers["anthropic-version"] == "2023-06-01"
    assert set(request.headers) == {"x-api-key", "anthropic-version", "content-type", "anthropic-beta"}
    assert "anthropic-beta" not in build(AnthropicProvider(), channel("anthropic", "https://a"),
                                         headers={"anthropic-beta": ""}).headers


def test_anthropic_version_option_and_no_key() -> None:
    ch = channel("anthropic", "https://a.example", {"anthropic_version": "2024-01-01"}, api_key="")
    request = build(AnthropicProvider(), ch)
    assert request.headers["anthropic-version"] == "2024-01-01" and "x-api-key" not in request.headers
    assert options_problem("anthropic", {"anthropic_version": "2024-01-01"}) is None
    assert options_problem("anthropic", {"anthropic_version": 5}) is not None
    assert options_problem("anthropic", {"anthropic_version": "x\r\ny: z"}) is not None


# -- gemini ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("base", ["https://g.example", "https://g.example/", "https://g.example/v1beta",
                                  "https://g.example/v1", "https://g.example/v1beta/"])
def test_gemini_urls(base: str) -> None:
    provider = GeminiProvider()
    plain = build(provider, channel("gemini", base), model="gemini-2.5-flash")
    assert plain.url == "https://g.example/v1beta/models/gemini-2.5-flash:generateContent"
    streamed = build(provider, channel("gemini", base), model="gemini-2.5-flash", stream=True)
    assert streamed.url == "https://g.example/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert streamed.headers["accept"] == "text/event-stream" and streamed.stream
    models = provider.models_request(channel("gemini", base))
    assert models is not None and (models.method, models.url) == ("GET", "https://g.example/v1beta/models")


def test_gemini_key_in_a_header_never_in_the_url() -> None:
    for stream in (False, True):
        request = build(GeminiProvider(), channel("gemini", "https://g.example"), stream=stream)
        assert request.headers["x-goog-api-key"] == KEY and request.headers["content-type"] == "application/json"
        assert KEY not in request.url and "key=" not in request.url
        assert request.meta["model"] == "m" and request.body is BODY
    models = GeminiProvider().models_request(channel("gemini", "https://g.example"))
    assert models is not None and models.headers == {"x-goog-api-key": KEY} and KEY not in models.url


def test_gemini_api_version_option() -> None:
    ch = channel("gemini", "https://g.example/v1beta", {"api_version": "v1"})
    assert build(GeminiProvider(), ch).url == "https://g.example/v1/models/m:generateContent"
    assert options_problem("gemini", {"api_version": "v1"}) is None
    assert options_problem("gemini", {"api_version": "v2/../x"}) is not None
    assert options_problem("gemini", {}) is None


@pytest.mark.parametrize(("model", "segment"), [
    ("gemini-2.5-flash", "gemini-2.5-flash"),
    ("models/gemini-2.5-pro", "gemini-2.5-pro"),
    ("a/../../v1/files", "a%2F..%2F..%2Fv1%2Ffiles"),
    ("x?key=stolen&alt=json", "x%3Fkey%3Dstolen%26alt%3Djson"),
    ("m#frag", "m%23frag"),
    ("m:streamGenerateContent", "m%3AstreamGenerateContent"),
    ("50%", "50%25"),
    ("tuned models/é", "tuned%20models%2F%C3%A9"),
])
def test_gemini_model_names_stay_one_path_segment(model: str, segment: str) -> None:
    assert model_segment(model) == segment
    url = build(GeminiProvider(), channel("gemini", "https://g.example"), model=model).url
    assert url == f"https://g.example/v1beta/models/{segment}:generateContent"


# -- azure -----------------------------------------------------------------------------------------

def test_azure_deployment_url_and_key_header() -> None:
    ch = channel("azure", "https://res.openai.azure.com/", {"deployments": {"gpt-4o": "prod-4o"}})
    request = build(AzureProvider(), ch, model="gpt-4o", stream=True)
    assert request.url == "https://res.openai.azure.com/openai/deployments/prod-4o/chat/completions" \
                          "?api-version=2024-10-21"
    assert request.headers == {"api-key": KEY, "content-type": "application/json", "accept": "text/event-stream"}
    assert "authorization" not in {k.lower() for k in request.headers} and request.body is BODY


def test_azure_unlisted_model_is_its_own_deployment_and_version_is_an_option() -> None:
    ch = channel("azure", "https://res.openai.azure.com/openai", {"api_version": "2025-01-01-preview"})
    request = build(AzureProvider(), ch, model="gpt-4o-mini")
    assert request.url == "https://res.openai.azure.com/openai/deployments/gpt-4o-mini/chat/completions" \
                          "?api-version=2025-01-01-preview"
    odd = build(AzureProvider(), ch, model="a/b?c").url
    assert "/deployments/a%2Fb%3Fc/chat/completions?" in odd
    assert AzureProvider().models_request(ch) is None


def test_azure_options() -> None:
    assert options_problem("azure", {"deployments": {"gpt-4o": "d"}, "api_version": "2024-10-21"}) is None
    assert options_problem("azure", {"deployments": ["gpt-4o"]}) is not None
    assert options_problem("azure", {"deployments": {"gpt-4o": 3}}) is not None
    assert options_problem("azure", {"api_version": ""}) is not None


# -- openai and mock (unchanged shape) ---------------------------------------------------------------

def test_openai_provider_is_unchanged() -> None:
    request = build(OpenAIProvider(), channel("openai", "https://api.openai.com"), stream=True,
                    headers={"anthropic-beta": "x"})
    assert request.url == "https://api.openai.com/v1/chat/completions"
    assert request.headers == {"Content-Type": "application/json", "Authorization": "Bearer " + KEY,
                               "Accept": "text/event-stream"}
    # openai channels take no options: any name is a typo (issue 10 item 4), refused before a request fails
    refused = options_problem("openai", {"anything": 1})
    assert refused == "channels of type openai take no options; 'anything' is unknown"
    assert options_problem("openai", {}) is None and options_problem("nope", {}) is None


def test_mock_dialect_option() -> None:
    mock = MockProvider()
    for dialect in ("openai", "anthropic", "gemini"):
        assert mock.dialect_for(channel("mock", options={"dialect": dialect})) == dialect
        assert options_problem("mock", {"dialect": dialect}) is None
    assert options_problem("mock", {"dialect": "claude"}) == "dialect must be one of openai, anthropic, gemini"
    assert options_problem("mock", {"mock_chunk_delay_ms": -1}) is not None
    assert options_problem("mock", {"mock_chunk_delay_ms": "fast"}) is not None
    assert options_problem("mock", {"mock_chunk_delay_ms": "5"}) is None
    assert options_problem("mock", {"mock_chunk_delay_ms": float("nan")}) is not None
    assert options_problem("mock", {"mock_chunk_delay_ms": 0}) is None
    request = build(mock, channel("mock", options={"dialect": "gemini"}), model="g/x", stream=True)
    assert request.url == "mock://v1beta/models/g%2Fx:streamGenerateContent?alt=sse"
    assert request.meta["dialect"] == "gemini" and request.meta["model"] == "g/x"
    assert mock.transport_for(channel("mock")) is not None


# -- over real HTTP, against the fakes ---------------------------------------------------------------

@pytest.fixture(scope="module")
def fakes() -> Iterator[tuple[FakeAnthropic, FakeGemini]]:
    with FakeAnthropic(api_key=KEY) as anthropic, FakeGemini(api_key=KEY) as gemini:
        yield anthropic, gemini


@pytest.fixture
async def http() -> AsyncIterator[HttpTransport]:
    session = create_session()
    try:
        yield HttpTransport(session)
    finally:
        await session.close()


async def exchange(http: HttpTransport, request: UpstreamRequest) -> tuple[int, bytes]:
    response = await http.send(request)
    try:
        return response.status, await response.read(1 << 20)
    finally:
        response.close()


async def test_anthropic_requests_are_accepted_by_the_fake(fakes: tuple[FakeAnthropic, FakeGemini],
                                                           http: HttpTransport) -> None:
    fake = fakes[0]
    fake.reset()
    ch = channel("anthropic", fake.channel_url("a"))
    body = orjson.dumps({"model": "claude-sonnet-4-20250514", "max_tokens": 5,
                         "messages": [{"role": "user", "content": "hi"}]})
    request = AnthropicProvider().chat_request(ch, body, stream=False, model="claude-sonnet-4-20250514",
                                               client_headers={"anthropic-beta": "files-api-2025-04-14"})
    status, answer = await exchange(http, request)
    assert status == 200 and orjson.loads(answer)["content"] == [{"type": "text", "text": "Bonjour!"}]
    models = AnthropicProvider().models_request(ch)
    assert models is not None and (await exchange(http, models))[0] == 200
    sent, listed = fake.requests_for("a")
    assert sent.path == "/a/v1/messages" and sent.body == body
    assert sent.headers["x-api-key"] == KEY and sent.headers["anthropic-beta"] == "files-api-2025-04-14"
    assert listed.path == "/a/v1/models"


@pytest.mark.parametrize("model", ["gemini-2.5-flash", "x/../../v1beta/models?key=1", "m:countTokens#f"])
async def test_gemini_requests_are_accepted_by_the_fake(fakes: tuple[FakeAnthropic, FakeGemini],
                                                        http: HttpTransport, model: str) -> None:
    fake = fakes[1]
    fake.reset()
    ch = channel("gemini", fake.channel_url("g"))
    body = orjson.dumps({"contents": [{"role": "user", "parts": [{"text": "hi"}]}]})
    for stream in (False, True):
        status, answer = await exchange(http, GeminiProvider().chat_request(ch, body, stream=stream, model=model,
                                                                            client_headers={}))
        assert status == 200, answer
    plain, streamed = fake.generate_requests()
    # The whole model name arrives as one path segment, and the query is only what the provider put there.
    prefix = "/g/v1beta/models/"
    assert plain.path == f"{prefix}{model}:generateContent" and plain.query == {}
    assert streamed.path == f"{prefix}{model}:streamGenerateContent" and streamed.query == {"alt": "sse"}
    assert all(r.headers["x-goog-api-key"] == KEY and KEY not in r.raw_path for r in (plain, streamed))
    models = GeminiProvider().models_request(ch)
    assert models is not None and (await exchange(http, models))[0] == 200


def test_midjourney_options_are_checked() -> None:
    assert options_problem("midjourney", {"forward_mode": True, "callbacks": False, "image_proxy": True}) is None
    assert options_problem("midjourney", {"forward_mod": True}) == (
        "unknown option of midjourney channels 'forward_mod' (did you mean 'forward_mode'?); "
        "expected one of: forward_mode, callbacks, image_proxy, mock")
    assert options_problem("midjourney", {"image_proxy": "yes"}) == "image_proxy must be true or false"


def test_each_kind_declares_its_images_ability_and_lacks_the_other() -> None:
    """An absent ability is absent (no stub that raises): Gemini makes images only through image-output
    chat models, OpenAI, Azure and the mock only through OpenAI's images API, Anthropic not at all."""
    assert images_provider_for("gemini") is None and not hasattr(provider_for("gemini"), "images_request")
    assert chat_images_provider_for("gemini") is provider_for("gemini")
    for kind in ("openai", "azure", "mock"):
        assert images_provider_for(kind) is provider_for(kind) and chat_images_provider_for(kind) is None
    assert not has_ability("anthropic", Ability.IMAGES) and not has_ability("midjourney", Ability.IMAGES)
    assert all(has_ability(kind, Ability.IMAGES) for kind in ("openai", "azure", "mock", "gemini"))


def test_abilities_are_declared_once_per_kind() -> None:
    """Each kind's abilities, as its module declares them; the router is asked for them, not the kind."""
    expected = {
        "openai": {Ability.CHAT, Ability.EMBEDDINGS, Ability.IMAGES},
        "azure": {Ability.CHAT, Ability.EMBEDDINGS, Ability.IMAGES},
        "anthropic": {Ability.CHAT},
        "gemini": {Ability.CHAT, Ability.EMBEDDINGS, Ability.IMAGES},
        "mock": {Ability.CHAT, Ability.EMBEDDINGS, Ability.IMAGES},
        "midjourney": {Ability.MIDJOURNEY},
    }
    assert {kind: provider(kind).abilities for kind in known_kinds()} == expected
    assert not has_ability("nope", Ability.CHAT)


def test_offline_channels_are_declared_by_their_provider() -> None:
    """The mock, and a Midjourney channel with ``mock: true``, answer in process: no base_url needed."""
    assert offline("mock", {}) and offline("midjourney", {"mock": True})
    assert not offline("midjourney", {}) and not offline("openai", {}) and not offline("nope", {})
