"""Which surface renders the errors of which path prefix: the table the one error boundary asks
(``surfaces/common.add_route`` wraps every route with it; app.py hands it ``renderer_for``).

A ``GatewayError`` leaves in the error shape of the surface that owns the path; a bug is a logged 500
in that same shape. It is applied where routes are registered, not as an aiohttp middleware: the
middleware measured ~6 µs per request on bench/ (aiohttp's per-request chain lookup and current-app
wrapper; docs/performance.md).
"""

from __future__ import annotations

from aiohttp import web

from relaygate.surfaces import admin, anthropic, gemini, midjourney, openai
from relaygate.surfaces.common import ErrorRenderer

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
