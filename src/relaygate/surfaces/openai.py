"""The OpenAI-compatible surface: chat completions, embeddings, models, and the dashboard balance
endpoints."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson
from aiohttp import web

from relaygate.auth.gate import authenticate, check_model
from relaygate.auth.keys import bearer_token
from relaygate.auth.records import KeyRecord
from relaygate.billing.money import NANO_PER_USD
from relaygate.dialects.openai.adapter import OPENAI
from relaygate.dialects.openai.embeddings import check_openai_embeddings_request
from relaygate.dialects.openai.errors import error_body
from relaygate.errors import GatewayError, InvalidRequest, ModelNotFound
from relaygate.meter.call import Call
from relaygate.surfaces import anthropic, gemini
from relaygate.surfaces.common import (
    CHAT_RELAY,
    EMBEDDINGS_RELAY,
    accept_call,
    add_route,
    client_ip,
    client_request_id,
    json_response,
    request_id,
    send_result,
    services_of,
    visible_models,
)

_MODEL_CREATED = 1_700_000_000
_UNLIMITED_USD = 100_000_000


def render_error(error: GatewayError, rid: str) -> tuple[int, bytes]:
    return error.status, error_body(error, rid)


def authenticated_key(request: web.Request) -> KeyRecord:
    services = services_of(request)
    token = bearer_token(request.headers.get("Authorization"))
    return authenticate(services.snapshots.current.keys_by_hash, token, client_ip(request))


def validate_chat_body(body: dict[str, Any]) -> tuple[str, bool]:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a non-empty string.", param="model",
                             code="missing_model" if model is None else "invalid_type")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise InvalidRequest("'messages' is required and must be a non-empty array.", param="messages",
                             code="missing_messages" if messages is None else "invalid_type")
    if not all(isinstance(m, dict) for m in messages):
        raise InvalidRequest("Every entry of 'messages' must be an object.", param="messages", code="invalid_type")
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be true or false.", param="stream", code="invalid_type")
    options = body.get("stream_options")
    if options is not None and not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object.", param="stream_options", code="invalid_type")
    return model, bool(stream)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    rid, key, body, raw = await accept_call(request, authenticated_key)
    model, stream = validate_chat_body(body)
    check_model(key, model)
    call = Call(request_id=rid, surface="openai.chat", model=model, stream=stream, key=key,
                client_ip=client_ip(request), client_request_id=client_request_id(request), body=body)
    result = await request.app[CHAT_RELAY].relay(call, raw)
    return await send_result(request, result, rid, OPENAI)


async def embeddings(request: web.Request) -> web.StreamResponse:
    rid, key, body, raw = await accept_call(request, authenticated_key)
    model = check_openai_embeddings_request(body)
    check_model(key, model)
    call = Call(request_id=rid, surface="openai.embeddings", model=model, stream=False, key=key,
                client_ip=client_ip(request), client_request_id=client_request_id(request), body=body)
    result = await request.app[EMBEDDINGS_RELAY].relay(call, raw)
    return await send_result(request, result, rid, OPENAI)


def _model_object(name: str) -> dict[str, Any]:
    return {"id": name, "object": "model", "created": _MODEL_CREATED, "owned_by": "relaygate"}


async def list_models(request: web.Request) -> web.StreamResponse:
    """OpenAI's list, or Anthropic's when the caller is an Anthropic client (``anthropic-version``)."""
    if anthropic.is_anthropic_client(request):
        return await anthropic.list_models(request)
    if gemini.is_gemini_client(request):
        return await gemini.list_models(request)
    return await _openai_list_models(request)


async def _openai_list_models(request: web.Request) -> web.StreamResponse:
    key = authenticated_key(request)
    data = [_model_object(m) for m in visible_models(request, key)]
    return json_response({"object": "list", "data": data}, rid=request_id(request))


async def get_model(request: web.Request) -> web.StreamResponse:
    if anthropic.is_anthropic_client(request):
        return await anthropic.get_model(request)
    if gemini.is_gemini_client(request):
        return await gemini.get_model(request)
    return await _openai_get_model(request)


async def _openai_get_model(request: web.Request) -> web.StreamResponse:
    key = authenticated_key(request)
    name = request.match_info["model"]
    router = services_of(request).snapshots.current.router
    if not key.allows_model(name) or not router.serves(name):
        raise ModelNotFound(f"The model '{name}' does not exist", param="model")
    return json_response(_model_object(name), rid=request_id(request))


def _usd_fragment(nano: int, scale: int = 1) -> orjson.Fragment:
    """A JSON number rendered from exact nano-dollars (the wire format wants a decimal number)."""
    value = Decimal(nano * scale) / NANO_PER_USD
    return orjson.Fragment(format(value.normalize(), "f").encode())


async def billing_subscription(request: web.Request) -> web.StreamResponse:
    key = authenticated_key(request)
    limit = _usd_fragment(key.quota_nano) if key.quota_nano is not None else _UNLIMITED_USD
    return json_response({
        "object": "billing_subscription", "has_payment_method": True,
        "soft_limit_usd": limit, "hard_limit_usd": limit, "system_hard_limit_usd": limit,
        "access_until": key.expires_at or 0,
    }, rid=request_id(request))


async def billing_usage(request: web.Request) -> web.StreamResponse:
    """Spend so far, in cents, as the chat front-ends that show a balance expect."""
    key = authenticated_key(request)
    spent = services_of(request).meter.spent(key.id)
    return json_response({"object": "list", "total_usage": _usd_fragment(spent, 100)}, rid=request_id(request))


def add_routes(app: web.Application) -> None:
    for prefix in ("/v1", ""):
        add_route(app, "POST", prefix + "/chat/completions", chat_completions)
        add_route(app, "POST", prefix + "/embeddings", embeddings)
        add_route(app, "GET", prefix + "/dashboard/billing/subscription", billing_subscription)
        add_route(app, "GET", prefix + "/dashboard/billing/usage", billing_usage)
    add_route(app, "GET", "/v1/models", list_models)
    add_route(app, "GET", "/v1/models/{model}", get_model)
