"""Gemini's ``:embedContent`` and ``:batchEmbedContents`` end to end: the official ``google-genai`` SDK (and
raw HTTP, for the single form the SDK does not use) → a relaygate process → the fake Gemini and OpenAI
upstreams and the mock, with every call's usage record read back from the gateway's database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest
from google import genai
from google.genai import errors as genai_errors
from google.genai import types

from relaygate.billing.tokenizer import count_text
from tests.fakes.clients import UPSTREAM_KEY, new_rid, sdk
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.usage_db import GatewayDB
from tests.fakes.vectors import fake_vector
from tests.helpers.embeddings import FULL, config, input_cost
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
    home = Path(tmp_path_factory.mktemp("embeddings-gemini"))
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


def _genai(gateway: Gateway, rid: str | None = None, version: str = "v1beta") -> genai.Client:
    """Keep the client in a variable while using it: the SDK closes its HTTP client when the ``Client``
    object is collected."""
    headers = {"X-Request-Id": rid} if rid else None
    return genai.Client(api_key=FULL, http_options=types.HttpOptions(base_url=gateway.url, api_version=version,
                                                                     headers=headers))


@pytest.fixture
def http(gateway: Gateway) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, headers={"x-goog-api-key": FULL}, timeout=30) as client:
        yield client


def _record(db: GatewayDB, rid: str, *, surface: str, model: str, channel: str, tokens: int,
            source: str) -> dict[str, Any]:
    row = db.usage(rid)
    assert (row["surface"], row["end_reason"], row["status"], row["stream"]) == (surface, "done", 200, 0)
    assert (row["model"], row["channel_name"], row["attempts"]) == (model, channel, 1)
    assert (row["input_tokens"], row["output_tokens"], row["usage_source"]) == (tokens, 0, source)
    assert row["cost_nano"] == input_cost(tokens, model)
    return row


def _google_error(response: httpx.Response, status: int, reason: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == status and error["status"] == {400: "INVALID_ARGUMENT"}.get(status, error["status"])
    assert error["details"][0]["reason"] == reason
    return dict(error)


# --- google-genai -----------------------------------------------------------------------------------

def test_a_gemini_channel_gets_the_sdks_batch_as_it_was_sent(gateway: Gateway, gem: FakeGemini, db: GatewayDB) -> None:
    rid = new_rid()
    config = types.EmbedContentConfig(output_dimensionality=4, task_type="RETRIEVAL_DOCUMENT")
    client = _genai(gateway, rid)
    result = client.models.embed_content(model="text-embedding-004", contents=TEXTS, config=config)
    assert result.embeddings is not None
    assert [e.values for e in result.embeddings] == [fake_vector(t, 4) for t in TEXTS]
    [sent] = gem.embed_requests()
    assert sent.path == "/gm/v1beta/models/text-embedding-004:batchEmbedContents"
    assert sent.headers["x-goog-api-key"] == UPSTREAM_KEY and FULL not in str(sent.headers)
    assert sent.json() == {"requests": [
        {"content": {"parts": [{"text": t}], "role": "user"}, "taskType": "RETRIEVAL_DOCUMENT",
         "outputDimensionality": 4, "model": "models/text-embedding-004"} for t in TEXTS]}
    tokens = sum(count_text(t, "text-embedding-004") for t in TEXTS)
    _record(db, rid, surface="gemini.batch_embed", model="text-embedding-004", channel="gm", tokens=tokens,
            source="estimated")


def test_a_mapped_model_is_rewritten_in_the_url_and_in_each_request(gateway: Gateway, gem: FakeGemini,
                                                                    db: GatewayDB) -> None:
    rid = new_rid()
    client = _genai(gateway, rid, version="v1")
    result = client.models.embed_content(model="gem-mapped", contents="hi")
    assert result.embeddings is not None and result.embeddings[0].values == fake_vector("hi")
    [sent] = gem.embed_requests()
    assert sent.path == "/gm/v1beta/models/text-embedding-004:batchEmbedContents"  # the channel's version
    assert [r["model"] for r in sent.json()["requests"]] == ["models/text-embedding-004"]
    _record(db, rid, surface="gemini.batch_embed", model="gem-mapped", channel="gm",
            tokens=count_text("hi", "gem-mapped"), source="estimated")


def test_an_openai_channel_gets_the_inputs_and_its_usage_is_billed(gateway: Gateway, fake: FakeOpenAI,
                                                                   db: GatewayDB) -> None:
    rid = new_rid()
    config = types.EmbedContentConfig(output_dimensionality=6, task_type="RETRIEVAL_QUERY", title="ignored")
    client = _genai(gateway, rid)
    result = client.models.embed_content(model="text-embedding-3-small", contents=TEXTS, config=config)
    assert result.embeddings is not None
    assert [e.values for e in result.embeddings] == [fake_vector(t, 6) for t in TEXTS]
    [sent] = fake.embeddings_requests()
    assert sent.prefix == "oa" and sent.headers["authorization"] == f"Bearer {UPSTREAM_KEY}"
    assert sent.json() == {"model": "text-embedding-3-small", "input": TEXTS, "dimensions": 6}
    _record(db, rid, surface="gemini.batch_embed", model="text-embedding-3-small", channel="oa",
            tokens=FAKE_PROMPT_TOKENS, source="upstream")


def test_the_mock_gives_the_same_vectors_to_every_client(gateway: Gateway, db: GatewayDB) -> None:
    rid = new_rid()
    config = types.EmbedContentConfig(output_dimensionality=16)
    client = _genai(gateway, rid)
    result = client.models.embed_content(model="mock-embed", contents=TEXTS, config=config)
    assert result.embeddings is not None
    with sdk(gateway, FULL) as oai:
        expected = oai.embeddings.create(model="mock-embed", input=TEXTS, dimensions=16, encoding_format="float")
    assert [e.values for e in result.embeddings] == [d.embedding for d in expected.data]
    _record(db, rid, surface="gemini.batch_embed", model="mock-embed", channel="mock",
            tokens=expected.usage.prompt_tokens, source="upstream")
    gemini_mock = client.models.embed_content(model="mock-gem-embed", contents=TEXTS, config=config)
    assert gemini_mock.embeddings is not None
    assert [e.values for e in gemini_mock.embeddings] == [d.embedding for d in expected.data]


def test_the_sdk_raises_client_error_for_a_model_that_cannot_embed(gateway: Gateway) -> None:
    client = _genai(gateway)
    with pytest.raises(genai_errors.ClientError) as caught:
        client.models.embed_content(model="claude-only", contents="x")
    assert caught.value.code == 400 and caught.value.status == "INVALID_ARGUMENT"
    assert "does not serve embeddings" in str(caught.value.message)


def test_an_upstream_refusal_reaches_the_gemini_client_in_its_shape(gateway: Gateway, gem: FakeGemini) -> None:
    gem.set("gm", status=400, error_message="Request contains an invalid argument.")
    client = _genai(gateway)
    with pytest.raises(genai_errors.ClientError) as caught:
        client.models.embed_content(model="text-embedding-004", contents="x")
    assert caught.value.code == 400 and caught.value.message == "Request contains an invalid argument."


# --- embedContent (raw HTTP: the SDK always batches) ------------------------------------------------

def test_embed_content_reaches_a_gemini_channel_as_a_batch_of_one(http: httpx.Client, gem: FakeGemini,
                                                                  db: GatewayDB) -> None:
    rid = new_rid()
    body = {"content": {"parts": [{"text": "quarterly revenue"}, {"text": "grew"}]}, "taskType": "RETRIEVAL_DOCUMENT",
            "title": "Q3 report", "outputDimensionality": 5}
    response = http.post("/v1beta/models/text-embedding-004:embedContent", json=body, headers={"X-Request-Id": rid})
    assert response.status_code == 200
    assert response.json() == {"embedding": {"values": fake_vector("quarterly revenue\ngrew", 5)}}
    [sent] = gem.embed_requests()
    assert sent.path.endswith("/models/text-embedding-004:batchEmbedContents")
    assert sent.json() == {"requests": [{"model": "models/text-embedding-004", **body}]}
    _record(db, rid, surface="gemini.embed", model="text-embedding-004", channel="gm",
            tokens=count_text("quarterly revenue\ngrew", "text-embedding-004"), source="estimated")


def test_embed_content_reaches_an_openai_channel_as_one_input(http: httpx.Client, fake: FakeOpenAI,
                                                              db: GatewayDB) -> None:
    rid = new_rid()
    body = {"content": {"parts": [{"text": "a"}, {"text": "b"}]}, "output_dimensionality": 3}
    response = http.post("/v1/models/text-embedding-3-small:embedContent", json=body, headers={"X-Request-Id": rid})
    assert response.status_code == 200
    assert response.json() == {"embedding": {"values": fake_vector("a\nb", 3)}}
    assert fake.embeddings_requests()[0].json() == {"model": "text-embedding-3-small", "input": ["a\nb"],
                                                    "dimensions": 3}
    _record(db, rid, surface="gemini.embed", model="text-embedding-3-small", channel="oa", tokens=FAKE_PROMPT_TOKENS,
            source="upstream")


def test_a_key_in_the_query_works_too(gateway: Gateway) -> None:
    body = {"content": {"parts": [{"text": "x"}]}}
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        response = client.post(f"/v1beta/models/models%2Fmock-embed:embedContent?key={FULL}", json=body)
    assert response.status_code == 200 and len(response.json()["embedding"]["values"]) == 256


# --- bad input --------------------------------------------------------------------------------------

CONTENT = {"parts": [{"text": "x"}]}


@pytest.mark.parametrize(("action", "body", "reason", "param"), [
    ("embedContent", {}, "missing_field", "content"),
    ("embedContent", {"content": "x"}, "invalid_type", "content"),
    ("embedContent", {"content": {}}, "missing_field", "content.parts"),
    ("embedContent", {"content": {"parts": []}}, "invalid_value", "content.parts"),
    ("embedContent", {"content": {"parts": ["x"]}}, "invalid_type", "content.parts"),
    ("embedContent", {"content": {"parts": [{"text": ""}]}}, "invalid_value", "content.parts"),
    ("embedContent", {"content": {"parts": [{"inline_data": {"mime_type": "image/png", "data": "AA=="}}]}},
     "invalid_value", "content.parts"),
    ("embedContent", {"content": CONTENT, "taskType": 3}, "invalid_type", "taskType"),
    ("embedContent", {"content": CONTENT, "outputDimensionality": "4"}, "invalid_type", "outputDimensionality"),
    ("embedContent", {"content": CONTENT, "output_dimensionality": 0}, "invalid_value", "outputDimensionality"),
    ("batchEmbedContents", {}, "missing_field", "requests"),
    ("batchEmbedContents", {"requests": {}}, "invalid_type", "requests"),
    ("batchEmbedContents", {"requests": []}, "invalid_value", "requests"),
    ("batchEmbedContents", {"requests": ["x"]}, "invalid_type", "requests[0]"),
    ("batchEmbedContents", {"requests": [{"content": CONTENT}, {}]}, "missing_field", "requests[1].content"),
    ("batchEmbedContents", {"requests": [{"model": "models/other", "content": CONTENT}]}, "invalid_value",
     "requests[0].model"),
])
def test_bad_input_is_a_400_in_googles_shape(http: httpx.Client, gem: FakeGemini, db: GatewayDB, action: str,
                                            body: dict[str, Any], reason: str, param: str) -> None:
    rid = new_rid("bad")
    response = http.post(f"/v1beta/models/text-embedding-004:{action}", json=body, headers={"X-Request-Id": rid})
    error = _google_error(response, 400, reason)
    assert error["message"].startswith(param)
    assert gem.embed_requests() == [] and db.usage_rows(rid) == []


def test_a_model_that_cannot_embed_and_an_unknown_one(http: httpx.Client) -> None:
    body = {"content": CONTENT}
    _google_error(http.post("/v1beta/models/claude-only:embedContent", json=body), 400, "embeddings_not_supported")
    _google_error(http.post("/v1beta/models/nope:batchEmbedContents", json={"requests": [{"content": CONTENT}]}),
                  404, "model_not_found")


def test_an_openai_client_sees_the_same_vectors_as_a_gemini_one(gateway: Gateway, http: httpx.Client) -> None:
    with sdk(gateway, FULL) as client:
        via_openai = client.embeddings.create(model="text-embedding-004", input="same", encoding_format="float")
    via_gemini = http.post("/v1beta/models/text-embedding-004:embedContent", json={"content": {"parts": [
        {"text": "same"}]}}).json()
    assert via_openai.data[0].embedding == via_gemini["embedding"]["values"] == fake_vector("same")
    assert isinstance(via_openai, openai.types.CreateEmbeddingResponse)
