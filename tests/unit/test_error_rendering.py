"""One place renders every error: a handler registered through ``add_route`` (no wrapper of its own)
that raises answers in the error shape of the surface owning its path, with the request ids, and a bug is a
logged 500 whose log line names the route pattern, not the request's own path."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from relaygate.app import create_app
from relaygate.errors import InvalidRequest, NotFound
from relaygate.server import prepare_database
from relaygate.settings import load_settings
from relaygate.surfaces.common import add_route

_CONFIG = """
home: {home}
database: sqlite:///{home}/rg.db
admin_key: rg-test-admin-not-a-secret
secret: test-secret-not-a-secret-0123456789
access_log: false
"""


async def _bug(request: web.Request) -> web.StreamResponse:
    raise RuntimeError("a bug")


async def _not_found(request: web.Request) -> web.StreamResponse:
    raise NotFound("Nothing here.", code="nothing_here")


async def _invalid(request: web.Request) -> web.StreamResponse:
    raise InvalidRequest("Bad value.", param="x", code="invalid_value")


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[TestClient]:  # type: ignore[type-arg]
    config = tmp_path / "rg.yaml"
    config.write_text(_CONFIG.format(home=tmp_path))
    settings = load_settings(config)
    app = create_app(settings, await prepare_database(settings))
    # aiohttp resolves the most specific path prefix first, so these win over the catch-all route.
    for path, handler in (("/v1/boom/{word}", _bug), ("/v1beta/boom", _bug), ("/api/boom", _not_found),
                          ("/mj-fast/mj/boom", _invalid), ("/v1/messages/boom", _bug)):
        add_route(app, "GET", path, handler)
    async with TestClient(TestServer(app)) as test_client:
        yield test_client


async def test_a_bug_is_a_500_in_openai_shape_logged_without_the_path(
        client: TestClient, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[type-arg]
    with caplog.at_level(logging.ERROR, logger="relaygate.surfaces"):
        response = await client.get("/v1/boom/secret-word-123", headers={"X-Client-Request-Id": "mine-1"})
    body = await response.json()
    assert response.status == 500
    assert body["error"]["type"] == "server_error"
    assert "internal error" in body["error"]["message"]
    assert response.headers["X-Request-Id"].startswith("req_")
    assert response.headers["X-Client-Request-Id"] == "mine-1"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "unhandled RuntimeError in /v1/boom/{word}" in logged
    assert response.headers["X-Request-Id"] in logged
    assert "secret-word-123" not in logged


async def test_each_prefix_renders_in_its_surfaces_shape(client: TestClient) -> None:  # type: ignore[type-arg]
    gemini = await client.get("/v1beta/boom")
    assert gemini.status == 500
    assert (await gemini.json())["error"]["status"] == "INTERNAL"

    anthropic = await client.get("/v1/messages/boom")
    assert anthropic.status == 500
    assert (await anthropic.json())["type"] == "error"

    admin = await client.get("/api/boom")
    assert admin.status == 404
    assert (await admin.json())["error"]["code"] == "nothing_here"

    mj = await client.get("/mj-fast/mj/boom")
    body = await mj.json()
    assert mj.status == 400
    assert body["description"] == "Bad value."
    assert body["properties"]["request_id"] == mj.headers["X-Request-Id"]
