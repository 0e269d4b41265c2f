"""The midjourney-proxy task API (spec/midjourney.md): submits, task queries, image seeds, signed
image links, and the upstreams' callbacks; every route also under the speed-mode prefixes
``/mj-fast``, ``/mj-relax`` and ``/mj-turbo``. Keys come as ``Authorization: Bearer`` or as
``mj-api-secret``. Errors use the proxies' result shape (``code``, ``description``)."""

from __future__ import annotations

import base64
import hmac
from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web

from relaygate.auth.gate import authenticate
from relaygate.auth.keys import bearer_token
from relaygate.auth.records import KeyRecord
from relaygate.dialects.midjourney.errors import error_body
from relaygate.dialects.midjourney.requests import Endpoint, check_submit
from relaygate.errors import GatewayError, InvalidRequest, NotFound, PermissionDenied, UpstreamError
from relaygate.providers.base import (
    UpstreamBodyTooLarge,
    UpstreamConnectError,
    UpstreamReadTimeout,
    UpstreamRequest,
)
from relaygate.relay.call import Call
from relaygate.relay.midjourney import SURFACE, MidjourneyRelay, MjRefused
from relaygate.relay.midjourney_tasks import MidjourneyTasks
from relaygate.relay.signed_media import CachedFile, MediaCache, SignedLinks
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
from relaygate.tasks import store

MJ_RELAY: web.AppKey[MidjourneyRelay] = web.AppKey("mj_relay", MidjourneyRelay)
MJ_TASKS: web.AppKey[MidjourneyTasks] = web.AppKey("mj_tasks", MidjourneyTasks)
MJ_LINKS: web.AppKey[SignedLinks] = web.AppKey("mj_links", SignedLinks)
MJ_CACHE: web.AppKey[MediaCache] = web.AppKey("mj_cache", MediaCache)

MODE_PREFIXES = ("mj-fast", "mj-relax", "mj-turbo")
_SUBMIT_PATHS = {
    "/mj/submit/imagine": Endpoint.IMAGINE, "/mj/submit/action": Endpoint.ACTION,
    "/mj/submit/blend": Endpoint.BLEND, "/mj/submit/modal": Endpoint.MODAL,
    "/mj/submit/describe": Endpoint.DESCRIBE, "/mj/submit/shorten": Endpoint.SHORTEN,
    "/mj/insight-face/swap": Endpoint.SWAP_FACE, "/mj/submit/video": Endpoint.VIDEO,
    "/mj/submit/upload-discord-images": Endpoint.UPLOAD, "/mj/submit/change": Endpoint.CHANGE,
    "/mj/submit/simple-change": Endpoint.SIMPLE_CHANGE, "/mj/submit/edits": Endpoint.EDITS,
}
_MAX_IMAGE_BYTES = 64 * 1024 * 1024
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
    relay = request.app[MJ_RELAY]
    task = await relay.owned_task(key, request.match_info["task_id"])
    return json_response(relay.render(task, _origin(request)), rid=request_id(request))


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
    relay = request.app[MJ_RELAY]
    origin = _origin(request)
    return json_response([relay.render(t, origin) for t in await relay.tasks(key, ids)], rid=request_id(request))


async def image_seed(request: web.Request) -> web.StreamResponse:
    key = _key(request)
    answer = await request.app[MJ_RELAY].image_seed(key, request.match_info["task_id"])
    return json_response(answer.body, status=answer.status, rid=request_id(request))


async def image(request: web.Request) -> web.StreamResponse:
    """A task's image or video through a signed, expiring link (no key: the signature is the grant)."""
    task_id = request.match_info["task_id"]
    media = request.query.get("media", "image")
    if not request.app[MJ_LINKS].valid(task_id, media, request.query.get("expires", ""),
                                       request.query.get("signature", "")):
        raise PermissionDenied("This image link is not valid or has expired; fetch the task again for a new one.",
                               code="invalid_signature")
    services = services_of(request)
    task = await store.get(services.engine, task_id)
    relay = request.app[MJ_RELAY]
    url = relay.media_url(task, media) if task is not None else None
    if task is None or url is None:
        raise NotFound("The task has no such image.", code="image_not_found")
    cache = request.app[MJ_CACHE]
    file = cache.get(url)
    if file is None:
        file = await _download(request, task["channel_id"], url)
        if task["status"] == "SUCCESS":  # previews of running tasks change; finished media do not
            cache.put(url, file)
    response = web.Response(body=file.data, content_type=file.content_type.split(";")[0])
    response.headers["Cache-Control"] = "private, max-age=3600" if task["status"] == "SUCCESS" else "no-cache"
    return response


async def _download(request: web.Request, channel_id: int | None, url: str) -> CachedFile:
    services = services_of(request)
    if url.startswith("data:"):  # the offline mock's images travel inside the task
        return _data_url(url)
    channel = services.snapshots.current.channels.get(channel_id or -1)
    if channel is None or not url.startswith(("http://", "https://")):
        raise NotFound("The task has no such image.", code="image_not_found")
    # The media host named by the operator's upstream; it gets no channel secret.
    upstream = UpstreamRequest("GET", url, {"Accept": "image/*,video/*"}, b"")
    upstream.connect_timeout = services.settings.connect_timeout_s
    upstream.read_timeout = services.settings.first_byte_timeout_s
    try:
        response = await services.http.send(upstream)
        try:
            data = await response.read(_MAX_IMAGE_BYTES)
        finally:
            response.close()
    except (UpstreamConnectError, UpstreamReadTimeout, UpstreamBodyTooLarge) as exc:
        raise UpstreamError("The image could not be fetched from the upstream.") from exc
    if response.status != 200:
        raise UpstreamError(f"The upstream answered HTTP {response.status} for the image.")
    return CachedFile(response.content_type or "image/png", data)


def _data_url(url: str) -> CachedFile:
    header, _, data = url.partition(",")
    if not header.endswith(";base64"):
        raise NotFound("The task has no such image.", code="image_not_found")
    try:
        return CachedFile(header[5:].removesuffix(";base64") or "application/octet-stream",
                          base64.b64decode(data, validate=True))
    except ValueError as exc:
        raise NotFound("The task has no such image.", code="image_not_found") from exc


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
