"""The operator's admin API under /api (admin credential only)."""

from __future__ import annotations

from aiohttp import web


def add_routes(app: web.Application) -> None:
    pass
