"""The embeddings ability of each provider (upstream URL, auth, body), the mock's vectors, the offline
count and token decoding, and the relay's upstream bodies (passthrough or translation)."""

from __future__ import annotations

import math
import struct
from typing import Any

import orjson
import pytest

from relaygate.auth.records import KeyRecord
from relaygate.billing.tokenizer import count_embedding_inputs, count_text, decode_tokens
from relaygate.core.embeddings import EmbeddingInput, EmbeddingsRequest
from relaygate.dialects.openai.embeddings import vector_from_base64
from relaygate.dialects.registry import embeddings_dialect
from relaygate.errors import InvalidRequest
from relaygate.meter.call import Call
from relaygate.providers.base import EmbeddingsProvider, UpstreamRequest
from relaygate.providers.mock import MockProvider
from relaygate.providers.mock_embeddings import DEFAULT_DIMENSIONS, mock_vector
from relaygate.providers.registry import embeddings_provider_for, known_kinds, provider_for
from relaygate.relay.embeddings import _Bodies
from relaygate.routing.records import ChannelRecord

BODY = b'{"model":"m","input":"x"}'
KEY = "sk-upstream-secret-0123456789"


def channel(kind: str, base_url: str = "", options: dict[str, Any] | None = None) -> ChannelRecord:
    return ChannelRecord(1, "c", kind, base_url, KEY, options=options or {})


def build(kind: str, ch: ChannelRecord, model: str = "m") -> UpstreamRequest:
    ability = embeddings_provider_for(kind)
    assert ability is not None
    return ability.embeddings_request(ch, BODY, model=model)


def test_every_kind_but_anthropic_can_embed() -> None:
    can = [kind for kind in known_kinds() if embeddings_provider_for(kind) is not None]
    assert can == ["openai", "azure", "gemini", "mock"]
    assert not isinstance(provider_for("anthropic"), EmbeddingsProvider)


@pytest.mark.parametrize("base", ["https://api.example.com", "https://api.example.com/v1/"])
def test_openai(base: str) -> None:
    request = build("openai", channel("openai", base))
    assert (request.method, request.url, request.body) == ("POST", "https://api.example.com/v1/embeddings", BODY)
    assert request.headers == {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}
    assert not request.stream


def test_azure_uses_the_deployment_and_api_key() -> None:
    ch = channel("azure", "https://res.openai.azure.com/openai", {"deployments": {"text-embedding-3-small": "emb"}})
    request = build("azure", ch, "text-embedding-3-small")
    assert request.url == "https://res.openai.azure.com/openai/deployments/emb/embeddings?api-version=2024-10-21"
    assert request.headers == {"content-type": "application/json", "api-key": KEY}
    other = build("azure", channel("azure", "https://res.openai.azure.com", {"api_version": "2025-01-01"}), "a/b")
    assert other.url == "https://res.openai.azure.com/openai/deployments/a%2Fb/embeddings?api-version=2025-01-01"


def test_gemini_always_batches_with_the_key_in_a_header() -> None:
    request = build("gemini", channel("gemini", "https://g.example.com/v1beta"), "models/text-embedding-004")
    assert request.url == "https://g.example.com/v1beta/models/text-embedding-004:batchEmbedContents"
    assert request.headers == {"x-goog-api-key": KEY, "content-type": "application/json"}
    v1 = build("gemini", channel("gemini", "https://g.example.com", {"api_version": "v1"}), "a:b")
    assert v1.url == "https://g.example.com/v1/models/a%3Ab:batchEmbedContents" and KEY not in v1.url


@pytest.mark.parametrize(("dialect", "expected"), [("openai", "openai"), ("gemini", "gemini"),
                                                   ("anthropic", "openai")])
def test_the_mock_embeds_in_its_dialect_or_else_openais(dialect: str, expected: str) -> None:
    assert MockProvider().embeddings_dialect(channel("mock", options={"dialect": dialect})) == expected


async def _mock(dialect: str, body: dict[str, Any], model: str = "mock-embed") -> tuple[int, Any]:
    provider = MockProvider()
    ch = channel("mock", options={"dialect": dialect})
    request = provider.embeddings_request(ch, orjson.dumps(body), model=model)
    transport = provider.transport_for(ch)
    assert transport is not None
    response = await transport.send(request)
    return response.status, orjson.loads(await response.read(1 << 20))


async def test_the_mock_answers_openai_in_float_and_base64() -> None:
    status, floats = await _mock("openai", {"model": "e", "input": ["a", "b"], "dimensions": 3})
    assert status == 200
    assert [d["embedding"] for d in floats["data"]] == [list(mock_vector(EmbeddingInput(text=t), 3)) for t in "ab"]
    assert floats["usage"] == {"prompt_tokens": 2, "total_tokens": 2} and floats["model"] == "e"
    _, packed = await _mock("openai", {"model": "e", "input": ["a", "b"], "dimensions": 3, "encoding_format": "base64"})
    assert [list(vector_from_base64(d["embedding"]) or ()) for d in packed["data"]] == [
        d["embedding"] for d in floats["data"]]


async def test_the_mock_answers_gemini_batches_without_usage() -> None:
    body = {"requests": [{"model": "models/mock-embed", "content": {"parts": [{"text": "a"}]}}]}
    status, answer = await _mock("gemini", body)
    assert status == 200
    assert answer == {"embeddings": [{"values": list(mock_vector(EmbeddingInput(text="a"), DEFAULT_DIMENSIONS))}]}


@pytest.mark.parametrize(("dialect", "body"), [
    ("openai", {"model": "e"}),
    ("openai", {"model": "e", "input": "x", "dimensions": 5000}),
    ("gemini", {"requests": [{"model": "models/other", "content": {"parts": [{"text": "a"}]}}]}),
    ("gemini", {"requests": []}),
])
async def test_the_mock_refuses_bad_requests_in_its_dialect(dialect: str, body: dict[str, Any]) -> None:
    status, answer = await _mock(dialect, body)
    assert status == 400
    assert answer["error"]["message"]
    assert ("status" in answer["error"]) == (dialect == "gemini")


def test_mock_vectors_are_deterministic_unit_float32() -> None:
    text = EmbeddingInput(text="hello")
    vector = mock_vector(text, 32)
    assert vector == mock_vector(EmbeddingInput(text="hello", task_type="CLUSTERING"), 32)
    assert len(mock_vector(text, 8)) == 8
    assert math.isclose(math.fsum(x * x for x in vector), 1.0, rel_tol=1e-6)
    assert all(struct.unpack("<f", struct.pack("<f", x))[0] == x for x in vector)  # exact float32 values
    assert mock_vector(EmbeddingInput(tokens=(1, 2)), 32) != mock_vector(EmbeddingInput(text="[1,2]"), 32)
    assert mock_vector(EmbeddingInput(text="other"), 32) != vector


def test_the_offline_count_and_token_decoding() -> None:
    req = EmbeddingsRequest("text-embedding-3-small", (EmbeddingInput(text="hello world"),
                                                        EmbeddingInput(tokens=(1, 2, 3))))
    assert count_embedding_inputs(req, req.model) == count_text("hello world", req.model) + 3 == 5
    assert decode_tokens([15339, 1917], "text-embedding-3-small") == "hello world"
    with pytest.raises(ValueError, match="out of range"):
        decode_tokens([10**9], "text-embedding-3-small")


# --- the relay's upstream bodies ----------------------------------------------------------------------

def _bodies(body: dict[str, Any], dialect: str, model: str = "text-embedding-3-small") -> tuple[_Bodies, bytes]:
    raw = orjson.dumps(body)
    call = Call(request_id="r", surface="s", model=model, stream=False, key=KeyRecord(1, "k", "h"), client_ip=None,
                client_request_id=None, body=body, dialect=dialect)
    return _Bodies(call, raw, embeddings_dialect(dialect)), raw


def test_the_same_dialect_passes_the_clients_bytes() -> None:
    bodies, raw = _bodies({"model": "text-embedding-3-small", "input": [[1, 2]]}, "openai")
    assert bodies.for_upstream(embeddings_dialect("openai"), "text-embedding-3-small") is raw
    gemini = orjson.loads(bodies.for_upstream(embeddings_dialect("gemini"), "text-embedding-004"))
    assert gemini["requests"][0]["content"] == {"parts": [{"text": decode_tokens([1, 2], "text-embedding-3-small")}]}


def test_a_gemini_single_request_is_always_translated() -> None:
    bodies, _ = _bodies({"content": {"parts": [{"text": "a"}]}}, "gemini-single", "text-embedding-004")
    assert orjson.loads(bodies.for_upstream(embeddings_dialect("gemini"), "text-embedding-004")) == {"requests": [
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}}]}
    assert orjson.loads(bodies.for_upstream(embeddings_dialect("openai"), "x")) == {"model": "x", "input": ["a"]}
    assert bodies.estimated_usage().input_tokens == 1


def test_token_ids_outside_the_vocabulary_cannot_go_to_a_text_only_channel() -> None:
    bodies, raw = _bodies({"model": "text-embedding-3-small", "input": [2**30]}, "openai")
    assert bodies.for_upstream(embeddings_dialect("openai"), "other") != raw  # OpenAI takes them as they are
    with pytest.raises(InvalidRequest) as caught:
        bodies.for_upstream(embeddings_dialect("gemini"), "text-embedding-004")
    assert (caught.value.status, caught.value.code, caught.value.param) == (400, "invalid_value", "input")
