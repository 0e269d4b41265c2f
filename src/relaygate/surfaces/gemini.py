"""The Gemini surface: ``models/{model}:generateContent``, ``:streamGenerateContent`` (``alt=sse`` or
the JSON-array form), ``:countTokens``, ``:embedContent``, ``:batchEmbedContents``, and the model list,
under ``/v1beta`` and ``/v1`` (the ``google-genai`` SDK uses ``v1`` by default). Any model reaches it,
whichever format its channel speaks.

Keys come as ``x-goog-api-key``, ``?key=``, or ``Authorization: Bearer``.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from relaygate.auth.gate import authenticate, check_model
from relaygate.auth.keys import bearer_token
from relaygate.auth.records import KeyRecord
from relaygate.billing.tokenizer import count_chat_prompt
from relaygate.dialects.gemini.adapter import GEMINI, GEMINI_JSON_ARRAY
from relaygate.dialects.gemini.embeddings import check_gemini_batch_request, check_gemini_embed_request
from relaygate.dialects.gemini.request import gemini_request_to_core
from relaygate.dialects.openai.convert import core_request_to_openai
from relaygate.errors import GatewayError, InvalidRequest, ModelNotFound, NotFound
from relaygate.meter.call import Call
from relaygate.surfaces.common import (
    CHAT_RELAY,
    EMBEDDINGS_RELAY,
    accept_call,
    add_route,
    client_ip,
    client_request_id,
    json_response,
    read_json_object,
    request_id,
    send_result,
    services_of,
    visible_models,
)

_GENERATION_METHODS = ["generateContent", "streamGenerateContent", "countTokens"]


def render_error(error: GatewayError, rid: str) -> tuple[int, bytes]:
    return GEMINI.error_body(error, rid)


def is_gemini_client(request: web.Request) -> bool:
    """For shared paths such as ``GET /v1/models``: Google's SDKs send the key this way."""
    return "x-goog-api-key" in request.headers or "key" in request.query


def authenticated_key(request: web.Request) -> KeyRecord:
    token = (request.headers.get("x-goog-api-key") or request.query.get("key")
             or bearer_token(request.headers.get("Authorization")))
    return authenticate(services_of(request).snapshots.current.keys_by_hash, token, client_ip(request))


def split_target(target: str) -> tuple[str, str]:
    """``gemini-2.5-flash:generateContent`` → (model, action); ``models/`` prefixes are tolerated."""
    model, sep, action = target.rpartition(":")
    model = model.removeprefix("models/")
    if not sep or not model:
        raise NotFound(f"Invalid URL: expected models/{{model}}:{{action}}, got {target!r}", code="unknown_url")
    return model, action


def validate_contents(body: dict[str, Any]) -> None:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents or not all(isinstance(c, dict) for c in contents):
        raise InvalidRequest("contents: required, a non-empty array of Content objects", param="contents",
                             code="missing_field" if contents is None else "invalid_type")


async def model_action(request: web.Request) -> web.StreamResponse:
    model, action = split_target(request.match_info["target"])
    if action in ("generateContent", "streamGenerateContent"):
        return await _generate(request, model, stream=action == "streamGenerateContent")
    if action == "countTokens":
        return await _count_tokens(request, model)
    if action in ("embedContent", "batchEmbedContents"):
        return await _embed(request, model, batch=action == "batchEmbedContents")
    raise NotFound(f"The method '{action}' is not served here.", code="unknown_url")


async def _generate(request: web.Request, model: str, *, stream: bool) -> web.StreamResponse:
    rid, key, body, raw = await accept_call(request, authenticated_key)
    validate_contents(body)
    check_model(key, model)
    json_array = stream and request.query.get("alt") != "sse"
    call = Call(request_id=rid, surface="gemini.generate", model=model, stream=stream, key=key,
                client_ip=client_ip(request), client_request_id=client_request_id(request),
                body=body, dialect="gemini-json-array" if json_array else "gemini")
    result = await request.app[CHAT_RELAY].relay(call, raw)
    if json_array:
        return await send_result(request, result, rid, GEMINI_JSON_ARRAY, stream_type="application/json")
    return await send_result(request, result, rid, GEMINI)


async def _embed(request: web.Request, model: str, *, batch: bool) -> web.StreamResponse:
    rid, key, body, raw = await accept_call(request, authenticated_key)
    if batch:
        check_gemini_batch_request(body, model)
    else:
        check_gemini_embed_request(body)
    check_model(key, model)
    call = Call(request_id=rid, surface="gemini.batch_embed" if batch else "gemini.embed", model=model,
                stream=False, key=key, client_ip=client_ip(request), client_request_id=client_request_id(request),
                body=body, dialect="gemini" if batch else "gemini-single")
    result = await request.app[EMBEDDINGS_RELAY].relay(call, raw)
    return await send_result(request, result, rid, GEMINI)


async def _count_tokens(request: web.Request, model: str) -> web.StreamResponse:
    """Counted here with the offline tokenizer: an estimate of Google's own count."""
    services = services_of(request)
    key = authenticated_key(request)
    body, _ = await read_json_object(request, services.settings.max_body_bytes)
    wrapped = body.get("generateContentRequest")
    inner: dict[str, Any] = wrapped if isinstance(wrapped, dict) else body
    validate_contents(inner)
    check_model(key, model)
    if not services.snapshots.current.router.serves(model):
        raise ModelNotFound(f"models/{model} is not found", param="model")
    openai_body = core_request_to_openai(gemini_request_to_core(inner, model=model))
    total = count_chat_prompt(openai_body.get("messages") or [], model, openai_body.get("tools"))
    return json_response({"totalTokens": total}, rid=request_id(request))


def _model_object(name: str) -> dict[str, Any]:
    return {"name": f"models/{name}", "version": "001", "displayName": name, "description": "",
            "supportedGenerationMethods": _GENERATION_METHODS}


async def list_models(request: web.Request) -> web.StreamResponse:
    key = authenticated_key(request)
    return json_response({"models": [_model_object(m) for m in visible_models(request, key)]},
                         rid=request_id(request))


async def get_model(request: web.Request) -> web.StreamResponse:
    key = authenticated_key(request)
    name = request.match_info["model"].removeprefix("models/")
    if not key.allows_model(name) or not services_of(request).snapshots.current.router.serves(name):
        raise ModelNotFound(f"models/{name} is not found", param="model")
    return json_response(_model_object(name), rid=request_id(request))


def add_routes(app: web.Application) -> None:
    for version in ("/v1beta", "/v1"):
        add_route(app, "POST", version + "/models/{target}", model_action)
    add_route(app, "GET", "/v1beta/models", list_models)
    add_route(app, "GET", "/v1beta/models/{model}", get_model)
