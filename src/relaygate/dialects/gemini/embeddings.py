"""Gemini's ``models/{model}:embedContent`` and ``:batchEmbedContents`` (spec/gemini.md §6): request
checks, and pure converters to and from the neutral embeddings model.

Upstreams are always sent the batch form (one request per input), which takes one input as well as
many; a client's ``embedContent`` is read as a batch of one and answered in its own single form.
Field names are read in both spellings (``outputDimensionality`` / ``output_dimensionality``).
"""

from __future__ import annotations

from typing import Any

import orjson

from relaygate.core.embeddings import EmbeddingInput, EmbeddingsRequest, EmbeddingsResponse
from relaygate.core.usage import Usage
from relaygate.core.wire import as_dict, as_int, as_list, as_number, as_str, leftovers
from relaygate.dialects.base import EmbeddingsDialect
from relaygate.dialects.gemini.errors import error_status, parse_upstream_error
from relaygate.dialects.gemini.shared import D, pick, spellings, usage_from_gemini
from relaygate.errors import InvalidRequest, UpstreamRejected
from relaygate.scrub import Scrubber

_KNOWN = spellings(("model", "content", "taskType", "title", "outputDimensionality"))
PART_SEPARATOR = "\n"  # between the text parts of one content, for dialects that take one string


# --- checks (the surface's; converters themselves never raise) --------------------------------------

def check_gemini_embed_request(body: dict[str, Any]) -> None:
    """An ``embedContent`` body; raises ``InvalidRequest`` naming the first bad field."""
    _check_one(body, "")


def check_gemini_batch_request(body: dict[str, Any], model: str) -> None:
    """A ``batchEmbedContents`` body: each request as ``embedContent``'s, and each request's ``model``
    (when given) that of the URL, as Google requires."""
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        raise InvalidRequest("requests: required, a non-empty array of EmbedContentRequest objects",
                             param="requests", code=_absent_code(requests))
    for i, request in enumerate(requests):
        where = f"requests[{i}]"
        if not isinstance(request, dict):
            raise InvalidRequest(f"{where}: must be an EmbedContentRequest object", param=where, code="invalid_type")
        _check_one(request, where + ".")
        named = request.get("model")
        if named is not None and (not isinstance(named, str) or named.removeprefix("models/") != model):
            raise InvalidRequest(f"{where}.model: must be models/{model}, the model of the URL",
                                 param=where + ".model", code="invalid_value")


def _check_one(request: dict[str, Any], where: str) -> None:
    content = pick(request, "content")
    if not isinstance(content, dict):
        raise InvalidRequest(f"{where}content: required, a Content object with text parts", param=where + "content",
                             code="missing_field" if content is None else "invalid_type")
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts or not all(isinstance(p, dict) for p in parts):
        raise InvalidRequest(f"{where}content.parts: required, a non-empty array of Part objects",
                             param=where + "content.parts", code=_absent_code(parts))
    if not any(isinstance(p.get("text"), str) and p["text"] for p in parts):
        raise InvalidRequest(f"{where}content.parts: at least one non-empty text part is required",
                             param=where + "content.parts", code="invalid_value")
    for name in ("taskType", "title"):
        value = pick(request, name)
        if value is not None and not isinstance(value, str):
            raise InvalidRequest(f"{where}{name}: must be a string", param=where + name, code="invalid_type")
    dimensions = pick(request, "outputDimensionality")
    if dimensions is not None and as_int(dimensions) is None:
        raise InvalidRequest(f"{where}outputDimensionality: must be an integer", param=where + "outputDimensionality",
                             code="invalid_type")
    if dimensions is not None and not 0 < dimensions <= 1_000_000:
        raise InvalidRequest(f"{where}outputDimensionality: must be a positive integer",
                             param=where + "outputDimensionality", code="invalid_value")


def _absent_code(value: Any) -> str:
    """For a required non-empty array: missing, of the wrong type, or empty."""
    return "missing_field" if value is None else "invalid_value" if value == [] else "invalid_type"


# --- requests ---------------------------------------------------------------------------------------

def gemini_embed_request_to_core(body: dict[str, Any], model: str) -> EmbeddingsRequest:
    """An ``embedContent`` body (the model is the URL's)."""
    return _request(model, [body])


def gemini_batch_request_to_core(body: dict[str, Any], model: str) -> EmbeddingsRequest:
    """A ``batchEmbedContents`` body. One ``dimensions`` serves the whole request in the core: the first
    request's ``outputDimensionality`` (all of them reach a Gemini upstream as they were)."""
    return _request(model, [r for r in as_list(body.get("requests")) if isinstance(r, dict)])


def _request(model: str, requests: list[dict[str, Any]]) -> EmbeddingsRequest:
    dimensions = next((d for r in requests if (d := as_int(pick(r, "outputDimensionality"))) is not None), None)
    return EmbeddingsRequest(model=model.removeprefix("models/"), inputs=tuple(_input_in(r) for r in requests),
                             dimensions=dimensions)


def _input_in(request: dict[str, Any]) -> EmbeddingInput:
    content = as_dict(pick(request, "content"))
    texts = [text for part in as_list(content.get("parts")) if (text := as_str(as_dict(part).get("text")))]
    extra: dict[str, Any] = {**leftovers(request, _KNOWN), "content": content}
    return EmbeddingInput(text=PART_SEPARATOR.join(texts), task_type=as_str(pick(request, "taskType")),
                          title=as_str(pick(request, "title")), extras={D: extra})


def core_embeddings_request_to_gemini(req: EmbeddingsRequest) -> dict[str, Any]:
    """The ``batchEmbedContents`` body; each request names the model, as Google requires."""
    model = "models/" + req.model.removeprefix("models/")
    return {"requests": [_request_out(item, model, req.dimensions) for item in req.inputs]}


def _request_out(item: EmbeddingInput, model: str, dimensions: int | None) -> dict[str, Any]:
    extra = dict(item.extras.get(D, {}))
    content = extra.pop("content", None) or {"parts": [{"text": item.text or ""}]}
    out: dict[str, Any] = {"model": model, "content": content}
    if item.task_type is not None:
        out["taskType"] = item.task_type
    if item.title is not None:
        out["title"] = item.title
    if dimensions is not None:
        out["outputDimensionality"] = dimensions
    return {**out, **{k: v for k, v in extra.items() if k not in out}}


def passthrough_body(body: dict[str, Any], raw: bytes, upstream_model: str) -> bytes:
    """The client's ``batchEmbedContents`` bytes; each request's ``model`` is rewritten only when the
    channel maps the model to another name (Google wants it equal to the URL's)."""
    wanted = "models/" + upstream_model.removeprefix("models/")
    requests = as_list(body.get("requests"))
    if all(not isinstance(r, dict) or r.get("model") in (None, wanted) for r in requests):
        return raw
    edited = [{**r, "model": wanted} if isinstance(r, dict) and r.get("model") is not None else r for r in requests]
    return orjson.dumps({**body, "requests": edited})


# --- responses --------------------------------------------------------------------------------------

def gemini_embeddings_response_to_core(parsed: Any) -> EmbeddingsResponse:
    """``{"embeddings": [{"values"}]}`` (or a single ``{"embedding": {...}}``); an entry that holds no
    vector is left out (the relay counts them). Gemini reports no usage, but ``usageMetadata`` is read
    should it come."""
    body = as_dict(parsed)
    entries = as_list(body.get("embeddings")) if "embeddings" in body else [body.get("embedding")]
    vectors = [vector for entry in entries if (vector := _values_in(entry)) is not None]
    return EmbeddingsResponse(tuple(vectors), None, usage_of(body))


def _values_in(entry: Any) -> tuple[float, ...] | None:
    values = as_dict(entry).get("values")
    if not isinstance(values, list):
        return None
    numbers = [as_number(v) for v in values]
    return None if any(n is None for n in numbers) else tuple(float(n) for n in numbers if n is not None)


def core_embeddings_response_to_gemini(resp: EmbeddingsResponse) -> dict[str, Any]:
    return {"embeddings": [{"values": list(vector)} for vector in resp.vectors]}


def core_embedding_response_to_gemini(resp: EmbeddingsResponse) -> dict[str, Any]:
    """``embedContent``'s answer: the one vector."""
    return {"embedding": {"values": list(resp.vectors[0]) if resp.vectors else []}}


def usage_of(parsed: Any) -> Usage | None:
    usage = usage_from_gemini(as_dict(parsed).get("usageMetadata"))
    return Usage(input_tokens=usage.input_tokens) if usage is not None and usage.input_tokens else None


class GeminiEmbeddingsDialect:
    """``:batchEmbedContents`` as the relay sees it: the form every Gemini upstream is sent."""

    name = D
    takes_token_ids = False

    def request_to_core(self, body: dict[str, Any], model: str) -> EmbeddingsRequest:
        return gemini_batch_request_to_core(body, model)

    def request_from_core(self, req: EmbeddingsRequest) -> dict[str, Any]:
        return core_embeddings_request_to_gemini(req)

    def passthrough_body(self, body: dict[str, Any], raw: bytes, upstream_model: str) -> bytes:
        return passthrough_body(body, raw, upstream_model)

    def response_to_core(self, parsed: Any) -> EmbeddingsResponse:
        return gemini_embeddings_response_to_core(parsed)

    def response_from_core(self, resp: EmbeddingsResponse, req: EmbeddingsRequest, model: str) -> dict[str, Any]:
        return core_embeddings_response_to_gemini(resp)

    def usage_of(self, parsed: Any) -> Usage | None:
        return usage_of(parsed)

    def parse_upstream_error(self, status: int, body: bytes, scrubber: Scrubber) -> UpstreamRejected:
        return parse_upstream_error(status, body, scrubber)

    def error_status(self, parsed: Any) -> int | None:
        return error_status(parsed)


class GeminiSingleEmbeddingsDialect(GeminiEmbeddingsDialect):
    """A client's ``embedContent``: read as a batch of one, answered in its own single form. Never the
    same object as a channel's dialect, so it always goes through the core and reaches Gemini upstreams
    as a batch of one (see the module docstring)."""

    name = "gemini-single"

    def request_to_core(self, body: dict[str, Any], model: str) -> EmbeddingsRequest:
        return gemini_embed_request_to_core(body, model)

    def response_from_core(self, resp: EmbeddingsResponse, req: EmbeddingsRequest, model: str) -> dict[str, Any]:
        return core_embedding_response_to_gemini(resp)


GEMINI_EMBEDDINGS: EmbeddingsDialect = GeminiEmbeddingsDialect()
GEMINI_SINGLE_EMBEDDINGS: EmbeddingsDialect = GeminiSingleEmbeddingsDialect()
