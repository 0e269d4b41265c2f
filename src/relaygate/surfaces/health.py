"""Liveness and readiness probes (no credentials)."""

from __future__ import annotations

import sqlalchemy as sa
from aiohttp import web

from relaygate.surfaces.common import add_route, json_response, services_of


async def healthz(request: web.Request) -> web.StreamResponse:
    return json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.StreamResponse:
    """Ready when not draining, the snapshot and the tokenizers are loaded, and the database answers."""
    services = services_of(request)
    checks: dict[str, str] = {}
    checks["draining"] = "yes" if services.draining else "no"
    checks["snapshot"] = "loaded" if services.snapshots.current.loaded else "missing"
    checks["tokenizers"] = "loaded" if services.warmed_up else "loading"
    try:
        async with services.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = type(exc).__name__
    ready = (not services.draining and checks["snapshot"] == "loaded" and services.warmed_up
             and checks["database"] == "ok")
    return json_response({"status": "ready" if ready else "not_ready", "checks": checks},
                         status=200 if ready else 503)


def add_routes(app: web.Application) -> None:
    add_route(app, "GET", "/healthz", healthz)
    add_route(app, "GET", "/readyz", readyz)
