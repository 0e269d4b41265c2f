"""What answers when no route does: an unknown path, a method the path does not take, or a path with
odd bytes in it (a decoded ``%0A``). Registered last, for every method and every path: its pattern
matches newlines too (``.`` does not), so nothing falls through to aiohttp's plain-text 404/405.

The answer is ``404 unknown_url`` in the error shape of the surface the path belongs to, so a client
reads it like any other error of the API it calls, with a hint: a doubled version prefix (a client
whose base URL already ends in ``/v1``), a missing one, or the paths the surface does serve.
"""

from __future__ import annotations

from aiohttp import web

from relaygate.errors import NotFound
from relaygate.surfaces import admin, anthropic, gemini, midjourney, openai
from relaygate.surfaces.common import ErrorRenderer, add_route
from relaygate.surfaces.rendering import renderer_for

_ANY_PATH = "/{tail:(?s:.*)}"
_SHOWN_PATH_CHARS = 200

_DOUBLED = ("/v1/v1/", "/v1/v1beta/", "/v1beta/v1beta/", "/v1beta/v1/", "/api/api/", "/mj/mj/")
_UNVERSIONED = ("/chat/completions", "/completions", "/embeddings", "/messages", "/models", "/images/")
_SERVED: dict[ErrorRenderer, str] = {
    admin.render_error: "/api/keys, /api/channels, /api/prices, /api/usage (described at /api/openapi.json)",
    midjourney.render_error: "/mj/submit/imagine (and the other /mj/submit/... actions), /mj/task/{id}/fetch",
    gemini.render_error: "/v1beta/models/{model}:generateContent, :streamGenerateContent, :countTokens, "
                         ":embedContent, /v1beta/models",
    anthropic.render_error: "/v1/messages, /v1/messages/count_tokens, /v1/models",
    openai.render_error: "/v1/chat/completions, /v1/embeddings, /v1/images/generations, /v1/images/edits, "
                         "/v1/models",
}


def hint_for(path: str, renderer: ErrorRenderer) -> str:
    """A sentence that tells the caller how to reach what it meant."""
    doubled = next((d for d in _DOUBLED if (path + "/").startswith(d)), None)
    if doubled is not None:
        return (f"The path starts with {doubled.rstrip('/')}: the client adds /{doubled.split('/')[2]} itself, so "
                "its base URL must not end in it (OpenAI SDKs: http://HOST:PORT/v1; Anthropic and Gemini SDKs: "
                "http://HOST:PORT).")
    if path.startswith(_UNVERSIONED):
        return f"Did you mean /v1{path}? OpenAI SDKs take a base URL that ends in /v1 (http://HOST:PORT/v1)."
    return f"This gateway serves {_SERVED.get(renderer, _SERVED[openai.render_error])}."


async def unknown_route(request: web.Request) -> web.StreamResponse:
    renderer = renderer_for(request)
    shown = request.path[:_SHOWN_PATH_CHARS]
    error = NotFound(f"Invalid URL ({request.method} {shown}). {hint_for(request.path, renderer)}", code="unknown_url")
    raise error  # rendered by surfaces/rendering.py, like every other error


def add_routes(app: web.Application) -> None:
    """Call after every other surface has added its routes."""
    add_route(app, "*", _ANY_PATH, unknown_route)
