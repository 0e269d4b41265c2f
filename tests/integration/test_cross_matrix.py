"""Every client dialect against every channel dialect: the official ``openai``, ``anthropic`` and
``google-genai`` SDKs → a relaygate process → the fake OpenAI, Anthropic and Gemini upstreams, for plain
text, whole and streamed. Each call checks the answer the SDK parsed (text, finish reason, usage), what
reached the upstream (the channel's key in the provider's header, never the client's), and the usage
record (tokens, exact cost, the key's spend). Same-dialect pairs pass the client's bytes through: the
fake receives exactly what the SDK sent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anthropic
import openai
import orjson
import pytest
from google import genai
from google.genai import types

from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.clients import UPSTREAM_KEY, new_rid, token_cost
from tests.fakes.fake_server import RecordedRequest
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import Gateway

KEY = "sk-cross-matrix-key-0001"
# One model per channel dialect; the price is the client's model name's.
MODELS = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-20250514", "gemini": "gemini-2.5-flash"}
PRICES = {"gpt-4o": ("2.5", "10"), "claude-sonnet-4-20250514": ("3", "15"), "gemini-2.5-flash": ("0.3", "2.5")}
CHANNEL_NAMES = {"openai": "oa", "anthropic": "an", "gemini": "gm"}
SURFACES = {"openai": "openai.chat", "anthropic": "anthropic.messages", "gemini": "gemini.generate"}
FINISH = {"openai": "stop", "anthropic": "end_turn", "gemini": "STOP"}
DIALECTS = ("openai", "anthropic", "gemini")
# Every fake's default reply: "Bon" "jour" "!", 11 prompt tokens and one output token per piece.
REPLY = "Bonjour!"
PROMPT_TOKENS, OUTPUT_TOKENS = 11, 3
QUESTION = "Say bonjour"
BETAS = "prompt-caching-2024-07-31,output-128k-2025-02-19"


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: type[Gateway], fake_upstream: FakeOpenAI, fake_anthropic_upstream: FakeAnthropic,
            fake_gemini_upstream: FakeGemini, tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    config = {
        "channels": [
            {"name": "oa", "type": "openai", "base_url": fake_upstream.channel_url("oa"), "api_key": UPSTREAM_KEY,
             "models": ["gpt-4o"]},
            {"name": "an", "type": "anthropic", "base_url": fake_anthropic_upstream.channel_url("an"),
             "api_key": UPSTREAM_KEY, "models": ["claude-sonnet-4-20250514"],
             "model_map": {"claude-alias": "claude-sonnet-4-20250514"}},
            {"name": "gm", "type": "gemini", "base_url": fake_gemini_upstream.channel_url("gm"),
             "api_key": UPSTREAM_KEY, "models": ["gemini-2.5-flash"],
             "model_map": {"gemini-alias": "gemini-2.5-flash"}},
        ],
        "prices": {model: {"input": float(i), "output": float(o)} for model, (i, o) in PRICES.items()}
        | {"claude-alias": {"input": 3, "output": 15}, "gemini-alias": {"input": 0.3, "output": 2.5}},
        "keys": [{"name": "matrix", "key": KEY, "quota_usd": 50}],
    }
    return module_gateway_factory(Path(tmp_path_factory.mktemp("cross-matrix")), config).start()


@pytest.fixture(scope="module")
def db(gateway: Gateway) -> GatewayDB:
    return GatewayDB(gateway.database)


@pytest.fixture(autouse=True)
def _fresh_fakes(fake: FakeOpenAI, anthropic_fake: FakeAnthropic, gemini_fake: FakeGemini) -> None:
    """Every test starts with the fakes' default behaviour and no recorded requests."""


class Sent:
    """The bodies an SDK put on the wire (an httpx request hook), to compare with what the upstream got."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def hook(self, request: Any) -> None:  # an httpx (or, for the anthropic SDK, httpx2) request
        self.bodies.append(request.read())

    @property
    def last(self) -> bytes:
        return self.bodies[-1]


def openai_client(gateway: Gateway, sent: Sent | None = None) -> openai.OpenAI:
    hooks = {"request": [sent.hook]} if sent else {}
    return openai.OpenAI(api_key=KEY, base_url=gateway.url + "/v1", max_retries=0,
                         http_client=openai.DefaultHttpxClient(timeout=30, event_hooks=hooks))


def anthropic_client(gateway: Gateway, sent: Sent | None = None) -> anthropic.Anthropic:
    hooks = {"request": [sent.hook]} if sent else {}
    return anthropic.Anthropic(api_key=KEY, base_url=gateway.url, max_retries=0,
                               http_client=anthropic.DefaultHttpxClient(timeout=30, event_hooks=hooks))


def genai_client(gateway: Gateway, sent: Sent | None = None) -> genai.Client:
    client_args: dict[str, Any] = {"event_hooks": {"request": [sent.hook]}} if sent else {}
    return genai.Client(api_key=KEY, http_options=types.HttpOptions(
        base_url=gateway.url, timeout=30_000, client_args=client_args))


@dataclass
class Answer:
    text: str
    finish: str
    input_tokens: int
    output_tokens: int


def _ask_openai(gateway: Gateway, model: str, stream: bool, rid: str, sent: Sent | None) -> Answer:
    with openai_client(gateway, sent) as client:
        headers = {"X-Request-Id": rid}
        messages: Any = [{"role": "user", "content": QUESTION}]
        if not stream:
            completion = client.chat.completions.create(model=model, messages=messages, extra_headers=headers)
            assert completion.usage is not None
            choice = completion.choices[0]
            return Answer(choice.message.content or "", choice.finish_reason, completion.usage.prompt_tokens,
                          completion.usage.completion_tokens)
        chunks = list(client.chat.completions.create(model=model, messages=messages, stream=True,
                                                     stream_options={"include_usage": True}, extra_headers=headers))
    *content, usage_chunk = chunks
    assert not usage_chunk.choices and usage_chunk.usage is not None
    assert all(c.model == model for c in chunks)
    finish = content[-1].choices[0].finish_reason
    assert finish is not None
    return Answer("".join(c.choices[0].delta.content or "" for c in content), finish,
                  usage_chunk.usage.prompt_tokens, usage_chunk.usage.completion_tokens)


def _ask_anthropic(gateway: Gateway, model: str, stream: bool, rid: str, sent: Sent | None) -> Answer:
    with anthropic_client(gateway, sent) as client:
        kwargs: Any = {"model": model, "max_tokens": 256, "messages": [{"role": "user", "content": QUESTION}],
                       "extra_headers": {"X-Request-Id": rid}}
        if stream:
            with client.messages.stream(**kwargs) as events:
                text = "".join(events.text_stream)
                message = events.get_final_message()
            assert message.content[0].type == "text" and message.content[0].text == text
        else:
            message = client.messages.create(**kwargs)
            assert len(message.content) == 1 and message.content[0].type == "text"
            text = message.content[0].text
    assert message.model == model and message.role == "assistant"
    return Answer(text, str(message.stop_reason), message.usage.input_tokens, message.usage.output_tokens)


def _ask_gemini(gateway: Gateway, model: str, stream: bool, rid: str, sent: Sent | None) -> Answer:
    client = genai_client(gateway, sent)
    config = types.GenerateContentConfig(http_options=types.HttpOptions(headers={"X-Request-Id": rid}))
    if stream:
        chunks = list(client.models.generate_content_stream(model=model, contents=QUESTION, config=config))
        text = "".join(part.text or "" for c in chunks for cand in c.candidates or []
                       for part in (cand.content.parts if cand.content else None) or [])
        last = chunks[-1]
        assert all(c.candidates and c.candidates[0].finish_reason is None for c in chunks[:-1])
    else:
        last = client.models.generate_content(model=model, contents=QUESTION, config=config)
        text = last.text or ""
    assert last.candidates and last.candidates[0].finish_reason is not None
    assert last.usage_metadata is not None
    usage = last.usage_metadata
    assert usage.total_token_count == (usage.prompt_token_count or 0) + (usage.candidates_token_count or 0)
    return Answer(text, last.candidates[0].finish_reason.value, usage.prompt_token_count or 0,
                  usage.candidates_token_count or 0)


ASK: dict[str, Callable[[Gateway, str, bool, str, Sent | None], Answer]] = {
    "openai": _ask_openai, "anthropic": _ask_anthropic, "gemini": _ask_gemini}


def _upstream_request(channel: str, fake: FakeOpenAI, anthropic_fake: FakeAnthropic,
                      gemini_fake: FakeGemini) -> RecordedRequest | Any:
    """The one request the channel's fake received (and none reached the other fakes)."""
    got: dict[str, list[Any]] = {"openai": fake.chat_requests(), "anthropic": anthropic_fake.message_requests(),
                                 "gemini": gemini_fake.generate_requests()}
    assert {name: len(requests) for name, requests in got.items()} == {
        name: int(name == channel) for name in DIALECTS}
    return got[channel][0]


def _assert_channel_credentials(channel: str, sent: Any) -> None:
    """The channel's key in the provider's own header; the client's key nowhere."""
    headers: dict[str, str] = sent.headers
    if channel == "openai":
        assert headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    elif channel == "anthropic":
        assert headers["x-api-key"] == UPSTREAM_KEY
        assert headers["anthropic-version"] == "2023-06-01"
        assert "authorization" not in headers
    else:
        assert headers["x-goog-api-key"] == UPSTREAM_KEY
        assert "key" not in sent.query and "authorization" not in headers
    assert KEY not in str(headers) and KEY.encode() not in sent.body


def _assert_billed(db: GatewayDB, rid: str, *, client: str, channel: str, model: str, stream: bool) -> int:
    row = db.usage(rid)
    assert (row["end_reason"], row["status"], row["usage_source"]) == ("done", 200, "upstream")
    assert (row["surface"], row["model"], row["stream"]) == (SURFACES[client], model, int(stream))
    assert (row["channel_name"], row["attempts"]) == (CHANNEL_NAMES[channel], 1)
    assert (row["input_tokens"], row["output_tokens"], row["cached_input_tokens"]) == (PROMPT_TOKENS, OUTPUT_TOKENS, 0)
    cost = token_cost(PROMPT_TOKENS, OUTPUT_TOKENS, *PRICES[MODELS[channel]])
    assert row["cost_nano"] == cost > 0
    return cost


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize("channel", DIALECTS)
@pytest.mark.parametrize("client", DIALECTS)
def test_plain_text_reaches_every_channel_from_every_sdk(
        gateway: Gateway, db: GatewayDB, fake: FakeOpenAI, anthropic_fake: FakeAnthropic, gemini_fake: FakeGemini,
        client: str, channel: str, stream: bool) -> None:
    rid = new_rid(f"mx-{client[:2]}-{channel[:2]}")
    model = MODELS[channel]
    used = db.key_used("matrix")
    answer = ASK[client](gateway, model, stream, rid, None)
    assert answer == Answer(REPLY, FINISH[client], PROMPT_TOKENS, OUTPUT_TOKENS)
    sent = _upstream_request(channel, fake, anthropic_fake, gemini_fake)
    _assert_channel_credentials(channel, sent)
    body = sent.json()
    if channel == "gemini":
        action = ":streamGenerateContent" if stream else ":generateContent"
        assert sent.path == f"/gm/v1beta/models/{model}{action}"
        assert sent.query == ({"alt": "sse"} if stream else {})
        assert body["contents"] == [{"role": "user", "parts": [{"text": QUESTION}]}]
    else:
        assert body["model"] == model
        assert body.get("stream", False) is stream
        assert body["messages"][0]["role"] == "user"
    cost = _assert_billed(db, rid, client=client, channel=channel, model=model, stream=stream)
    assert db.key_used("matrix") - used == cost


# google-genai's async client runs on aiohttp when it is installed, subclassing its session (which aiohttp
# deprecates); that is the SDK's business, not the gateway's.
@pytest.mark.filterwarnings("ignore:Inheritance class Aiohttp:DeprecationWarning")
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("client", "channel"), [("openai", "anthropic"), ("anthropic", "gemini"),
                                                 ("gemini", "openai")])
async def test_async_sdks_across_dialects(gateway: Gateway, db: GatewayDB, client: str, channel: str,
                                          stream: bool) -> None:
    rid = new_rid("mx-async")
    model = MODELS[channel]
    headers = {"X-Request-Id": rid}
    if client == "openai":
        async with openai.AsyncOpenAI(api_key=KEY, base_url=gateway.url + "/v1", max_retries=0, timeout=30) as oa:
            if stream:
                chunks = [c async for c in await oa.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": QUESTION}], stream=True, extra_headers=headers)]
                text = "".join(c.choices[0].delta.content or "" for c in chunks)
                finish = str(chunks[-1].choices[0].finish_reason)
            else:
                completion = await oa.chat.completions.create(
                    model=model, messages=[{"role": "user", "content": QUESTION}], extra_headers=headers)
                text, finish = completion.choices[0].message.content or "", completion.choices[0].finish_reason
    elif client == "anthropic":
        async with anthropic.AsyncAnthropic(api_key=KEY, base_url=gateway.url, max_retries=0, timeout=30) as an:
            kwargs: Any = {"model": model, "max_tokens": 64, "messages": [{"role": "user", "content": QUESTION}],
                           "extra_headers": headers}
            if stream:
                async with an.messages.stream(**kwargs) as events:
                    text = "".join([piece async for piece in events.text_stream])
                    message = await events.get_final_message()
            else:
                message = await an.messages.create(**kwargs)
                text = message.content[0].text if message.content[0].type == "text" else ""
            finish = str(message.stop_reason)
            assert (message.usage.input_tokens, message.usage.output_tokens) == (PROMPT_TOKENS, OUTPUT_TOKENS)
    else:
        gm = genai_client(gateway)
        config = types.GenerateContentConfig(http_options=types.HttpOptions(headers=headers))
        if stream:
            chunks_g = [c async for c in await gm.aio.models.generate_content_stream(
                model=model, contents=QUESTION, config=config)]
            text = "".join(c.text or "" for c in chunks_g)
            last = chunks_g[-1]
        else:
            last = await gm.aio.models.generate_content(model=model, contents=QUESTION, config=config)
            text = last.text or ""
        assert last.candidates and last.candidates[0].finish_reason is not None
        finish = last.candidates[0].finish_reason.value
        await gm.aio.aclose()
    assert (text, finish) == (REPLY, FINISH[client])
    _assert_billed(db, rid, client=client, channel=channel, model=model, stream=stream)


# --- passthrough pairs are byte-faithful --------------------------------------------------------

def test_openai_passthrough_sends_the_sdk_bytes_untouched(gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    sent = Sent()
    rid = new_rid("pt-oa")
    with openai_client(gateway, sent) as client:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "system", "content": "Terse."}, {"role": "user", "content": QUESTION}],
            temperature=0.0, seed=3, max_completion_tokens=50, user="u-1", extra_headers={"X-Request-Id": rid},
            extra_body={"x_vendor": {"keep": [1, 2.5, None]}})
    [received] = fake.chat_requests()
    assert received.body == sent.last
    _assert_channel_credentials("openai", received)
    _assert_billed(db, rid, client="openai", channel="openai", model="gpt-4o", stream=False)


def test_openai_passthrough_stream_only_adds_include_usage(gateway: Gateway, fake: FakeOpenAI) -> None:
    sent = Sent()
    with openai_client(gateway, sent) as client:
        chunks = list(client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}],
                                                     stream=True, temperature=0.5))
    assert all(c.choices for c in chunks)  # the usage chunk the gateway asked for is not passed on
    [received] = fake.chat_requests()
    got, original = received.json(), orjson.loads(sent.last)
    assert got.pop("stream_options") == {"include_usage": True}
    assert got == original and list(got) == list(original)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_anthropic_passthrough_sends_the_sdk_bytes_and_the_beta_header(
        gateway: Gateway, anthropic_fake: FakeAnthropic, db: GatewayDB, stream: bool) -> None:
    sent = Sent()
    rid = new_rid("pt-an")
    kwargs: Any = {
        "model": "claude-sonnet-4-20250514", "max_tokens": 300, "extra_body": {"temperature": 0.2, "top_k": 5},
        "system": [{"type": "text", "text": "Answer tersely.", "cache_control": {"type": "ephemeral"}}],
        "metadata": {"user_id": "u-4821"}, "stop_sequences": ["\n\nHuman:"],
        "messages": [{"role": "user", "content": [{"type": "text", "text": QUESTION}]}],
        "betas": BETAS.split(","), "extra_headers": {"X-Request-Id": rid}}
    with anthropic_client(gateway, sent) as client:
        if stream:
            with client.beta.messages.stream(**kwargs) as events:
                assert "".join(events.text_stream) == REPLY
        else:
            block = client.beta.messages.create(**kwargs).content[0]
            assert block.type == "text" and block.text == REPLY
    [received] = anthropic_fake.message_requests()
    assert received.body == sent.last
    assert received.headers["anthropic-beta"] == BETAS
    _assert_channel_credentials("anthropic", received)
    _assert_billed(db, rid, client="anthropic", channel="anthropic", model="claude-sonnet-4-20250514", stream=stream)


def test_anthropic_passthrough_with_a_mapped_model_changes_only_the_model(
        gateway: Gateway, anthropic_fake: FakeAnthropic, db: GatewayDB) -> None:
    sent = Sent()
    rid = new_rid("pt-map")
    with anthropic_client(gateway, sent) as client:
        message = client.messages.create(model="claude-alias", max_tokens=40, extra_body={"temperature": 0.0},
                                         messages=[{"role": "user", "content": QUESTION}],
                                         extra_headers={"X-Request-Id": rid})
    assert message.model == "claude-sonnet-4-20250514"  # the upstream's answer passes through untouched
    [received] = anthropic_fake.message_requests()
    got, original = received.json(), orjson.loads(sent.last)
    assert (original["model"], got["model"]) == ("claude-alias", "claude-sonnet-4-20250514")
    assert list(got) == list(original)
    assert {k: v for k, v in got.items() if k != "model"} == {k: v for k, v in original.items() if k != "model"}
    row = db.usage(rid)
    assert (row["model"], row["upstream_model"]) == ("claude-alias", "claude-sonnet-4-20250514")
    assert row["cost_nano"] == token_cost(PROMPT_TOKENS, OUTPUT_TOKENS, "3", "15")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_gemini_passthrough_sends_the_sdk_bytes_untouched(gateway: Gateway, gemini_fake: FakeGemini, db: GatewayDB,
                                                          stream: bool) -> None:
    sent = Sent()
    rid = new_rid("pt-gm")
    client = genai_client(gateway, sent)
    config = types.GenerateContentConfig(
        system_instruction="Answer tersely.", temperature=0.0, top_k=4, max_output_tokens=50, stop_sequences=["END"],
        safety_settings=[types.SafetySetting(category=types.HarmCategory.HARM_CATEGORY_HARASSMENT,
                                             threshold=types.HarmBlockThreshold.BLOCK_ONLY_HIGH)],
        http_options=types.HttpOptions(headers={"X-Request-Id": rid}))
    if stream:
        text = "".join(c.text or "" for c in client.models.generate_content_stream(
            model="gemini-alias", contents=QUESTION, config=config))
    else:
        text = client.models.generate_content(model="gemini-alias", contents=QUESTION, config=config).text or ""
    assert text == REPLY
    [received] = gemini_fake.generate_requests()
    assert received.body == sent.last
    action = ":streamGenerateContent" if stream else ":generateContent"
    assert received.path == f"/gm/v1beta/models/gemini-2.5-flash{action}"  # the mapped model, in the URL
    _assert_channel_credentials("gemini", received)
    row = db.usage(rid)
    assert (row["model"], row["upstream_model"], row["end_reason"]) == ("gemini-alias", "gemini-2.5-flash", "done")
    assert row["cost_nano"] == token_cost(PROMPT_TOKENS, OUTPUT_TOKENS, "0.3", "2.5")


def test_translated_calls_carry_only_the_channel_credential(
        gateway: Gateway, anthropic_fake: FakeAnthropic, gemini_fake: FakeGemini) -> None:
    """The client's key (a Bearer token, an x-api-key) stays at the gateway; an Anthropic client's beta
    flags mean nothing to a Gemini upstream and are not sent there."""
    with openai_client(gateway) as client:
        client.chat.completions.create(model="claude-sonnet-4-20250514", messages=[{"role": "user", "content": "x"}])
    with anthropic_client(gateway) as an:
        an.messages.create(model="gemini-2.5-flash", max_tokens=20, messages=[{"role": "user", "content": "x"}],
                           extra_headers={"anthropic-beta": BETAS})
    [to_anthropic] = anthropic_fake.message_requests()
    [to_gemini] = gemini_fake.generate_requests()
    _assert_channel_credentials("anthropic", to_anthropic)
    _assert_channel_credentials("gemini", to_gemini)
    assert not {"anthropic-beta", "anthropic-version", "x-api-key"} & set(to_gemini.headers)
