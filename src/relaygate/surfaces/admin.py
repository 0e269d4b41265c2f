"""The operator's admin API under /api (admin credential only; the OpenAPI document is public).

Errors use OpenAI's shape ``{"error": {"message", "type", "param", "code"}}`` with stable codes.
The operations themselves live in ``relaygate.admin.service``, shared with the CLI.
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from relaygate.admin.openapi import openapi_document
from relaygate.admin.service import AdminService
from relaygate.auth.gate import key_digest
from relaygate.auth.keys import bearer_token
from relaygate.dialects.openai.errors import error_body
from relaygate.errors import AuthenticationFailed, GatewayError, NotFound
from relaygate.surfaces.common import Handler, add_route, json_response, read_json_object, request_id, services_of

ADMIN_BODY_LIMIT = 1024 * 1024
_MAX_ID = 2**31 - 1

Endpoint = Callable[[web.Request, AdminService], Awaitable[Any]]


def render_error(error: GatewayError, rid: str) -> tuple[int, bytes]:
    return error.status, error_body(error, rid)


def require_admin(request: web.Request) -> None:
    """Bearer admin key, compared in constant time with the stored hash."""
    token = bearer_token(request.headers.get("Authorization"))
    challenge = {"WWW-Authenticate": 'Bearer realm="relaygate-admin"'}
    if token is None:
        raise AuthenticationFailed("The admin API needs 'Authorization: Bearer <admin key>'.",
                                   code="missing_api_key", headers=challenge)
    expected = services_of(request).snapshots.current.admin_key_hash
    if not hmac.compare_digest(key_digest(token).encode(), expected.encode()):
        raise AuthenticationFailed("Incorrect admin key provided.", headers=challenge)


def _service(request: web.Request) -> AdminService:
    services = services_of(request)
    return AdminService(services.engine, services.box, http=services.http, health=services.health,
                        on_change=services.snapshots.reload)


def endpoint(status: int = 200) -> Callable[[Endpoint], Handler]:
    """An authenticated admin handler whose result is sent as JSON with ``status``."""

    def decorate(fn: Endpoint) -> Handler:
        async def handler(request: web.Request) -> web.StreamResponse:
            require_admin(request)
            payload = await fn(request, _service(request))
            return json_response(payload, status=status, rid=request_id(request))

        handler.__name__ = fn.__name__
        return handler

    return decorate


async def _body(request: web.Request) -> dict[str, Any]:
    limit = min(ADMIN_BODY_LIMIT, services_of(request).settings.max_body_bytes)
    body, _ = await read_json_object(request, limit)
    return body


def _id(request: web.Request) -> int:
    raw = request.match_info["id"]
    if not raw.isascii() or not raw.isdigit() or len(raw) > 10 or int(raw) > _MAX_ID:
        raise NotFound(f"No item with id '{raw[:40]}'.", param="id")
    return int(raw)


def _listing(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": items}


# --- keys ---------------------------------------------------------------------------------------

@endpoint(201)
async def create_key(request: web.Request, admin: AdminService) -> Any:
    return await admin.create_key(await _body(request))


@endpoint()
async def list_keys(request: web.Request, admin: AdminService) -> Any:
    return _listing(await admin.list_keys())


@endpoint()
async def get_key(request: web.Request, admin: AdminService) -> Any:
    return await admin.get_key(_id(request))


@endpoint()
async def update_key(request: web.Request, admin: AdminService) -> Any:
    key_id = _id(request)
    return await admin.update_key(key_id, await _body(request))


@endpoint()
async def disable_key(request: web.Request, admin: AdminService) -> Any:
    return await admin.disable_key(_id(request))


# --- channels -----------------------------------------------------------------------------------

@endpoint(201)
async def create_channel(request: web.Request, admin: AdminService) -> Any:
    return await admin.create_channel(await _body(request))


@endpoint()
async def list_channels(request: web.Request, admin: AdminService) -> Any:
    return _listing(await admin.list_channels())


@endpoint()
async def get_channel(request: web.Request, admin: AdminService) -> Any:
    return await admin.get_channel(_id(request))


@endpoint()
async def update_channel(request: web.Request, admin: AdminService) -> Any:
    channel_id = _id(request)
    return await admin.update_channel(channel_id, await _body(request))


@endpoint()
async def disable_channel(request: web.Request, admin: AdminService) -> Any:
    return await admin.disable_channel(_id(request))


@endpoint()
async def test_channel(request: web.Request, admin: AdminService) -> Any:
    return await admin.test_channel(_id(request))


# --- prices -------------------------------------------------------------------------------------

@endpoint()
async def list_prices(request: web.Request, admin: AdminService) -> Any:
    return _listing(await admin.list_prices())


@endpoint()
async def put_price(request: web.Request, admin: AdminService) -> Any:
    return await admin.put_price(request.match_info["pattern"], await _body(request))


@endpoint()
async def delete_price(request: web.Request, admin: AdminService) -> Any:
    return await admin.delete_price(request.match_info["pattern"])


# --- usage --------------------------------------------------------------------------------------

@endpoint()
async def list_usage(request: web.Request, admin: AdminService) -> Any:
    return await admin.list_usage(request.query)


@endpoint()
async def usage_summary(request: web.Request, admin: AdminService) -> Any:
    return await admin.usage_summary(request.query)


@endpoint()
async def get_usage(request: web.Request, admin: AdminService) -> Any:
    return await admin.get_usage(request.match_info["request_id"])


async def openapi(request: web.Request) -> web.StreamResponse:
    return json_response(openapi_document(), rid=request_id(request))


ROUTES: tuple[tuple[str, str, Handler], ...] = (
    ("GET", "/api/openapi.json", openapi),
    ("POST", "/api/keys", create_key),
    ("GET", "/api/keys", list_keys),
    ("GET", "/api/keys/{id}", get_key),
    ("PATCH", "/api/keys/{id}", update_key),
    ("POST", "/api/keys/{id}/disable", disable_key),
    ("POST", "/api/channels", create_channel),
    ("GET", "/api/channels", list_channels),
    ("GET", "/api/channels/{id}", get_channel),
    ("PATCH", "/api/channels/{id}", update_channel),
    ("POST", "/api/channels/{id}/disable", disable_channel),
    ("POST", "/api/channels/{id}/test", test_channel),
    ("GET", "/api/prices", list_prices),
    ("PUT", r"/api/prices/{pattern:[\s\S]+}", put_price),
    ("DELETE", r"/api/prices/{pattern:[\s\S]+}", delete_price),
    ("GET", "/api/usage", list_usage),
    ("GET", "/api/usage/summary", usage_summary),
    ("GET", "/api/usage/{request_id}", get_usage),
)


def add_routes(app: web.Application) -> None:
    for method, path, handler in ROUTES:
        add_route(app, method, path, handler)
