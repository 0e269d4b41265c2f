"""Images by URL for upstreams that need the bytes. Gemini reads only Google-hosted files and Anthropic
only ``https`` URLs, so when an OpenAI (or Anthropic) client sends an ``http`` image URL to such a
channel, the gateway fetches it — with its address, type and size checks — and sends it inline. The
images come from a loopback aiohttp server, which the gateway may fetch from only when the operator
sets ``allow_private_media_urls``."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import pytest
from aiohttp import web
from openai.types.chat import ChatCompletionContentPartParam, ChatCompletionMessageParam

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.clients import UPSTREAM_KEY, assert_openai_error, new_rid, token_cost
from tests.fakes.fake_server import BehaviorBase, FakeServer
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import Gateway

KEY = "sk-media-fetch-key-00001"
SNUG = "sk-media-snug-quota-00001"
MAX_BYTES = 4096
# A valid 1×1 PNG.
PNG = base64.b64decode("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9aw"
                       "AAAABJRU5ErkJggg==")
PNG_B64 = base64.b64encode(PNG).decode()
BIG_PNG = PNG + b"\0" * (MAX_BYTES + 1)  # over the limit (a PNG with trailing bytes; nobody decodes it here)
FLASH = ("0.3", "2.5")


class MediaServer(FakeServer[Any]):
    """Serves the test images on loopback and records who fetched what."""

    name = "media"

    def default_behavior(self) -> Any:
        return BehaviorBase()

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/cat.png", self._png)
        app.router.add_get("/big.png", self._big)
        app.router.add_get("/big-chunked.png", self._big_chunked)
        app.router.add_get("/page.html", self._html)
        app.router.add_get("/moved", self._moved)
        app.router.add_get("/gone.png", self._gone)
        return app

    async def _png(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        return web.Response(body=PNG, content_type="image/png")

    async def _big(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        return web.Response(body=BIG_PNG, content_type="image/png")

    async def _big_chunked(self, request: web.Request) -> web.StreamResponse:
        """No Content-Length: the limit must hold while reading."""
        await self.record(request)
        response = web.StreamResponse(headers={"Content-Type": "image/png"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for start in range(0, len(BIG_PNG), 1024):
            await response.write(BIG_PNG[start:start + 1024])
        await response.write_eof()
        return response

    async def _html(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        return web.Response(text="<html>not an image</html>", content_type="text/html")

    async def _moved(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        raise web.HTTPFound("/cat.png")

    async def _gone(self, request: web.Request) -> web.StreamResponse:
        await self.record(request)
        raise web.HTTPNotFound()


@pytest.fixture(scope="module")
def media() -> Iterator[MediaServer]:
    with MediaServer() as server:
        yield server


def _config(gemini: FakeGemini, anthropic_fake: FakeAnthropic, **settings: Any) -> dict[str, Any]:
    return {
        **settings,
        "channels": [
            {"name": "gm", "type": "gemini", "base_url": gemini.channel_url("gm"), "api_key": UPSTREAM_KEY,
             "models": ["gemini-2.5-flash"]},
            {"name": "an", "type": "anthropic", "base_url": anthropic_fake.channel_url("an"), "api_key": UPSTREAM_KEY,
             "models": ["claude-sonnet-4-20250514"]},
        ],
        "prices": {"gemini-2.5-flash": {"input": 0.3, "output": 2.5},
                   "claude-sonnet-4-20250514": {"input": 3, "output": 15}},
        "keys": [{"name": "media", "key": KEY, "quota_usd": 5},
                 # Room for one call's reservation (about 2.6 million nano-USD here), not two.
                 {"name": "snug", "key": SNUG, "quota_usd": "0.004"}],
    }


@pytest.fixture(scope="module")
def allowing(module_gateway_factory: type[Gateway], fake_gemini_upstream: FakeGemini,
             fake_anthropic_upstream: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    """A gateway whose operator allows fetching from private addresses (the loopback media server)."""
    config = _config(fake_gemini_upstream, fake_anthropic_upstream, allow_private_media_urls=True,
                     media_fetch_max_bytes=MAX_BYTES, media_fetch_timeout_s=5)
    return module_gateway_factory(Path(tmp_path_factory.mktemp("media-allowing")), config).start()


@pytest.fixture(scope="module")
def default(module_gateway_factory: type[Gateway], fake_gemini_upstream: FakeGemini,
            fake_anthropic_upstream: FakeAnthropic, tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    """A gateway with the default guards: public addresses only."""
    config = _config(fake_gemini_upstream, fake_anthropic_upstream)
    return module_gateway_factory(Path(tmp_path_factory.mktemp("media-default")), config).start()


@pytest.fixture(autouse=True)
def _fresh(media: MediaServer, gemini_fake: FakeGemini, anthropic_fake: FakeAnthropic) -> None:
    media.reset()


def _client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=gateway.url + "/v1", max_retries=0, timeout=30)


def _look_at(*urls: str) -> list[ChatCompletionMessageParam]:
    content: list[ChatCompletionContentPartParam] = [{"type": "text", "text": "What is in these pictures?"}]
    content += [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    return [{"role": "user", "content": content}]


# --- fetched and inlined ------------------------------------------------------------------------

@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_an_http_image_is_fetched_and_sent_to_gemini_inline(allowing: Gateway, media: MediaServer,
                                                            gemini_fake: FakeGemini, stream: bool) -> None:
    rid = new_rid("media-gm")
    url = media.url + "/cat.png"
    with _client(allowing) as client:
        if stream:
            text = "".join(c.choices[0].delta.content or "" for c in client.chat.completions.create(
                model="gemini-2.5-flash", messages=_look_at(url, url), stream=True,
                extra_headers={"X-Request-Id": rid}))
        else:
            text = client.chat.completions.create(model="gemini-2.5-flash", messages=_look_at(url, url),
                                                  extra_headers={"X-Request-Id": rid}).choices[0].message.content or ""
    assert text == "Bonjour!"
    assert [r.path for r in media.requests] == ["/cat.png"]  # the same URL twice: fetched once
    [sent] = gemini_fake.generate_requests()
    parts = sent.json()["contents"][0]["parts"]
    assert parts == [{"text": "What is in these pictures?"},
                     {"inlineData": {"mimeType": "image/png", "data": PNG_B64}},
                     {"inlineData": {"mimeType": "image/png", "data": PNG_B64}}]
    assert url.encode() not in sent.body
    row = GatewayDB(allowing.database).usage(rid)
    assert (row["end_reason"], row["input_tokens"], row["output_tokens"]) == ("done", 11, 3)
    assert row["cost_nano"] == token_cost(11, 3, *FLASH)


def test_a_redirect_is_followed(allowing: Gateway, media: MediaServer, gemini_fake: FakeGemini) -> None:
    with _client(allowing) as client:
        client.chat.completions.create(model="gemini-2.5-flash", messages=_look_at(media.url + "/moved"))
    assert [r.path for r in media.requests] == ["/moved", "/cat.png"]
    part = gemini_fake.generate_requests()[0].json()["contents"][0]["parts"][1]
    assert part == {"inlineData": {"mimeType": "image/png", "data": PNG_B64}}


def test_an_http_image_goes_to_anthropic_as_base64(allowing: Gateway, media: MediaServer,
                                                   anthropic_fake: FakeAnthropic) -> None:
    """Anthropic reads https URLs itself, not http ones."""
    with _client(allowing) as client:
        client.chat.completions.create(model="claude-sonnet-4-20250514", messages=_look_at(media.url + "/cat.png"))
    [sent] = anthropic_fake.message_requests()
    assert sent.json()["messages"][0]["content"][1] == {
        "type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}}


def test_an_anthropic_client_url_image_is_inlined_for_gemini(allowing: Gateway, media: MediaServer,
                                                             gemini_fake: FakeGemini) -> None:
    with anthropic.Anthropic(api_key=KEY, base_url=allowing.url, max_retries=0, timeout=30) as client:
        message = client.messages.create(model="gemini-2.5-flash", max_tokens=50, messages=[
            {"role": "user", "content": [{"type": "image", "source": {"type": "url", "url": media.url + "/cat.png"}},
                                         {"type": "text", "text": "Breed?"}]}])
    assert message.content[0].type == "text" and message.content[0].text == "Bonjour!"
    parts = gemini_fake.generate_requests()[0].json()["contents"][0]["parts"]
    assert parts == [{"inlineData": {"mimeType": "image/png", "data": PNG_B64}}, {"text": "Breed?"}]


# --- refused ------------------------------------------------------------------------------------

def _refused(gateway: Gateway, url: str, code: str, gemini_fake: FakeGemini) -> dict[str, Any]:
    db = GatewayDB(gateway.database)
    rid = new_rid("media-bad")
    used = db.key_used("media")
    with httpx.Client(base_url=gateway.url, timeout=30) as http:
        response = http.post("/v1/chat/completions", json={"model": "gemini-2.5-flash", "messages": _look_at(url)},
                             headers={"Authorization": f"Bearer {KEY}", "X-Request-Id": rid})
    error = assert_openai_error(response, 400, code)
    assert error["type"] == "invalid_request_error"
    assert gemini_fake.requests == []  # nothing went upstream
    assert db.key_used("media") == used
    assert db.usage_rows(rid) == []  # refused before any upstream: no record (docs/billing.md)
    return error


def test_a_private_address_is_refused_by_default(default: Gateway, media: MediaServer,
                                                 gemini_fake: FakeGemini) -> None:
    _refused(default, media.url + "/cat.png", "media_url_not_allowed", gemini_fake)
    assert media.requests == []  # not even tried


def test_a_loopback_name_is_refused_by_default(default: Gateway, media: MediaServer,
                                              gemini_fake: FakeGemini) -> None:
    _refused(default, f"http://localhost:{media.port}/cat.png", "media_url_not_allowed", gemini_fake)
    assert media.requests == []


@pytest.mark.parametrize("host", [
    "127.1", "2130706433", "0x7f000001", "0177.0.0.1", "１２７.0.0.1", "[::ffff:7f00:1]", "[::1]", "LocalHost.",
])
def test_every_spelling_of_the_loopback_is_refused(default: Gateway, media: MediaServer, gemini_fake: FakeGemini,
                                                   host: str) -> None:
    """The OS reads these numeric forms as 127.0.0.1 (and yarl reads fullwidth digits as ASCII), and the
    client never asks the resolver about a literal: the check reads them as the connection would."""
    _refused(default, f"http://{host}:{media.port}/cat.png", "media_url_not_allowed", gemini_fake)
    assert media.requests == []


def test_a_redirect_to_a_private_address_is_refused(default: Gateway, media: MediaServer,
                                                    gemini_fake: FakeGemini) -> None:
    _refused(default, f"http://[::ffff:127.0.0.1]:{media.port}/moved", "media_url_not_allowed", gemini_fake)
    assert media.requests == []


def test_a_non_image_is_refused(allowing: Gateway, media: MediaServer, gemini_fake: FakeGemini) -> None:
    error = _refused(allowing, media.url + "/page.html", "media_type_not_allowed", gemini_fake)
    assert "text/html" in error["message"]


@pytest.mark.parametrize("path", ["/big.png", "/big-chunked.png"])
def test_an_image_over_the_size_limit_is_refused(allowing: Gateway, media: MediaServer, gemini_fake: FakeGemini,
                                                 path: str) -> None:
    error = _refused(allowing, media.url + path, "media_too_large", gemini_fake)
    assert str(MAX_BYTES) in error["message"]


def test_a_missing_image_is_refused(allowing: Gateway, media: MediaServer, gemini_fake: FakeGemini) -> None:
    error = _refused(allowing, media.url + "/gone.png", "media_fetch_failed", gemini_fake)
    assert "404" in error["message"]


def test_a_non_http_url_is_refused(allowing: Gateway, gemini_fake: FakeGemini) -> None:
    _refused(allowing, "ftp://example.org/cat.png", "media_fetch_failed", gemini_fake)


def test_a_refused_fetch_releases_the_reservation(default: Gateway, media: MediaServer,
                                                  gemini_fake: FakeGemini) -> None:
    with openai.OpenAI(api_key=SNUG, base_url=default.url + "/v1", max_retries=0, timeout=30) as client:
        for _ in range(2):
            with pytest.raises(openai.BadRequestError) as caught:
                client.chat.completions.create(model="gemini-2.5-flash", messages=_look_at(media.url + "/cat.png"))
            assert caught.value.code == "media_url_not_allowed"
        answer = client.chat.completions.create(model="gemini-2.5-flash", max_tokens=100,
                                                messages=[{"role": "user", "content": "hi"}])
    assert answer.choices[0].message.content == "Bonjour!"
    assert len(gemini_fake.generate_requests()) == 1
