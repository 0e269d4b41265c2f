"""The embeddings converters, both dialects and both directions, as input JSON → expected JSON; the
request checks; base64 of little-endian float32s; the passthrough edits."""

from __future__ import annotations

import base64
import dataclasses
import struct
from typing import Any

import orjson
import pytest

from relaygate.core.embeddings import EmbeddingInput, EmbeddingsRequest, EmbeddingsResponse, VectorEncoding
from relaygate.core.usage import Usage
from relaygate.dialects.gemini.embeddings import (
    GEMINI_EMBEDDINGS,
    GEMINI_SINGLE_EMBEDDINGS,
    check_gemini_batch_request,
    check_gemini_embed_request,
    core_embeddings_request_to_gemini,
    gemini_batch_request_to_core,
    gemini_embed_request_to_core,
    gemini_embeddings_response_to_core,
)
from relaygate.dialects.gemini.embeddings import passthrough_body as gemini_passthrough
from relaygate.dialects.openai.embeddings import (
    OPENAI_EMBEDDINGS,
    check_openai_embeddings_request,
    core_embeddings_request_to_openai,
    core_embeddings_response_to_openai,
    openai_embeddings_request_to_core,
    openai_embeddings_response_to_core,
    vector_from_base64,
    vector_to_base64,
)
from relaygate.dialects.openai.embeddings import passthrough_body as openai_passthrough
from relaygate.dialects.registry import embeddings_dialect
from relaygate.errors import InvalidRequest

ONE = (0.5, -0.25, 1.0)
TWO = (0.125, 0.0, -1.0)


def openai_to_gemini(body: dict[str, Any], model: str) -> dict[str, Any]:
    core = openai_embeddings_request_to_core(body)
    return core_embeddings_request_to_gemini(dataclasses.replace(core, model=model))


# --- base64 -----------------------------------------------------------------------------------------

def test_base64_is_little_endian_float32() -> None:
    assert vector_to_base64([1.0, -2.0]) == base64.b64encode(struct.pack("<2f", 1.0, -2.0)).decode()
    assert vector_to_base64([1.0]) == "AACAPw=="
    assert vector_from_base64("AACAPw==") == (1.0,)
    assert vector_from_base64(vector_to_base64([0.1])) == struct.unpack("<f", struct.pack("<f", 0.1))


@pytest.mark.parametrize("text", ["not base64!", "AACA", "AAA="])
def test_bad_base64_reads_as_no_vector(text: str) -> None:
    assert vector_from_base64(text) is None


# --- OpenAI -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "inputs"), [
    ("hi", (EmbeddingInput(text="hi"),)),
    (["a", "b"], (EmbeddingInput(text="a"), EmbeddingInput(text="b"))),
    ([1, 2, 3], (EmbeddingInput(tokens=(1, 2, 3)),)),
    ([[1, 2], [3]], (EmbeddingInput(tokens=(1, 2)), EmbeddingInput(tokens=(3,)))),
])
def test_openai_inputs_in(value: Any, inputs: tuple[EmbeddingInput, ...]) -> None:
    assert openai_embeddings_request_to_core({"model": "m", "input": value}).inputs == inputs


def test_openai_request_round_trip_keeps_unknown_fields() -> None:
    body = {"model": "text-embedding-3-small", "input": ["a", "b"], "encoding_format": "base64", "dimensions": 8,
            "user": "u1", "x_future": {"k": 1}}
    core = openai_embeddings_request_to_core(body)
    assert (core.encoding, core.dimensions, core.user) == (VectorEncoding.BASE64, 8, "u1")
    assert core.extras == {"openai": {"x_future": {"k": 1}}}
    assert core_embeddings_request_to_openai(core) == body


def test_openai_response_in_reads_floats_and_base64_in_index_order() -> None:
    parsed = {"object": "list", "model": "text-embedding-3-small", "usage": {"prompt_tokens": 6, "total_tokens": 6},
              "data": [{"object": "embedding", "index": 1, "embedding": vector_to_base64(TWO)},
                       {"object": "embedding", "index": 0, "embedding": list(ONE)}]}
    resp = openai_embeddings_response_to_core(parsed)
    assert resp == EmbeddingsResponse((ONE, TWO), "text-embedding-3-small", Usage(input_tokens=6))


def test_openai_response_in_leaves_out_what_is_no_vector() -> None:
    parsed = {"data": [{"embedding": ["x"]}, {"embedding": None}, "junk", {"embedding": [1, 2]}]}
    assert openai_embeddings_response_to_core(parsed).vectors == ((1.0, 2.0),)
    assert openai_embeddings_response_to_core("junk") == EmbeddingsResponse(())


@pytest.mark.parametrize("encoding", list(VectorEncoding))
def test_openai_response_out(encoding: VectorEncoding) -> None:
    body = core_embeddings_response_to_openai(EmbeddingsResponse((ONE, TWO), "x", Usage(input_tokens=5)), encoding,
                                              "client-model")
    vectors = [list(ONE), list(TWO)] if encoding is VectorEncoding.FLOAT else [vector_to_base64(ONE),
                                                                               vector_to_base64(TWO)]
    assert body == {"object": "list", "model": "client-model", "usage": {"prompt_tokens": 5, "total_tokens": 5},
                    "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]}


def test_openai_passthrough_edits_only_the_model() -> None:
    raw = b'{"model": "a",  "input": "x", "z": 1}'
    body = orjson.loads(raw)
    assert openai_passthrough(body, raw, "a") is raw
    assert orjson.loads(openai_passthrough(body, raw, "b")) == {"model": "b", "input": "x", "z": 1}


@pytest.mark.parametrize(("body", "code", "param"), [
    ({"input": "x"}, "missing_model", "model"),
    ({"model": "", "input": "x"}, "invalid_type", "model"),
    ({"model": "m"}, "missing_input", "input"),
    ({"model": "m", "input": [True]}, "invalid_type", "input"),
    ({"model": "m", "input": [2**31]}, "invalid_type", "input"),
    ({"model": "m", "input": [[1], []]}, "invalid_value", "input"),
    ({"model": "m", "input": [["a"]]}, "invalid_type", "input"),
    ({"model": "m", "input": "x", "dimensions": True}, "invalid_type", "dimensions"),
    ({"model": "m", "input": "x", "dimensions": -3}, "invalid_value", "dimensions"),
])
def test_openai_checks(body: dict[str, Any], code: str, param: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        check_openai_embeddings_request(body)
    assert (caught.value.code, caught.value.param, caught.value.status) == (code, param, 400)


def test_openai_checks_accept_every_input_shape() -> None:
    for value in ("x", ["x", "y"], [0, 5], [[1], [2, 3]]):
        assert check_openai_embeddings_request({"model": "m", "input": value, "encoding_format": None}) == "m"


# --- Gemini -----------------------------------------------------------------------------------------

def test_openai_to_gemini_batch() -> None:
    body = {"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 4, "user": "u",
            "encoding_format": "base64", "x_openai_only": 1}
    assert openai_to_gemini(body, "text-embedding-004") == {"requests": [
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "a"}]}, "outputDimensionality": 4},
        {"model": "models/text-embedding-004", "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 4}]}


def test_gemini_single_in_joins_text_parts_and_keeps_the_rest_for_gemini() -> None:
    body = {"content": {"role": "user", "parts": [{"text": "a"}, {"inline_data": {"data": "AA=="}}, {"text": "b"}]},
            "task_type": "RETRIEVAL_QUERY", "title": "T", "output_dimensionality": 7, "autoTruncate": True}
    core = gemini_embed_request_to_core(body, "models/text-embedding-004")
    assert core.model == "text-embedding-004" and core.dimensions == 7
    [item] = core.inputs
    assert (item.text, item.task_type, item.title) == ("a\nb", "RETRIEVAL_QUERY", "T")
    assert core_embeddings_request_to_gemini(core) == {"requests": [{
        "model": "models/text-embedding-004", "content": body["content"], "taskType": "RETRIEVAL_QUERY",
        "title": "T", "outputDimensionality": 7, "autoTruncate": True}]}
    assert core_embeddings_request_to_openai(core) == {"model": "text-embedding-004", "input": ["a\nb"],
                                                       "dimensions": 7}


def test_gemini_batch_in_takes_the_first_dimensionality() -> None:
    body = {"requests": [{"content": {"parts": [{"text": "a"}]}},
                         {"content": {"parts": [{"text": "b"}]}, "outputDimensionality": 3},
                         {"content": {"parts": [{"text": "c"}]}, "outputDimensionality": 9}, "junk"]}
    core = gemini_batch_request_to_core(body, "m")
    assert [i.text for i in core.inputs] == ["a", "b", "c"] and core.dimensions == 3


def test_gemini_responses_in_and_out() -> None:
    batch = {"embeddings": [{"values": list(ONE)}, {"values": list(TWO)}]}
    assert gemini_embeddings_response_to_core(batch) == EmbeddingsResponse((ONE, TWO))
    assert gemini_embeddings_response_to_core({"embedding": {"values": [1, 2]}}).vectors == ((1.0, 2.0),)
    assert gemini_embeddings_response_to_core({"embeddings": [{"values": ["x"]}, {}, {"values": [3]}]}).vectors == (
        (3.0,),)
    with_usage = {**batch, "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}}
    assert gemini_embeddings_response_to_core(with_usage).usage == Usage(input_tokens=9)
    resp = EmbeddingsResponse((ONE, TWO), usage=Usage(input_tokens=3))
    request = EmbeddingsRequest("m", ())
    assert GEMINI_EMBEDDINGS.response_from_core(resp, request, "m") == batch  # Google reports no usage
    assert GEMINI_SINGLE_EMBEDDINGS.response_from_core(EmbeddingsResponse((ONE,)), request, "m") == {
        "embedding": {"values": list(ONE)}}


def test_gemini_passthrough_rewrites_only_a_mapped_model() -> None:
    raw = b'{"requests": [{"model": "models/a", "content": {"parts": [{"text": "x"}]}}, {"content": {}}]}'
    body = orjson.loads(raw)
    assert gemini_passthrough(body, raw, "a") is raw
    assert gemini_passthrough(body, raw, "models/a") is raw
    edited = orjson.loads(gemini_passthrough(body, raw, "b"))
    assert edited == {"requests": [{"model": "models/b", "content": {"parts": [{"text": "x"}]}}, {"content": {}}]}


def test_gemini_checks() -> None:
    content = {"parts": [{"text": "x"}]}
    check_gemini_embed_request({"content": content, "taskType": "CLUSTERING", "outputDimensionality": 4})
    check_gemini_batch_request({"requests": [{"model": "models/m", "content": content},
                                             {"model": "m", "content": content}, {"content": content}]}, "m")
    with pytest.raises(InvalidRequest) as caught:
        check_gemini_batch_request({"requests": [{"model": 5, "content": content}]}, "m")
    assert (caught.value.code, caught.value.param) == ("invalid_value", "requests[0].model")
    with pytest.raises(InvalidRequest) as caught:
        check_gemini_embed_request({"content": content, "title": ["t"]})
    assert (caught.value.code, caught.value.param) == ("invalid_type", "title")


def test_the_registry_names_the_embeddings_dialects() -> None:
    assert embeddings_dialect("openai") is OPENAI_EMBEDDINGS
    assert embeddings_dialect("gemini") is GEMINI_EMBEDDINGS
    assert embeddings_dialect("gemini-single") is GEMINI_SINGLE_EMBEDDINGS
    assert OPENAI_EMBEDDINGS.takes_token_ids and not GEMINI_EMBEDDINGS.takes_token_ids
    with pytest.raises(KeyError):
        embeddings_dialect("anthropic")
