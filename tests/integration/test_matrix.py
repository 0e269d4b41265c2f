"""Every client surface × every provider that has the ability, tensorzero-style: the official ``openai``,
``anthropic`` and ``google-genai`` SDKs (the columns, tests/matrix/columns.py) → one relaygate process →
each provider kind against its fake (the rows, tests/matrix/rows.py: OpenAI, Azure OpenAI, Anthropic,
Gemini, the built-in mock). Each pair runs plain text (whole and streamed), a tool call (whole and
streamed, the arguments in the pieces the upstream sent when both sides stream them), an image input, an
upstream 4xx relayed in the client's shape, a 5xx failed over to the next channel, every channel failing
and a stream cut reported. Each call checks the answer the SDK parsed, what reached the upstream (its
route, the channel's key in the provider's own header and never the client's), and the usage record
(tokens, exact cost, the key's spend). Same-dialect pairs pass the client's bytes through: the fake
receives exactly what the SDK sent. A new provider is a new row; nothing here changes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anthropic
import httpx
import openai
import orjson
import pytest
from google import genai
from google.genai import types

from relaygate.billing.tokenizer import count_text
from relaygate.core.chat import is_synthetic_call_id
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.clients import UPSTREAM_KEY, assert_no_secrets, new_rid, token_cost
from tests.fakes.fake_server import RecordedRequest
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import Gateway
from tests.matrix.columns import COLUMNS, KEY, QUESTION, Answer, AnthropicColumn, Column, OpenAIColumn, columns
from tests.matrix.rows import (
    ANTHROPIC,
    AZURE,
    ERRORS,
    FAULTS,
    GEMINI,
    IMAGE_IN,
    OPENAI,
    PNG,
    PROVIDERS,
    STREAM,
    TEXT,
    TOOL_STREAM,
    TOOLS,
    Fakes,
    Provider,
)

BETAS = "prompt-caching-2024-07-31,output-128k-2025-02-19"
REFUSAL = "Invalid value at 'messages[0]': this request is refused"


@pytest.fixture(scope="module")
def fakes(fake_upstream: FakeOpenAI, fake_anthropic_upstream: FakeAnthropic,
          fake_gemini_upstream: FakeGemini) -> Fakes:
    return Fakes(fake_upstream, fake_anthropic_upstream, fake_gemini_upstream)


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: type[Gateway], fakes: Fakes, tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    prices = {model: price for row in PROVIDERS for model in (row.model, row.failover_model, *row.model_map)
              for price in [row.price]}
    config = {
        "max_attempts": 3, "circuit_failures": 1000,  # the failover tests fail the flaky channels many times
        "channels": [channel for row in PROVIDERS for channel in row.channels(fakes)],
        "prices": {model: {"input": float(i), "output": float(o)} for model, (i, o) in prices.items()},
        "keys": [{"name": "matrix", "key": KEY, "quota_usd": 50}],
    }
    return module_gateway_factory(Path(tmp_path_factory.mktemp("matrix")), config).start()


@pytest.fixture(scope="module")
def db(gateway: Gateway) -> GatewayDB:
    return GatewayDB(gateway.database)


@pytest.fixture(scope="module")
def clients(gateway: Gateway) -> dict[str, Column]:
    """One SDK client per surface, shared by the module."""
    return columns(gateway)


@pytest.fixture(autouse=True)
def _fresh_fakes(fake: FakeOpenAI, anthropic_fake: FakeAnthropic, gemini_fake: FakeGemini) -> None:
    """Every test starts with the fakes' default behaviour and no recorded requests."""


def pairs(ability: str, *, modes: tuple[bool, ...] = (False,)) -> list[Any]:
    """(column, row[, stream]) for every column and every row with ``ability``."""
    cases = []
    for column in COLUMNS:
        for row in PROVIDERS:
            if ability not in row.abilities:
                continue
            for stream in modes:
                suffix = ("-stream" if stream else "-json") if len(modes) > 1 else ""
                values = (column, row, stream) if len(modes) > 1 else (column, row)
                cases.append(pytest.param(*values, id=f"{column}-{row.kind}{suffix}"))
    return cases


def text_modes() -> list[Any]:
    return [case for case in pairs(TEXT, modes=(False, True))
            if not case.values[2] or STREAM in case.values[1].abilities]


def the_request(fakes: Fakes, row: Provider) -> RecordedRequest | None:
    """The one request the row's fake received, on the row's channel, and none reached another fake or
    channel (None for a row answered in process)."""
    assert sum(len(f.requests) for f in fakes.all()) == (row.fake is not None)
    if row.fake is None:
        return None
    [sent] = row.requests(fakes)
    return sent


def assert_route_and_credentials(row: Provider, sent: RecordedRequest, model: str, stream: bool) -> None:
    """Where the provider's API takes the call, with the channel's key in its own header; the client's
    key nowhere."""
    assert (sent.path, sent.query) == row.route(row.channel, model, stream)
    row.credentials(sent.headers)
    assert "key" not in sent.query
    assert KEY not in str(sent.headers) and KEY.encode() not in sent.body


def assert_billed(db: GatewayDB, rid: str, *, column: Column, row: Provider, model: str, stream: bool,
                  tokens: tuple[int, int] | None, channel: str | None = None, attempts: int = 1) -> int:
    """The usage record: done, the surface, model and channel, the tokens (when known: else whatever was
    counted, more than none) and their exact cost."""
    record = db.usage(rid)
    assert (record["end_reason"], record["status"], record["usage_source"]) == ("done", 200, "upstream")
    assert (record["surface"], record["model"], record["stream"]) == (column.surface, model, int(stream))
    assert (record["channel_name"], record["attempts"]) == (channel or row.channel, attempts)
    counted = (record["input_tokens"], record["output_tokens"])
    assert counted == tokens if tokens is not None else min(counted) > 0
    assert record["cached_input_tokens"] == 0
    cost = token_cost(*counted, *row.price)
    assert record["cost_nano"] == cost > 0
    return cost


# --- plain text, whole and streamed -------------------------------------------------------------

@pytest.mark.parametrize(("column", "row", "stream"), text_modes())
def test_plain_text(clients: dict[str, Column], fakes: Fakes, db: GatewayDB, column: str, row: Provider,
                    stream: bool) -> None:
    client, rid = clients[column], new_rid(f"mx-{column[:2]}-{row.channel}")
    used = db.key_used("matrix")
    answer = client.text(row.model, stream=stream, rid=rid)
    tokens = row.tokens or (answer.input_tokens, answer.output_tokens)  # the mock counts; the client saw it
    assert answer == Answer(row.reply(row.model, QUESTION), client.finish, *tokens)
    sent = the_request(fakes, row)
    if sent is not None:
        assert_route_and_credentials(row, sent, row.model, stream)
        body = sent.json()
        if row.wire.name == "gemini":
            assert body["contents"] == [{"role": "user", "parts": [{"text": QUESTION}]}]
        else:
            assert body["model"] == row.model
            assert body.get("stream", False) is stream
            assert body["messages"][0]["role"] == "user"
    cost = assert_billed(db, rid, column=client, row=row, model=row.model, stream=stream, tokens=tokens)
    assert db.key_used("matrix") - used == cost


# --- tools: a call, whole and streamed ----------------------------------------------------------

@pytest.mark.parametrize(("column", "row", "stream"), pairs(TOOLS, modes=(False, True)))
def test_a_tool_call(clients: dict[str, Column], fakes: Fakes, db: GatewayDB, column: str, row: Provider,
                     stream: bool) -> None:
    client, rid = clients[column], new_rid(f"tool-{column[:2]}-{row.channel}")
    answer = client.tool_call(row.model, stream=stream, rid=rid)
    assert (answer.name, answer.arguments, answer.finish) == ("get_weather", row.tool_arguments, client.tool_finish)
    if row.tool_call_id is not None:
        assert answer.call_id == row.tool_call_id
    elif row.fake is None:
        assert answer.call_id  # the mock makes its own
    elif column == row.wire.name:
        assert answer.call_id == ""  # passed through as it came: without an id
    else:
        assert is_synthetic_call_id(answer.call_id)  # the gateway made one up
    if stream and client.streams_tool_arguments and TOOL_STREAM in row.abilities:
        assert answer.pieces == row.tool_pieces  # relayed piece by piece, not gathered
    sent = the_request(fakes, row)
    if sent is not None:
        assert_route_and_credentials(row, sent, row.model, stream)
        assert row.wire.tool_names(sent.json()) == ["get_weather"]
    assert_billed(db, rid, column=client, row=row, model=row.model, stream=stream, tokens=row.tool_tokens)


# --- an image in --------------------------------------------------------------------------------

# google-genai sends inline bytes in base64url (unpadded), which Google reads; the other APIs take only
# standard base64, so the Gemini dialect reads either into the standard form (dialects/gemini/parts.py).
@pytest.mark.parametrize(("column", "row"), pairs(IMAGE_IN))
def test_an_image_input(clients: dict[str, Column], fakes: Fakes, db: GatewayDB, column: str, row: Provider) -> None:
    client, rid = clients[column], new_rid(f"img-{column[:2]}-{row.channel}")
    answer = client.text(row.model, stream=False, rid=rid, image=True)
    assert answer.text == row.reply(row.model, QUESTION)
    sent = the_request(fakes, row)
    if sent is not None:
        assert_route_and_credentials(row, sent, row.model, False)
        parts = row.wire.user_parts(sent.json())
        assert [row.wire.image_of(part) for part in parts] == [None, ("image/png", PNG)]
        assert QUESTION in str(parts[0])
    assert_billed(db, rid, column=client, row=row, model=row.model, stream=False, tokens=row.tokens)


# --- an upstream 4xx, relayed in the client's shape ---------------------------------------------

@pytest.mark.parametrize(("column", "row"), pairs(ERRORS))
def test_an_upstream_refusal_is_relayed_in_the_clients_shape(clients: dict[str, Column], fakes: Fakes,
                                                             db: GatewayDB, column: str, row: Provider) -> None:
    row.behave(fakes, status=400, error_message=REFUSAL)
    rid = new_rid(f"rej-{column[:2]}-{row.channel}")
    used = db.key_used("matrix")
    failure = clients[column].refused(row.model, rid=rid)
    assert (failure.status, failure.message) == (400, REFUSAL)
    assert len(row.requests(fakes)) == 1  # a refusal is not retried elsewhere
    record = db.usage(rid)
    assert (record["end_reason"], record["status"], record["cost_nano"], record["attempts"]) == ("rejected", 400, 0, 1)
    assert db.key_used("matrix") == used


# --- faults: failed over, or reported -----------------------------------------------------------

@pytest.mark.parametrize(("column", "row", "stream"), pairs(FAULTS, modes=(False, True)))
def test_an_upstream_5xx_fails_over_to_the_next_channel(clients: dict[str, Column], fakes: Fakes, db: GatewayDB,
                                                        column: str, row: Provider, stream: bool) -> None:
    flaky, backup = f"{row.channel}-flaky", f"{row.channel}-backup"
    row.behave(fakes, flaky, status=503)
    client, rid = clients[column], new_rid(f"fo-{column[:2]}-{row.channel}")
    answer = client.text(row.failover_model, stream=stream, rid=rid)
    assert (answer.text, answer.finish) == (row.reply(row.failover_model, QUESTION), client.finish)
    assert (len(row.requests(fakes, flaky)), len(row.requests(fakes, backup))) == (1, 1)
    assert row.route(backup, row.failover_model, stream) == (row.requests(fakes, backup)[0].path,
                                                            row.requests(fakes, backup)[0].query)
    assert_billed(db, rid, column=client, row=row, model=row.failover_model, stream=stream, tokens=row.tokens,
                  channel=backup, attempts=2)


@pytest.mark.parametrize(("column", "row"), pairs(FAULTS))
def test_every_channel_failing_is_reported_in_the_clients_shape(clients: dict[str, Column], fakes: Fakes,
                                                                db: GatewayDB, column: str, row: Provider) -> None:
    for channel in (f"{row.channel}-flaky", f"{row.channel}-backup"):
        row.behave(fakes, channel, status=503, error_message=f"Backend at http://10.9.8.7:4000 ({UPSTREAM_KEY})")
    rid = new_rid(f"down-{column[:2]}-{row.channel}")
    failure = clients[column].refused(row.failover_model, rid=rid)
    assert failure.status == 502
    assert failure.code == "upstream_error"  # relaygate's code, in every surface's error
    assert_no_secrets(failure.message, "10.9.8.7")
    record = db.usage(rid)
    assert (record["end_reason"], record["attempts"], record["cost_nano"]) == ("upstream_error", 2, 0)


@pytest.mark.parametrize(("column", "row"), pairs(FAULTS))
def test_a_cut_stream_is_reported_and_billed_for_what_was_delivered(
        clients: dict[str, Column], fakes: Fakes, db: GatewayDB, column: str, row: Provider) -> None:
    row.behave(fakes, cut_after=2)
    rid = new_rid(f"cut-{column[:2]}-{row.channel}")
    used = db.key_used("matrix")
    delivered, failure = clients[column].cut(row.model, rid=rid)
    reply = row.reply(row.model, QUESTION)
    assert delivered and reply.startswith(delivered) and delivered != reply
    assert failure.code == "stream_cut"  # relaygate's code, in every surface's error
    record = db.wait_usage(rid)
    assert (record["end_reason"], record["status"]) == ("stream_cut", 200)
    assert record["output_tokens"] >= count_text(delivered, row.model) > 0
    assert record["cost_nano"] == token_cost(record["input_tokens"], record["output_tokens"], *row.price)
    assert db.key_used("matrix") - used == record["cost_nano"]


# --- the async SDKs -----------------------------------------------------------------------------

# google-genai's async client runs on aiohttp when it is installed, subclassing its session (which aiohttp
# deprecates); that is the SDK's business, not the gateway's.
@pytest.mark.filterwarnings("ignore:Inheritance class Aiohttp:DeprecationWarning")
@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
@pytest.mark.parametrize(("column", "row"), [("openai", ANTHROPIC), ("anthropic", GEMINI), ("gemini", OPENAI),
                                             ("gemini", AZURE)], ids=lambda v: getattr(v, "kind", v))
async def test_async_sdks_across_dialects(gateway: Gateway, clients: dict[str, Column], db: GatewayDB, column: str,
                                          row: Provider, stream: bool) -> None:
    rid = new_rid("mx-async")
    model, headers = row.model, {"X-Request-Id": rid}
    if column == "openai":
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
    elif column == "anthropic":
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
            assert (message.usage.input_tokens, message.usage.output_tokens) == row.tokens
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
    assert (text, finish) == (row.reply(model, QUESTION), clients[column].finish)
    assert_billed(db, rid, column=clients[column], row=row, model=model, stream=stream, tokens=row.tokens)


# --- passthrough pairs are byte-faithful --------------------------------------------------------

class Sent:
    """The bodies an SDK put on the wire (an httpx request hook), to compare with what the upstream got."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    def hook(self, request: Any) -> None:  # an httpx (or, for the anthropic SDK, httpx2) request
        self.bodies.append(request.read())

    @property
    def last(self) -> bytes:
        return self.bodies[-1]


def openai_client(gateway: Gateway, sent: Sent) -> openai.OpenAI:
    return openai.OpenAI(api_key=KEY, base_url=gateway.url + "/v1", max_retries=0,
                         http_client=openai.DefaultHttpxClient(timeout=30, event_hooks={"request": [sent.hook]}))


def anthropic_client(gateway: Gateway, sent: Sent) -> anthropic.Anthropic:
    http = anthropic.DefaultHttpxClient(timeout=30, event_hooks={"request": [sent.hook]})
    return anthropic.Anthropic(api_key=KEY, base_url=gateway.url, max_retries=0, http_client=http)


def genai_client(gateway: Gateway, sent: Sent | None = None) -> genai.Client:
    client_args: dict[str, Any] = {"event_hooks": {"request": [sent.hook]}} if sent else {}
    return genai.Client(api_key=KEY, http_options=types.HttpOptions(
        base_url=gateway.url, timeout=30_000, client_args=client_args))


@pytest.mark.parametrize("row", [OPENAI, AZURE], ids=["openai", "azure"])
def test_openai_passthrough_sends_the_sdk_bytes_untouched(gateway: Gateway, clients: dict[str, Column],
                                                          fakes: Fakes, db: GatewayDB, row: Provider) -> None:
    sent = Sent()
    rid = new_rid("pt-oa")
    with openai_client(gateway, sent) as client:
        client.chat.completions.create(
            model=row.model, messages=[{"role": "system", "content": "Terse."}, {"role": "user", "content": QUESTION}],
            temperature=0.0, seed=3, max_completion_tokens=50, user="u-1", extra_headers={"X-Request-Id": rid},
            extra_body={"x_vendor": {"keep": [1, 2.5, None]}})
    received = the_request(fakes, row)
    assert received is not None and received.body == sent.last
    assert_route_and_credentials(row, received, row.model, False)
    assert_billed(db, rid, column=clients["openai"], row=row, model=row.model, stream=False, tokens=row.tokens)


@pytest.mark.parametrize("row", [OPENAI, AZURE], ids=["openai", "azure"])
def test_openai_passthrough_stream_only_adds_include_usage(gateway: Gateway, fakes: Fakes, row: Provider) -> None:
    sent = Sent()
    with openai_client(gateway, sent) as client:
        chunks = list(client.chat.completions.create(model=row.model, messages=[{"role": "user", "content": QUESTION}],
                                                     stream=True, temperature=0.5))
    assert all(c.choices for c in chunks)  # the usage chunk the gateway asked for is not passed on
    received = the_request(fakes, row)
    assert received is not None
    got, original = received.json(), orjson.loads(sent.last)
    assert got.pop("stream_options") == {"include_usage": True}
    assert got == original and list(got) == list(original)


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_anthropic_passthrough_sends_the_sdk_bytes_and_the_beta_header(
        gateway: Gateway, clients: dict[str, Column], fakes: Fakes, db: GatewayDB, stream: bool) -> None:
    sent = Sent()
    rid = new_rid("pt-an")
    kwargs: Any = {
        "model": ANTHROPIC.model, "max_tokens": 300, "extra_body": {"temperature": 0.2, "top_k": 5},
        "system": [{"type": "text", "text": "Answer tersely.", "cache_control": {"type": "ephemeral"}}],
        "metadata": {"user_id": "u-4821"}, "stop_sequences": ["\n\nHuman:"],
        "messages": [{"role": "user", "content": [{"type": "text", "text": QUESTION}]}],
        "betas": BETAS.split(","), "extra_headers": {"X-Request-Id": rid}}
    with anthropic_client(gateway, sent) as client:
        if stream:
            with client.beta.messages.stream(**kwargs) as events:
                assert "".join(events.text_stream) == ANTHROPIC.reply(ANTHROPIC.model, QUESTION)
        else:
            block = client.beta.messages.create(**kwargs).content[0]
            assert block.type == "text" and block.text == ANTHROPIC.reply(ANTHROPIC.model, QUESTION)
    received = the_request(fakes, ANTHROPIC)
    assert received is not None and received.body == sent.last
    assert received.headers["anthropic-beta"] == BETAS
    assert_route_and_credentials(ANTHROPIC, received, ANTHROPIC.model, stream)
    assert_billed(db, rid, column=clients["anthropic"], row=ANTHROPIC, model=ANTHROPIC.model, stream=stream,
                  tokens=ANTHROPIC.tokens)


def test_anthropic_passthrough_with_a_mapped_model_changes_only_the_model(gateway: Gateway, fakes: Fakes,
                                                                          db: GatewayDB) -> None:
    sent = Sent()
    rid = new_rid("pt-map")
    with anthropic_client(gateway, sent) as client:
        message = client.messages.create(model="claude-alias", max_tokens=40, extra_body={"temperature": 0.0},
                                         messages=[{"role": "user", "content": QUESTION}],
                                         extra_headers={"X-Request-Id": rid})
    assert message.model == "claude-sonnet-4-20250514"  # the upstream's answer passes through untouched
    received = the_request(fakes, ANTHROPIC)
    assert received is not None
    got, original = received.json(), orjson.loads(sent.last)
    assert (original["model"], got["model"]) == ("claude-alias", "claude-sonnet-4-20250514")
    assert list(got) == list(original)
    assert {k: v for k, v in got.items() if k != "model"} == {k: v for k, v in original.items() if k != "model"}
    record = db.usage(rid)
    assert (record["model"], record["upstream_model"]) == ("claude-alias", "claude-sonnet-4-20250514")
    assert record["cost_nano"] == token_cost(11, 3, "3", "15")


@pytest.mark.parametrize("stream", [False, True], ids=["json", "stream"])
def test_gemini_passthrough_sends_the_sdk_bytes_untouched(gateway: Gateway, fakes: Fakes, db: GatewayDB,
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
    assert text == GEMINI.reply(GEMINI.model, QUESTION)
    received = the_request(fakes, GEMINI)
    assert received is not None and received.body == sent.last
    assert_route_and_credentials(GEMINI, received, "gemini-2.5-flash", stream)  # the mapped model, in the URL
    record = db.usage(rid)
    assert (record["model"], record["upstream_model"], record["end_reason"]) == (
        "gemini-alias", "gemini-2.5-flash", "done")
    assert record["cost_nano"] == token_cost(11, 3, "0.3", "2.5")


def test_translated_calls_carry_only_the_channel_credential(clients: dict[str, Column], fakes: Fakes) -> None:
    """The client's key (a Bearer token, an x-api-key) stays at the gateway; an Anthropic client's beta
    flags mean nothing to a Gemini upstream and are not sent there."""
    oa, an = clients["openai"], clients["anthropic"]
    assert isinstance(oa, OpenAIColumn) and isinstance(an, AnthropicColumn)
    oa.client.chat.completions.create(model=ANTHROPIC.model, messages=[{"role": "user", "content": "x"}])
    an.client.messages.create(model=GEMINI.model, max_tokens=20, messages=[{"role": "user", "content": "x"}],
                              extra_headers={"anthropic-beta": BETAS})
    [to_anthropic] = ANTHROPIC.requests(fakes)
    [to_gemini] = GEMINI.requests(fakes)
    assert_route_and_credentials(ANTHROPIC, to_anthropic, ANTHROPIC.model, False)
    assert_route_and_credentials(GEMINI, to_gemini, GEMINI.model, False)
    assert not {"anthropic-beta", "anthropic-version", "x-api-key"} & set(to_gemini.headers)


def test_azure_refuses_a_call_without_its_api_version_or_key(fakes: Fakes) -> None:
    """The fake holds Azure's own line, so the Azure row proves the channel sent Azure's URL and header."""
    url = f"{fakes.openai.channel_url('az-probe')}/openai/deployments/prod-gpt41/chat/completions"
    body = {"model": "gpt-4.1", "messages": [{"role": "user", "content": "x"}]}
    assert httpx.post(url, json=body, headers={"api-key": UPSTREAM_KEY}).status_code == 404
    assert httpx.post(url, json=body, params={"api-version": "2024-10-21"}).status_code == 401
    assert httpx.post(url, json=body, params={"api-version": "2024-10-21"},
                      headers={"api-key": UPSTREAM_KEY}).status_code == 200
