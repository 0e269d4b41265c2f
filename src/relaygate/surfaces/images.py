"""OpenAI's image routes: ``/v1/images/generations`` (JSON), ``/v1/images/edits`` and
``/v1/images/variations`` (multipart), each synchronous or, with ``?async=true``, as a task polled at
``GET /v1/images/tasks/{task_id}`` (spec/images-async.md). Errors in OpenAI's shape."""

from __future__ import annotations

from aiohttp import web

from relaygate.auth.gate import check_model
from relaygate.core.images import ImageJob, ImageOperation
from relaygate.dialects.openai.adapter import OPENAI
from relaygate.dialects.openai.images import check_image_request
from relaygate.errors import InvalidRequest, ShuttingDown
from relaygate.meter.call import Call
from relaygate.relay.image_stream import ImageStreams
from relaygate.relay.image_tasks import SURFACE, ImageTasks
from relaygate.relay.images import ImagesRelay
from relaygate.relay.multipart import FilePart, ImageForm
from relaygate.surfaces.common import (
    accept_call,
    add_route,
    client_ip,
    client_request_id,
    json_response,
    read_body,
    request_id,
    send_result,
    services_of,
)
from relaygate.surfaces.multipart import read_image_request
from relaygate.surfaces.openai import authenticated_key

IMAGES_RELAY: web.AppKey[ImagesRelay] = web.AppKey("images_relay", ImagesRelay)
IMAGE_TASKS: web.AppKey[ImageTasks] = web.AppKey("image_tasks", ImageTasks)
IMAGE_STREAMS: web.AppKey[ImageStreams] = web.AppKey("image_streams", ImageStreams)

_EDIT_TYPES = ("image/png", "image/jpeg", "image/webp")


async def generations(request: web.Request) -> web.StreamResponse:
    rid, key, body, raw = await accept_call(request, authenticated_key)
    job = check_image_request(ImageOperation.GENERATE, body, form=False)
    check_model(key, job.model)
    call = Call(request_id=rid, surface=SURFACE, model=job.model, stream=False, key=key,
                client_ip=client_ip(request), client_request_id=client_request_id(request), body=body)
    if _is_async(request):
        return await _submit(request, call, job, None)
    if job.stream:
        return await send_result(request, await request.app[IMAGE_STREAMS].relay(call, job, None, raw), rid, OPENAI)
    result = await request.app[IMAGES_RELAY].relay(call, job, None, raw)
    return await send_result(request, result, rid, OPENAI)


async def edits(request: web.Request) -> web.StreamResponse:
    return await _multipart(request, ImageOperation.EDIT, async_allowed=True)


async def variations(request: web.Request) -> web.StreamResponse:
    return await _multipart(request, ImageOperation.VARIATION, async_allowed=False)


async def _multipart(request: web.Request, operation: ImageOperation, *, async_allowed: bool) -> web.StreamResponse:
    services = services_of(request)
    rid = request_id(request)
    if services.draining:
        raise ShuttingDown("The gateway is shutting down; retry on another instance.")
    key = authenticated_key(request)  # before reading the body: an unknown caller cannot make us read 50 MiB
    reading = read_image_request(request, max_total_bytes=services.settings.max_image_upload_bytes)
    with await read_body(request, reading) as form:
        job = check_image_request(operation, form.fields, form=True)
        _check_files(form, job)
        check_model(key, job.model)
        call = Call(request_id=rid, surface=SURFACE, model=job.model, stream=False, key=key,
                    client_ip=client_ip(request), client_request_id=client_request_id(request), body=dict(job.params))
        if async_allowed and _is_async(request):
            return await _submit(request, call, job, form)
        if job.stream:
            return await send_result(request, await request.app[IMAGE_STREAMS].relay(call, job, form, None), rid,
                                     OPENAI)
        result = await request.app[IMAGES_RELAY].relay(call, job, form)
        return await send_result(request, result, rid, OPENAI)


def _check_files(form: ImageForm, job: ImageJob) -> None:
    """The files an edit or variation needs, of types an upstream can decode (checked by their bytes)."""
    images = form.images()
    if not images:
        raise InvalidRequest("An image file is required: send it as the 'image' field (or repeated 'image[]').",
                             param="image", code="missing_image")
    single = job.operation is ImageOperation.VARIATION or job.model == "dall-e-2"
    if single and len(images) > 1:
        raise InvalidRequest(f"{job.model} takes exactly one image.", param="image", code="invalid_value")
    png_only = job.model in ("dall-e-2",) or job.operation is ImageOperation.VARIATION
    for part in images:
        _check_file(part, ("image/png",) if png_only else _EDIT_TYPES)
    mask = form.mask()
    if mask is not None:
        if job.operation is ImageOperation.VARIATION:
            raise InvalidRequest("Variations take no mask.", param="mask", code="invalid_value")
        _check_file(mask, ("image/png",))


def _check_file(part: FilePart, allowed: tuple[str, ...]) -> None:
    if part.size == 0:
        raise InvalidRequest(f"The file in '{part.name}' is empty.", param=part.name, code="invalid_image")
    if part.detected_type not in allowed:
        kinds = " or ".join(t.removeprefix("image/").upper() for t in allowed)
        raise InvalidRequest(f"The file in '{part.name}' is not a {kinds} image.", param=part.name,
                             code="invalid_image")


def _is_async(request: web.Request) -> bool:
    value = request.query.get("async", "")
    if value.lower() in ("", "false", "0"):
        return False
    if value.lower() in ("true", "1"):
        return True
    raise InvalidRequest("'async' must be true or false.", param="async", code="invalid_value")


async def _submit(request: web.Request, call: Call, job: ImageJob, form: ImageForm | None) -> web.StreamResponse:
    if job.stream:
        raise InvalidRequest("An async task cannot stream; send either 'stream' or '?async=true'.", param="stream",
                             code="unsupported_parameter")
    webhook = request.query.get("webhook") or None
    task_id = await request.app[IMAGE_TASKS].submit(call, job, form, webhook)
    return json_response({"task_id": task_id}, rid=call.request_id)


async def task(request: web.Request) -> web.StreamResponse:
    key = authenticated_key(request)
    shown = await request.app[IMAGE_TASKS].get(key, request.match_info["task_id"])
    return json_response(shown, rid=request_id(request))


def add_routes(app: web.Application) -> None:
    for prefix in ("/v1", ""):
        add_route(app, "POST", prefix + "/images/generations", generations)
        add_route(app, "POST", prefix + "/images/edits", edits)
        add_route(app, "POST", prefix + "/images/variations", variations)
        add_route(app, "GET", prefix + "/images/tasks/{task_id}", task)
