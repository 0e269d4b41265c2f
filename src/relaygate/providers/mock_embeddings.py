"""The mock's embeddings: deterministic vectors, in the OpenAI or the Gemini (batch) format.

A vector is derived from a SHAKE-256 hash of its input (the text's UTF-8 bytes, or the token ids), so
the same input always gets the same vector, whatever the format, the model or the other inputs. It has
``dimensions`` (OpenAI) or ``outputDimensionality`` (Gemini) values, else ``DEFAULT_DIMENSIONS``; the
values are float32 numbers (so a base64 answer decodes to exactly the float answer) and the vector has
unit length, as OpenAI's and Google's have. Usage is counted with the offline tokenizer, each text as
its tokens and each token-id array as its length; the Gemini format reports none, as Google does.
"""

from __future__ import annotations

import hashlib
import math
import struct
from array import array
from typing import Any

import orjson

from relaygate.billing.tokenizer import count_embedding_inputs
from relaygate.core.embeddings import EmbeddingInput, EmbeddingsResponse
from relaygate.core.usage import Usage
from relaygate.dialects.gemini.embeddings import check_gemini_batch_request
from relaygate.dialects.gemini.shared import error_out
from relaygate.dialects.openai.embeddings import check_openai_embeddings_request
from relaygate.dialects.registry import embeddings_dialect
from relaygate.errors import InvalidRequest

DEFAULT_DIMENSIONS = 256
MAX_DIMENSIONS = 3072


def mock_vector(item: EmbeddingInput, dimensions: int) -> tuple[float, ...]:
    """The unit-length float32 vector of one input."""
    # 0xFF never occurs in UTF-8, so a token-id array never hashes like a text.
    seed = b"\xff" + orjson.dumps(list(item.tokens)) if item.tokens is not None else (item.text or "").encode()
    words = struct.unpack(f"<{dimensions}I", hashlib.shake_256(seed).digest(4 * dimensions))
    raw = [w / 2**31 - 1.0 for w in words]
    norm = math.sqrt(sum(x * x for x in raw)) or 1.0
    return tuple(array("f", [x / norm for x in raw]))


def reply(dialect: str, body: bytes, model: str) -> tuple[int, dict[str, Any]]:
    """The status and JSON answer to an embeddings request in ``dialect`` ("openai" or "gemini")."""
    try:
        parsed = orjson.loads(body)
        if not isinstance(parsed, dict):
            raise InvalidRequest("The request body must be a JSON object.")
        if dialect == "gemini":
            check_gemini_batch_request(parsed, model)
        else:
            model = check_openai_embeddings_request(parsed)
        codec = embeddings_dialect(dialect)
        req = codec.request_to_core(parsed, model)
        dimensions = req.dimensions or DEFAULT_DIMENSIONS
        if dimensions > MAX_DIMENSIONS:
            raise InvalidRequest(f"The mock makes vectors of at most {MAX_DIMENSIONS} dimensions.")
    except (orjson.JSONDecodeError, InvalidRequest) as exc:
        message = exc.message if isinstance(exc, InvalidRequest) else "The request body is not valid JSON."
        return 400, _error(dialect, message)
    vectors = tuple(mock_vector(item, dimensions) for item in req.inputs)
    usage = Usage(input_tokens=count_embedding_inputs(req, model))
    return 200, codec.response_from_core(EmbeddingsResponse(vectors, model, usage), req, model)


def _error(dialect: str, message: str) -> dict[str, Any]:
    if dialect == "gemini":
        return error_out(message, "invalid_request")
    return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": None}}
