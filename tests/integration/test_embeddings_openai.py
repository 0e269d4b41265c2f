"""``POST /v1/embeddings`` end to end: the official ``openai`` SDK → a relaygate process → the fake OpenAI
and Gemini upstreams and the mock, with every call's usage record read back from the gateway's database."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import orjson
import pytest

from relaygate.billing.tokenizer import count_text
from tests.fakes.clients import UPSTREAM_KEY, assert_openai_error, new_rid, raw, sdk
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.usage_db import GatewayDB
from tests.fakes.vectors import as_float32, fake_vector, from_base64
from tests.helpers.embeddings import FULL, LIMITED, PER_CALL_NANO, TINY, config, input_cost
from tests.helpers.gateway import Gateway

TEXTS = ["The food was delicious", "and the waiter was kind"]
FAKE_PROMPT_TOKENS = 11  # the fake OpenAI upstream's usage.prompt_tokens


@pytest.fixture(scope="module")
def gemini_upstream() -> Iterator[FakeGemini]:
    with FakeGemini(api_key=UPSTREAM_KEY) as fake:
        yield fake


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: type[Gateway], fake_upstream: FakeOpenAI, gemini_upstream: FakeGemini,
            tmp_path_factory: pytest.TempPathFactory) -> Gateway:
    home = Path(tmp_path_factory.mktemp("embeddings-openai"))
    return module_gateway_factory(home, config(fake_upstream, gemini_upstream)).start()


@pytest.fixture
def gem(gemini_upstream: FakeGemini) -> FakeGemini:
    gemini_upstream.reset()
    return gemini_upstream


@pytest.fixture(autouse=True)
def _fresh_fakes(fake: FakeOpenAI, gem: FakeGemini) -> None:
    """Every test starts with the fakes' default behaviour and no recorded requests."""


@pytest.fixture(scope="module")
def db(gateway: Gateway) -> GatewayDB:
    return GatewayDB(gateway.database)


@pytest.fixture
def client(gateway: Gateway) -> Iterator[openai.OpenAI]:
    with sdk(gateway, FULL) as c:
        yield c


def _record(db: GatewayDB, rid: str, *, model: str, channel: str, tokens: int, source: str) -> dict[str, Any]:
    row = db.usage(rid)
    assert (row["surface"], row["end_reason"], row["status"], row["stream"]) == ("openai.embeddings", "done", 200, 0)
    assert (row["model"], row["channel_name"], row["attempts"]) == (model, channel, 1)
    assert (row["input_tokens"], row["output_tokens"], row["usage_source"]) == (tokens, 0, source)
    assert row["cost_nano"] == input_cost(tokens, model)
    return row


# --- OpenAI channels: passthrough -------------------------------------------------------------------

def test_float_vectors_pass_through_and_bill_the_upstream_usage(
        client: openai.OpenAI, fake: FakeOpenAI, db: GatewayDB) -> None:
    rid = new_rid()
    used = db.key_used("full")
    result = client.embeddings.create(model="text-embedding-3-small", input=TEXTS, encoding_format="float",
                                      extra_headers={"X-Request-Id": rid})
    assert [d.embedding for d in result.data] == [fake_vector(t) for t in TEXTS]
    assert [d.index for d in result.data] == [0, 1]
    assert result.usage.prompt_tokens == result.usage.total_tokens == FAKE_PROMPT_TOKENS
    [sent] = fake.embeddings_requests()
    assert (sent.prefix, sent.path) == ("oa", "/oa/v1/embeddings")
    assert sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert sent.json() == {"model": "text-embedding-3-small", "input": TEXTS, "encoding_format": "float"}
    row = _record(db, rid, model="text-embedding-3-small", channel="oa", tokens=FAKE_PROMPT_TOKENS, source="upstream")
    assert row["cost_nano"] == 220  # 11 tokens at USD 0.02 per 1M
    assert db.key_used("full") - used == 220


def test_the_sdk_default_base64_passes_through_and_decodes_to_float32(
        client: openai.OpenAI, fake: FakeOpenAI, db: GatewayDB) -> None:
    rid = new_rid()
    result = client.embeddings.create(model="text-embedding-3-small", input="hello", dimensions=5,
                                      extra_headers={"X-Request-Id": rid})
    assert result.data[0].embedding == as_float32(fake_vector("hello", 5))
    [sent] = fake.embeddings_requests()
    assert sent.json()["encoding_format"] == "base64" and sent.json()["dimensions"] == 5
    _record(db, rid, model="text-embedding-3-small", channel="oa", tokens=FAKE_PROMPT_TOKENS, source="upstream")


def test_the_clients_bytes_go_upstream_untouched(gateway: Gateway, fake: FakeOpenAI) -> None:
    body = b'{"model":  "text-embedding-3-small", "input": [[1, 2, 3]], "x_future": {"a": [1.50, null]}}'
    with raw(gateway, FULL) as http:
        response = http.post("/v1/embeddings", content=body, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.json()["data"][0]["embedding"] == fake_vector([1, 2, 3])  # token ids reached the upstream
    assert fake.embeddings_requests()[0].body == body


def test_a_mapped_model_is_the_only_edit(gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    rid = new_rid()
    body = {"model": "emb-mapped", "input": "hi", "user": "u-1", "x_future": True}
    with raw(gateway, FULL) as http:
        response = http.post("/v1/embeddings", json=body, headers={"X-Request-Id": rid})
    assert response.status_code == 200
    sent = fake.embeddings_requests()[0].json()
    assert sent == {**body, "model": "text-embedding-3-large"} and list(sent) == list(body)
    row = _record(db, rid, model="emb-mapped", channel="oa", tokens=FAKE_PROMPT_TOKENS, source="upstream")
    assert row["upstream_model"] == "text-embedding-3-large"


def test_without_upstream_usage_the_inputs_are_counted(gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    rid = new_rid()
    fake.set("oa", omit_usage=True)
    with raw(gateway, FULL) as http:
        response = http.post("/v1/embeddings", headers={"X-Request-Id": rid},
                             json={"model": "text-embedding-3-small", "input": TEXTS})
    assert response.status_code == 200
    assert "usage" not in response.json()  # passed through as the upstream sent it
    tokens = sum(count_text(t, "text-embedding-3-small") for t in TEXTS)
    _record(db, rid, model="text-embedding-3-small", channel="oa", tokens=tokens, source="estimated")


# --- Gemini channels: translation -------------------------------------------------------------------

@pytest.mark.parametrize("encoding", ["float", "base64"])
def test_a_gemini_channel_gets_batch_embed_contents(
        client: openai.OpenAI, gem: FakeGemini, db: GatewayDB, encoding: Any) -> None:
    rid = new_rid()
    result = client.embeddings.create(model="gem-mapped", input=TEXTS, dimensions=4, encoding_format=encoding,
                                      extra_headers={"X-Request-Id": rid})
    expected = [fake_vector(t, 4) for t in TEXTS]
    if encoding == "float":
        assert [d.embedding for d in result.data] == expected
    else:  # asked for explicitly, base64 reaches the caller as the string
        assert [from_base64(str(d.embedding)) for d in result.data] == [as_float32(v) for v in expected]
    tokens = sum(count_text(t, "gem-mapped") for t in TEXTS)
    assert result.usage.prompt_tokens == tokens and result.model == "gem-mapped"
    [sent] = gem.embed_requests()
    assert sent.path == "/gm/v1beta/models/text-embedding-004:batchEmbedContents"
    assert sent.headers["x-goog-api-key"] == UPSTREAM_KEY and "authorization" not in sent.headers
    assert sent.json() == {"requests": [
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": t}]}, "outputDimensionality": 4}
        for t in TEXTS]}
    _record(db, rid, model="gem-mapped", channel="gm", tokens=tokens, source="estimated")


def test_token_ids_are_decoded_for_a_gemini_channel(client: openai.OpenAI, gem: FakeGemini, db: GatewayDB) -> None:
    rid = new_rid()
    tokens = [15339, 1917]  # "hello world" in cl100k_base, the vocabulary of text-embedding-* models
    result = client.embeddings.create(model="text-embedding-004", input=[tokens], encoding_format="float",
                                      extra_headers={"X-Request-Id": rid})
    assert result.data[0].embedding == fake_vector("hello world")
    assert gem.embed_requests()[0].json()["requests"][0]["content"] == {"parts": [{"text": "hello world"}]}
    _record(db, rid, model="text-embedding-004", channel="gm", tokens=2, source="estimated")


def test_a_gemini_refusal_reaches_the_openai_client_in_its_shape(gateway: Gateway, gem: FakeGemini,
                                                                 db: GatewayDB) -> None:
    rid = new_rid()
    gem.set("gm", status=400, error_message="Request contains an invalid argument.")
    with raw(gateway, FULL) as http:
        response = http.post("/v1/embeddings", json={"model": "text-embedding-004", "input": "x"},
                             headers={"X-Request-Id": rid})
    error = assert_openai_error(response, 400, "upstream_rejected")
    assert error["message"] == "Request contains an invalid argument."
    row = db.usage(rid)
    assert (row["end_reason"], row["status"], row["cost_nano"], row["attempts"]) == ("rejected", 400, 0, 1)


# --- the mock ---------------------------------------------------------------------------------------

def test_the_mock_answers_deterministic_unit_vectors_in_both_encodings(client: openai.OpenAI, db: GatewayDB) -> None:
    rid = new_rid()
    floats = client.embeddings.create(model="mock-embed", input=TEXTS, encoding_format="float", dimensions=64,
                                      extra_headers={"X-Request-Id": rid})
    packed = client.embeddings.create(model="mock-embed", input=list(reversed(TEXTS)), dimensions=64)
    vectors = [d.embedding for d in floats.data]
    assert [d.embedding for d in packed.data] == list(reversed(vectors))  # float32 values: base64 keeps them exactly
    assert all(len(v) == 64 and math.isclose(math.fsum(x * x for x in v), 1.0, rel_tol=1e-5) for v in vectors)
    assert vectors[0] != vectors[1]
    tokens = sum(count_text(t, "mock-embed") for t in TEXTS)
    assert floats.usage.prompt_tokens == tokens and floats.model == "mock-embed"
    _record(db, rid, model="mock-embed", channel="mock", tokens=tokens, source="upstream")
    default = client.embeddings.create(model="mock-embed", input="x")
    assert len(default.data[0].embedding) == 256


def test_the_gemini_speaking_mock_gives_the_same_vectors(client: openai.OpenAI, db: GatewayDB) -> None:
    rid = new_rid()
    gemini = client.embeddings.create(model="mock-gem-embed", input=TEXTS, dimensions=8, encoding_format="float",
                                      extra_headers={"X-Request-Id": rid})
    openai_format = client.embeddings.create(model="mock-embed", input=TEXTS, dimensions=8, encoding_format="float")
    assert [d.embedding for d in gemini.data] == [d.embedding for d in openai_format.data]
    _record(db, rid, model="mock-gem-embed", channel="mockgem", tokens=openai_format.usage.prompt_tokens,
            source="estimated")


def test_a_per_call_price_is_charged_once(client: openai.OpenAI, db: GatewayDB) -> None:
    rid = new_rid()
    client.embeddings.create(model="percall-embed", input=TEXTS, extra_headers={"X-Request-Id": rid})
    row = db.usage(rid)
    tokens = sum(count_text(t, "percall-embed") for t in TEXTS)
    assert (row["end_reason"], row["cost_nano"], row["input_tokens"]) == ("done", PER_CALL_NANO, tokens)


# --- routing ----------------------------------------------------------------------------------------

def test_a_model_only_anthropic_serves_is_refused(gateway: Gateway, db: GatewayDB) -> None:
    rid = new_rid()
    with raw(gateway, FULL) as http:
        response = http.post("/v1/embeddings", json={"model": "claude-only", "input": "x"},
                             headers={"X-Request-Id": rid})
    error = assert_openai_error(response, 400, "embeddings_not_supported")
    assert error["param"] == "model" and error["type"] == "invalid_request_error"
    assert db.usage_rows(rid) == []


def test_an_anthropic_channel_is_skipped_whatever_its_priority(client: openai.OpenAI, fake: FakeOpenAI,
                                                               db: GatewayDB) -> None:
    rid = new_rid()
    client.embeddings.create(model="shared-embed", input="x", extra_headers={"X-Request-Id": rid})
    _record(db, rid, model="shared-embed", channel="oa", tokens=FAKE_PROMPT_TOKENS, source="upstream")


def test_a_failing_channel_fails_over(client: openai.OpenAI, fake: FakeOpenAI, db: GatewayDB) -> None:
    rid = new_rid()
    fake.set("down", status=503)
    result = client.embeddings.create(model="failover-embed", input="x", encoding_format="float",
                                      extra_headers={"X-Request-Id": rid})
    assert result.data[0].embedding == fake_vector("x")
    assert [r.prefix for r in fake.embeddings_requests()] == ["down", "up"]
    row = db.usage(rid)
    assert (row["end_reason"], row["channel_name"], row["attempts"]) == ("done", "up", 2)
    assert row["cost_nano"] == input_cost(FAKE_PROMPT_TOKENS, "failover-embed")


def test_an_upstream_refusal_is_relayed_without_failover(gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    rid = new_rid()
    fake.set("down", status=400, error_message="This model's maximum context length is 8192 tokens.",
             error_code="context_length_exceeded", error_param="input")
    with raw(gateway, FULL) as http:
        response = http.post("/v1/embeddings", json={"model": "failover-embed", "input": "x"},
                             headers={"X-Request-Id": rid})
    error = assert_openai_error(response, 400, "context_length_exceeded")
    assert error["param"] == "input"
    assert [r.prefix for r in fake.embeddings_requests()] == ["down"]
    row = db.usage(rid)
    assert (row["end_reason"], row["status"], row["cost_nano"]) == ("rejected", 400, 0)


def test_every_channel_failing_is_a_502_and_not_billed(gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    rid = new_rid()
    fake.set("down", status=500)
    fake.set("up", status=502)
    with raw(gateway, FULL) as http:
        response = http.post("/v1/embeddings", json={"model": "failover-embed", "input": "x"},
                             headers={"X-Request-Id": rid})
    assert_openai_error(response, 502, "upstream_error")
    row = db.usage(rid)
    assert (row["end_reason"], row["status"], row["cost_nano"], row["attempts"]) == ("upstream_error", 502, 0, 2)


def test_a_broken_upstream_answer_is_an_upstream_error(client: openai.OpenAI, gem: FakeGemini,
                                                      db: GatewayDB) -> None:
    rid = new_rid()
    gem.set("gm", raw_body='{"embeddings": [{"values": [0.1]}]}')  # one vector for two inputs
    with pytest.raises(openai.APIStatusError) as caught:
        client.embeddings.create(model="text-embedding-004", input=TEXTS, extra_headers={"X-Request-Id": rid})
    assert caught.value.status_code == 502
    assert db.usage(rid)["end_reason"] == "upstream_error"


# --- the gate ---------------------------------------------------------------------------------------

def test_quota_model_allow_list_and_unknown_models(gateway: Gateway, fake: FakeOpenAI, db: GatewayDB) -> None:
    with raw(gateway, TINY) as http:
        assert_openai_error(http.post("/v1/embeddings", json={"model": "percall-embed", "input": "x"}),
                            429, "insufficient_quota")
    with raw(gateway, LIMITED) as http:
        assert_openai_error(http.post("/v1/embeddings", json={"model": "text-embedding-3-large", "input": "x"}),
                            403, "model_not_allowed")
        assert http.post("/v1/embeddings", json={"model": "text-embedding-3-small", "input": "x"}).status_code == 200
    with raw(gateway, FULL) as http:
        assert_openai_error(http.post("/embeddings", json={"model": "nope", "input": "x"}), 404, "model_not_found")
    with raw(gateway) as http:
        assert_openai_error(http.post("/v1/embeddings", json={"model": "mock-embed", "input": "x"}),
                            401, "missing_api_key")


@pytest.mark.parametrize(("body", "status", "code", "param"), [
    ({"model": "mock-embed"}, 400, "missing_input", "input"),
    ({"model": "mock-embed", "input": None}, 400, "missing_input", "input"),
    ({"input": "x"}, 400, "missing_model", "model"),
    ({"model": 4, "input": "x"}, 400, "invalid_type", "model"),
    ({"model": "mock-embed", "input": 5}, 400, "invalid_type", "input"),
    ({"model": "mock-embed", "input": {"text": "x"}}, 400, "invalid_type", "input"),
    ({"model": "mock-embed", "input": [1, "a"]}, 400, "invalid_type", "input"),
    ({"model": "mock-embed", "input": [[1], "a"]}, 400, "invalid_type", "input"),
    ({"model": "mock-embed", "input": [[1], [True]]}, 400, "invalid_type", "input"),
    ({"model": "mock-embed", "input": [-1]}, 400, "invalid_type", "input"),
    ({"model": "mock-embed", "input": []}, 400, "invalid_value", "input"),
    ({"model": "mock-embed", "input": [[]]}, 400, "invalid_value", "input"),
    ({"model": "mock-embed", "input": ""}, 400, "invalid_value", "input"),
    ({"model": "mock-embed", "input": ["a", ""]}, 400, "invalid_value", "input"),
    ({"model": "mock-embed", "input": ["a"] * 2049}, 400, "invalid_value", "input"),
    ({"model": "mock-embed", "input": "x", "encoding_format": "hex"}, 400, "invalid_value", "encoding_format"),
    ({"model": "mock-embed", "input": "x", "encoding_format": 1}, 400, "invalid_type", "encoding_format"),
    ({"model": "mock-embed", "input": "x", "dimensions": 0}, 400, "invalid_value", "dimensions"),
    ({"model": "mock-embed", "input": "x", "dimensions": "4"}, 400, "invalid_type", "dimensions"),
    ({"model": "mock-embed", "input": "x", "dimensions": 4.0}, 400, "invalid_type", "dimensions"),
    ({"model": "mock-embed", "input": "x", "user": 7}, 400, "invalid_type", "user"),
])
def test_bad_input_is_a_400_in_openai_shape(gateway: Gateway, db: GatewayDB, body: dict[str, Any], status: int,
                                           code: str, param: str) -> None:
    rid = new_rid("bad")
    with raw(gateway, FULL) as http:
        error = assert_openai_error(http.post("/v1/embeddings", json=body, headers={"X-Request-Id": rid}), status, code)
    assert error["param"] == param and error["type"] == "invalid_request_error"
    assert db.usage_rows(rid) == []


@pytest.mark.parametrize(("content", "code"), [(b"", "invalid_json"), (b"{", "invalid_json"),
                                               (b"[]", "invalid_request")])
def test_a_body_that_is_not_a_json_object_is_a_400(gateway: Gateway, content: bytes, code: str) -> None:
    with raw(gateway, FULL) as http:
        response = http.post("/v1/embeddings", content=content, headers={"Content-Type": "application/json"})
    assert_openai_error(response, 400, code)


def test_the_sdk_raises_bad_request_for_bad_input(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        client.embeddings.create(model="mock-embed", input=[])
    body = caught.value.body
    assert isinstance(body, dict) and body["code"] == "invalid_value"
    assert orjson.loads(caught.value.response.content)["error"]["param"] == "input"
