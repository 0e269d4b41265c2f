"""The one place that turns an error into a response: an aiohttp middleware, and the table of which
surface renders the errors of which path prefix.

Handlers only raise. A ``GatewayError`` leaves in the error shape of the surface that owns the path;
anything else is a bug: logged by type and route pattern (never with the request's own data) and
answered with a 500 in that same shape. aiohttp caches the middleware chain per handler; it costs
~1.4 µs per request more than a decorator on each handler did (bench/dispatch.py; docs/performance.md).
"""

from __future__ import annotations

import logging

from aiohttp import web

from relaygate.errors import GatewayError
from relaygate.surfaces import admin, anthropic, gemini, midjourney, openai
from relaygate.surfaces.common import ErrorRenderer, Handler, error_response, request_id

log = logging.getLogger("relaygate.surfaces")

# Each surface's error renderer for the path prefixes it owns; a path under none of them is OpenAI's.
# Matched against the path with a "/" added, so "/api/" owns "/api" and what is below it, while
# "/v1/messages" also owns the odd paths that only start with it ("/v1/messages%0A"). Checked in order.
ERROR_RENDERERS: tuple[tuple[str, ErrorRenderer], ...] = (
    ("/api/", admin.render_error),
    ("/mj/", midjourney.render_error),
    *((f"/{mode}/mj/", midjourney.render_error) for mode in midjourney.MODE_PREFIXES),
    ("/v1beta/", gemini.render_error),
    ("/v1/messages", anthropic.render_error),
)
_SHARED_MODELS = "/v1/models"  # served to three dialects, told apart by their clients' headers


def renderer_for(request: web.Request) -> ErrorRenderer:
    """The error renderer of the surface that owns the request's path (OpenAI's when none does)."""
    path = request.path + "/"
    for prefix, renderer in ERROR_RENDERERS:
        if path.startswith(prefix):
            return renderer
    if path.startswith(_SHARED_MODELS):
        return _models_renderer(request)
    return openai.render_error


def _models_renderer(request: web.Request) -> ErrorRenderer:
    # Only Gemini's actions (``models/{model}:generateContent``) are posted here, whatever the headers.
    if request.method == "POST":
        return gemini.render_error
    if anthropic.is_anthropic_client(request):
        return anthropic.render_error
    if gemini.is_gemini_client(request) or ":" in request.path:
        return gemini.render_error
    return openai.render_error


@web.middleware
async def render_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except GatewayError as error:
        return error_response(error, request_id(request), renderer_for(request))
    except web.HTTPException:
        raise
    except Exception as exc:
        rid = request_id(request)
        route = request.match_info.route.resource
        log.exception("unhandled %s in %s (request id %s)", type(exc).__name__,
                      route.canonical if route is not None else "?", rid)
        return error_response(GatewayError("The gateway had an internal error."), rid, renderer_for(request))
