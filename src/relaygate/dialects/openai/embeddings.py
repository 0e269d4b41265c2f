"""OpenAI's ``POST /v1/embeddings`` (spec/openai.md §4): request checks, and pure converters to and
from the neutral embeddings model.

``input`` is a string, an array of strings, an array of token ids, or an array of token-id arrays.
With ``encoding_format: "base64"`` each vector is the base64 of its little-endian float32 values.
"""

from __future__ import annotations

import base64
import binascii
import sys
from array import array
from collections.abc import Sequence
from typing import Any

import orjson

from relaygate.core.embeddings import EmbeddingInput, EmbeddingsRequest, EmbeddingsResponse, VectorEncoding
from relaygate.core.usage import Usage
from relaygate.core.wire import as_dict, as_int, as_list, as_str, leftovers, merge_missing
from relaygate.dialects.base import EmbeddingsDialect
from relaygate.dialects.openai.errors import error_status, parse_upstream_error
from relaygate.dialects.openai.usage import usage_from_openai
from relaygate.errors import InvalidRequest, UpstreamRejected
from relaygate.scrub import Scrubber

D = "openai"
MAX_INPUTS = 2048  # OpenAI's limit on the items of one request
MAX_TOKEN_ID = 2**31 - 1
_KNOWN = frozenset({"model", "input", "encoding_format", "dimensions", "user"})
_INPUT_SHAPES = "a string, an array of strings, an array of token ids, or an array of token-id arrays"


# --- checks (the surface's; converters themselves never raise) --------------------------------------

def check_openai_embeddings_request(body: dict[str, Any]) -> str:
    """The model of a well-formed request; raises ``InvalidRequest`` naming the first bad field."""
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string.", param="model",
                             code="missing_model" if model is None else "invalid_type")
    _check_input(body.get("input"))
    encoding = body.get("encoding_format")
    if encoding is not None and not isinstance(encoding, str):
        raise InvalidRequest("'encoding_format' must be a string.", param="encoding_format", code="invalid_type")
    if encoding is not None and encoding not in ("float", "base64"):
        raise InvalidRequest("'encoding_format' must be 'float' or 'base64'.", param="encoding_format",
                             code="invalid_value")
    dimensions = body.get("dimensions")
    if dimensions is not None and as_int(dimensions) is None:
        raise InvalidRequest("'dimensions' must be an integer.", param="dimensions", code="invalid_type")
    if dimensions is not None and not 0 < dimensions <= 1_000_000:
        raise InvalidRequest("'dimensions' must be a positive integer.", param="dimensions", code="invalid_value")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise InvalidRequest("'user' must be a string.", param="user", code="invalid_type")
    return model


def _check_input(value: Any) -> None:
    if value is None:
        raise InvalidRequest(f"'input' is required: {_INPUT_SHAPES}.", param="input", code="missing_input")
    if isinstance(value, str):
        if not value:
            raise InvalidRequest("'input' cannot be an empty string.", param="input", code="invalid_value")
        return
    if not isinstance(value, list):
        raise InvalidRequest(f"'input' must be {_INPUT_SHAPES}.", param="input", code="invalid_type")
    if not value:
        raise InvalidRequest("'input' cannot be an empty array.", param="input", code="invalid_value")
    if len(value) > MAX_INPUTS:
        raise InvalidRequest(f"'input' can hold at most {MAX_INPUTS} items.", param="input", code="invalid_value")
    if all(isinstance(item, str) for item in value):
        if not all(value):
            raise InvalidRequest("'input' cannot contain an empty string.", param="input", code="invalid_value")
    elif all(isinstance(item, list) for item in value):
        if not all(item and _token_ids(item) for item in value):
            raise InvalidRequest("Every token-id array of 'input' must be a non-empty array of token ids.",
                                 param="input", code="invalid_value" if all(map(_token_ids, value)) else "invalid_type")
    elif not _token_ids(value):
        raise InvalidRequest(f"'input' must be {_INPUT_SHAPES}; its items must all be of one kind.",
                             param="input", code="invalid_type")


def _token_ids(items: list[Any]) -> bool:
    return all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t <= MAX_TOKEN_ID for t in items)


# --- vectors ----------------------------------------------------------------------------------------

def vector_to_base64(vector: Sequence[float]) -> str:
    """Little-endian float32s, base64-encoded (values beyond float32's range become infinities)."""
    packed = array("f", vector)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def vector_from_base64(text: str) -> tuple[float, ...] | None:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) % 4:
        return None
    packed = array("f")
    packed.frombytes(raw)
    if sys.byteorder == "big":
        packed.byteswap()
    return tuple(packed)


def _vector_in(value: Any) -> tuple[float, ...] | None:
    if isinstance(value, str):
        return vector_from_base64(value)
    if isinstance(value, list) and all(isinstance(x, int | float) and not isinstance(x, bool) for x in value):
        return tuple(float(x) for x in value)
    return None


# --- converters -------------------------------------------------------------------------------------

def openai_embeddings_request_to_core(body: dict[str, Any]) -> EmbeddingsRequest:
    encoding = VectorEncoding.BASE64 if body.get("encoding_format") == "base64" else VectorEncoding.FLOAT
    extra = leftovers(body, _KNOWN)
    return EmbeddingsRequest(
        model=as_str(body.get("model")) or "", inputs=_inputs_in(body.get("input")),
        dimensions=as_int(body.get("dimensions")), encoding=encoding, user=as_str(body.get("user")),
        extras={D: extra} if extra else {})


def _inputs_in(value: Any) -> tuple[EmbeddingInput, ...]:
    if isinstance(value, str):
        return (EmbeddingInput(text=value),)
    items = as_list(value)
    if items and all(isinstance(t, int) and not isinstance(t, bool) for t in items):
        return (EmbeddingInput(tokens=tuple(items)),)
    out: list[EmbeddingInput] = []
    for item in items:
        if isinstance(item, str):
            out.append(EmbeddingInput(text=item))
        elif isinstance(item, list):
            out.append(EmbeddingInput(tokens=tuple(t for t in item if isinstance(t, int) and not isinstance(t, bool))))
    return tuple(out)


def core_embeddings_request_to_openai(req: EmbeddingsRequest) -> dict[str, Any]:
    body: dict[str, Any] = {"model": req.model, "input": [
        list(item.tokens) if item.tokens is not None else item.text or "" for item in req.inputs]}
    if req.dimensions is not None:
        body["dimensions"] = req.dimensions
    if req.encoding is VectorEncoding.BASE64:
        body["encoding_format"] = "base64"
    if req.user is not None:
        body["user"] = req.user
    return merge_missing(body, req.extras.get(D, {}))


def openai_embeddings_response_to_core(parsed: Any) -> EmbeddingsResponse:
    """Vectors in ``index`` order; an item that holds no vector is left out (the relay counts them)."""
    body = as_dict(parsed)
    items = [item for item in as_list(body.get("data")) if isinstance(item, dict)]
    items.sort(key=lambda item: as_int(item.get("index")) or 0)
    vectors = [vector for item in items if (vector := _vector_in(item.get("embedding"))) is not None]
    return EmbeddingsResponse(tuple(vectors), as_str(body.get("model")), usage_of(body))


def core_embeddings_response_to_openai(resp: EmbeddingsResponse, encoding: VectorEncoding,
                                       model: str) -> dict[str, Any]:
    def vector_out(vector: tuple[float, ...]) -> Any:
        return vector_to_base64(vector) if encoding is VectorEncoding.BASE64 else list(vector)

    usage = resp.usage or Usage()
    return {
        "object": "list",
        "data": [{"object": "embedding", "index": i, "embedding": vector_out(v)} for i, v in enumerate(resp.vectors)],
        "model": model,
        "usage": {"prompt_tokens": usage.input_tokens, "total_tokens": usage.input_tokens},
    }


def usage_of(parsed: Any) -> Usage | None:
    """``usage.prompt_tokens`` (embeddings have no output tokens)."""
    usage = usage_from_openai(as_dict(parsed).get("usage"))
    return Usage(input_tokens=usage.input_tokens) if usage is not None else None


def passthrough_body(body: dict[str, Any], raw: bytes, upstream_model: str) -> bytes:
    """The client's bytes, with the model name replaced only when the channel maps it."""
    if body.get("model") == upstream_model:
        return raw
    return orjson.dumps({**body, "model": upstream_model})


class OpenAIEmbeddingsDialect:
    """``/v1/embeddings`` as the relay sees it."""

    name = D
    takes_token_ids = True

    def request_to_core(self, body: dict[str, Any], model: str) -> EmbeddingsRequest:
        return openai_embeddings_request_to_core(body)  # the model is the body's

    def request_from_core(self, req: EmbeddingsRequest) -> dict[str, Any]:
        return core_embeddings_request_to_openai(req)

    def passthrough_body(self, body: dict[str, Any], raw: bytes, upstream_model: str) -> bytes:
        return passthrough_body(body, raw, upstream_model)

    def response_to_core(self, parsed: Any) -> EmbeddingsResponse:
        return openai_embeddings_response_to_core(parsed)

    def response_from_core(self, resp: EmbeddingsResponse, req: EmbeddingsRequest, model: str) -> dict[str, Any]:
        return core_embeddings_response_to_openai(resp, req.encoding, model)  # floats or base64, as asked

    def usage_of(self, parsed: Any) -> Usage | None:
        return usage_of(parsed)

    def parse_upstream_error(self, status: int, body: bytes, scrubber: Scrubber) -> UpstreamRejected:
        return parse_upstream_error(status, body, scrubber)

    def error_status(self, parsed: Any) -> int | None:
        return error_status(parsed)


OPENAI_EMBEDDINGS: EmbeddingsDialect = OpenAIEmbeddingsDialect()
