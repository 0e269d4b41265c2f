"""What answers when no route does: an unknown path, a method the path does not take, or a path with
odd bytes in it (a decoded ``%0A``). Registered last, for every method and every path: its pattern
matches newlines too (``.`` does not), so nothing falls through to aiohttp's plain-text 404/405.

The answer is ``404 unknown_url`` in the error shape of the surface the path belongs to, so a client
reads it like any other error of the API it calls.
"""

from __future__ import annotations

from aiohttp import web

from relaygate.errors import NotFound
from relaygate.surfaces import admin, anthropic, gemini, midjourney, openai
from relaygate.surfaces.common import ErrorRenderer, error_response, request_id

_ANY_PATH = "/{tail:(?s:.*)}"
_SHOWN_PATH_CHARS = 200


def renderer_for(request: web.Request) -> ErrorRenderer:
    """The error renderer of the surface that owns the request's path (OpenAI's when none does)."""
    path = request.path
    segments = path.split("/", 3)
    first = segments[1] if len(segments) > 1 else ""
    second = segments[2] if len(segments) > 2 else ""
    if first == "api":
        return admin.render_error
    if first == "mj" or (first in midjourney.MODE_PREFIXES and second == "mj"):
        return midjourney.render_error
    if first == "v1beta":
        return gemini.render_error
    if path.startswith("/v1/messages"):
        return anthropic.render_error
    if path.startswith("/v1/models"):  # shared by three dialects; told apart by their clients' headers
        if anthropic.is_anthropic_client(request):
            return anthropic.render_error
        if gemini.is_gemini_client(request) or ":" in path:
            return gemini.render_error
    return openai.render_error


async def unknown_route(request: web.Request) -> web.StreamResponse:
    error = NotFound(f"Invalid URL ({request.method} {request.path[:_SHOWN_PATH_CHARS]})", code="unknown_url")
    return error_response(error, request_id(request), renderer_for(request))


def add_routes(app: web.Application) -> None:
    """Call after every other surface has added its routes."""
    app.router.add_route("*", _ANY_PATH, unknown_route)
