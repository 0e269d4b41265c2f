"""The midjourney-proxy task API (spec/midjourney.md): submits, task queries, image seeds, signed
image links, and the upstreams' callbacks; every route also under the speed-mode prefixes
``/mj-fast``, ``/mj-relax`` and ``/mj-turbo``. Keys come as ``Authorization: Bearer`` or as
``mj-api-secret``. Errors use the proxies' result shape (``code``, ``description``)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from relaygate.auth.gate import authenticate
from relaygate.auth.keys import bearer_token
from relaygate.auth.records import KeyRecord
from relaygate.dialects.midjourney.errors import error_body
from relaygate.dialects.midjourney.requests import Endpoint, check_submit
from relaygate.errors import GatewayError, InvalidRequest, PermissionDenied
from relaygate.meter.call import Call
from relaygate.relay.midjourney import SURFACE, MidjourneyRelay, MjRefused
from relaygate.relay.midjourney_media import MidjourneyMedia
from relaygate.relay.midjourney_tasks import MidjourneyTasks
from relaygate.surfaces.common import (
    accept_call,
    add_route,
    client_ip,
    client_request_id,
    json_response,
    read_json_object,
    request_id,
    services_of,
)

MJ_RELAY: web.AppKey[MidjourneyRelay] = web.AppKey("mj_relay", MidjourneyRelay)
MJ_TASKS: web.AppKey[MidjourneyTasks] = web.AppKey("mj_tasks", MidjourneyTasks)
MJ_MEDIA: web.AppKey[MidjourneyMedia] = web.AppKey("mj_media", MidjourneyMedia)

MODE_PREFIXES = ("mj-fast", "mj-relax", "mj-turbo")
_SUBMIT_PATHS = {
    "/mj/submit/imagine": Endpoint.IMAGINE, "/mj/submit/action": Endpoint.ACTION,
    "/mj/submit/blend": Endpoint.BLEND, "/mj/submit/modal": Endpoint.MODAL,
    "/mj/submit/describe": Endpoint.DESCRIBE, "/mj/submit/shorten": Endpoint.SHORTEN,
    "/mj/insight-face/swap": Endpoint.SWAP_FACE, "/mj/submit/video": Endpoint.VIDEO,
    "/mj/submit/upload-discord-images": Endpoint.UPLOAD, "/mj/submit/change": Endpoint.CHANGE,
    "/mj/submit/simple-change": Endpoint.SIMPLE_CHANGE, "/mj/submit/edits": Endpoint.EDITS,
}
_LIST_LIMIT = 1000


def render_error(error: GatewayError, rid: str) -> tuple[int, bytes]:
    if isinstance(error, MjRefused):
        return error.status, orjson.dumps(error.answer)
    return error.status, error_body(error, rid)


def _key(request: web.Request) -> KeyRecord:
    token = bearer_token(request.headers.get("Authorization")) or request.headers.get("mj-api-secret") or None
    return authenticate(services_of(request).snapshots.current.keys_by_hash, token, client_ip(request))


def _mode(request: web.Request) -> str | None:
    first = request.path.split("/", 2)[1]
    return first if first in MODE_PREFIXES else None


def _origin(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


def _submit_handler(endpoint: Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def submit(request: web.Request) -> web.StreamResponse:
        rid, key, body, _raw = await accept_call(request, _key)
        checked = check_submit(endpoint, body)
        call = Call(request_id=rid, surface=SURFACE, model=checked.price_model, stream=False, key=key,
                    client_ip=client_ip(request), client_request_id=client_request_id(request), body=body)
        answer = await request.app[MJ_RELAY].submit(call, checked, _mode(request), _origin(request))
        return json_response(answer.body, status=answer.status, rid=rid)

    submit.__name__ = f"mj_submit_{endpoint.value}"
    return submit


async def fetch(request: web.Request) -> web.StreamResponse:
    key = _key(request)
    shown = await request.app[MJ_RELAY].fetch(key, request.match_info["task_id"], _origin(request))
    return json_response(shown, rid=request_id(request))


async def list_by_condition(request: web.Request) -> web.StreamResponse:
    key = _key(request)
    body, _raw = await read_json_object(request, services_of(request).settings.max_body_bytes)
    ids = body.get("ids")
    if ids is None:
        ids = []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise InvalidRequest("'ids' must be an array of task ids.", param="ids", code="invalid_type")
    if len(ids) > _LIST_LIMIT:
        raise InvalidRequest(f"'ids' may name at most {_LIST_LIMIT} tasks.", param="ids", code="invalid_value")
    shown = await request.app[MJ_RELAY].listed(key, ids, _origin(request))
    return json_response(shown, rid=request_id(request))


async def image_seed(request: web.Request) -> web.StreamResponse:
    key = _key(request)
    answer = await request.app[MJ_RELAY].image_seed(key, request.match_info["task_id"])
    return json_response(answer.body, status=answer.status, rid=request_id(request))


async def image(request: web.Request) -> web.StreamResponse:
    """A task's image or video through a signed, expiring link (no key: the signature is the grant)."""
    query = request.query
    found = await request.app[MJ_MEDIA].file(request.match_info["task_id"], query.get("media", "image"),
                                             query.get("expires", ""), query.get("signature", ""))
    response = web.Response(body=found.file.data, content_type=found.file.content_type.split(";")[0])
    response.headers["Cache-Control"] = "private, max-age=3600" if found.final else "no-cache"
    return response


async def notify(request: web.Request) -> web.StreamResponse:
    """An upstream's callback with a task object; the path token proves it is the channel's."""
    relay = request.app[MJ_RELAY]
    raw_id = request.match_info["channel_id"]
    channel_id = int(raw_id) if raw_id.isdigit() and len(raw_id) < 10 else -1
    if not hmac.compare_digest(relay.callback_token(channel_id), request.match_info["token"]):
        raise PermissionDenied("This callback address is not valid.", code="invalid_signature")
    body, _raw = await read_json_object(request, services_of(request).settings.max_body_bytes)
    known = await request.app[MJ_TASKS].callback(channel_id, body)
    return json_response({"code": 1 if known else 3, "description": "ok" if known else "unknown task"},
                         rid=request_id(request))


def add_routes(app: web.Application) -> None:
    for prefix in ("", *(f"/{mode}" for mode in MODE_PREFIXES)):
        for path, endpoint in _SUBMIT_PATHS.items():
            add_route(app, "POST", prefix + path, _submit_handler(endpoint))
        add_route(app, "GET", prefix + "/mj/task/{task_id}/fetch", fetch)
        add_route(app, "POST", prefix + "/mj/task/list-by-condition", list_by_condition)
        add_route(app, "GET", prefix + "/mj/task/{task_id}/image-seed", image_seed)
        add_route(app, "GET", prefix + "/mj/image/{task_id}", image)
    add_route(app, "POST", "/mj/notify/{channel_id}/{token}", notify)
