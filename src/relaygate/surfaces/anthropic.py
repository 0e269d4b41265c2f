"""The Anthropic surface: ``/v1/messages`` (streaming or not), ``/v1/messages/count_tokens``, and the
Anthropic-shaped model list. Any model reaches it, whichever format its channel speaks.

Keys come as ``x-api-key`` or ``Authorization: Bearer`` (the current SDK sends the latter).
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from relaygate.auth.gate import authenticate, check_model
from relaygate.auth.keys import bearer_token
from relaygate.auth.records import KeyRecord
from relaygate.billing.tokenizer import count_chat_prompt, count_text
from relaygate.dialects.anthropic.adapter import ANTHROPIC
from relaygate.errors import GatewayError, InvalidRequest, ModelNotFound
from relaygate.meter.call import Call
from relaygate.surfaces.common import (
    CHAT_RELAY,
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

_PASSTHROUGH_HEADERS = ("anthropic-beta", "anthropic-version")
_MODEL_CREATED_AT = "2023-11-14T22:13:20Z"


def render_error(error: GatewayError, rid: str) -> tuple[int, bytes]:
    return ANTHROPIC.error_body(error, rid)


def is_anthropic_client(request: web.Request) -> bool:
    """new-api's rule for shared paths such as ``GET /v1/models``: an Anthropic SDK sends this header."""
    return "anthropic-version" in request.headers


def authenticated_key(request: web.Request) -> KeyRecord:
    services = services_of(request)
    token = request.headers.get("x-api-key") or bearer_token(request.headers.get("Authorization"))
    return authenticate(services.snapshots.current.keys_by_hash, token, client_ip(request))


def validate_messages_body(body: dict[str, Any], *, counting: bool = False) -> tuple[str, bool]:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("model: field required (a non-empty string)", param="model",
                             code="missing_model" if model is None else "invalid_type")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise InvalidRequest("messages: field required (a non-empty array of objects)", param="messages",
                             code="missing_messages" if messages is None else "invalid_type")
    if not counting:
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
            raise InvalidRequest("max_tokens: field required (a positive integer)", param="max_tokens",
                                 code="missing_field" if max_tokens is None else "invalid_type")
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("stream: must be a boolean", param="stream", code="invalid_type")
    return model, bool(stream)


async def messages(request: web.Request) -> web.StreamResponse:
    rid, key, body, raw = await accept_call(request, authenticated_key)
    model, stream = validate_messages_body(body)
    check_model(key, model)
    headers = {name: request.headers[name] for name in _PASSTHROUGH_HEADERS if name in request.headers}
    call = Call(request_id=rid, surface="anthropic.messages", model=model, stream=stream, key=key,
                client_ip=client_ip(request), client_request_id=client_request_id(request),
                body=body, client_headers=headers, dialect="anthropic")
    result = await request.app[CHAT_RELAY].relay(call, raw)
    return await send_result(request, result, rid, ANTHROPIC)


async def count_tokens(request: web.Request) -> web.StreamResponse:
    """Counted here with the offline tokenizer (free, and the same for every upstream dialect); for
    Claude models it is an estimate of Anthropic's own count."""
    services = services_of(request)
    key = authenticated_key(request)
    body, _ = await read_json_object(request, services.settings.max_body_bytes)
    model, _ = validate_messages_body(body, counting=True)
    check_model(key, model)
    if not services.snapshots.current.router.serves(model):
        raise ModelNotFound(f"model: {model} does not exist or you do not have access to it", param="model")
    total = count_chat_prompt(body["messages"], model, body.get("tools")) + _system_tokens(body.get("system"), model)
    return json_response({"input_tokens": total}, rid=request_id(request))


def _system_tokens(system: Any, model: str) -> int:
    if isinstance(system, str):
        return count_text(system, model)
    if isinstance(system, list):
        texts = [b["text"] for b in system if isinstance(b, dict) and isinstance(b.get("text"), str)]
        return sum(count_text(text, model) for text in texts)
    return 0


def _model_object(name: str) -> dict[str, Any]:
    return {"type": "model", "id": name, "display_name": name, "created_at": _MODEL_CREATED_AT}


async def list_models(request: web.Request) -> web.StreamResponse:
    key = authenticated_key(request)
    data = [_model_object(m) for m in visible_models(request, key)]
    return json_response({"data": data, "has_more": False, "first_id": data[0]["id"] if data else None,
                          "last_id": data[-1]["id"] if data else None}, rid=request_id(request))


async def get_model(request: web.Request) -> web.StreamResponse:
    key = authenticated_key(request)
    name = request.match_info["model"]
    if not key.allows_model(name) or not services_of(request).snapshots.current.router.serves(name):
        raise ModelNotFound(f"model: {name}", param="model")
    return json_response(_model_object(name), rid=request_id(request))


def add_routes(app: web.Application) -> None:
    add_route(app, "POST", "/v1/messages", messages)
    add_route(app, "POST", "/v1/messages/count_tokens", count_tokens)
