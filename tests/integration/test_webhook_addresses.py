"""Webhook and notifyHook URLs are refused at submit when they point at an address that delivery would
refuse: every spelling of a loopback or private address the OS resolver accepts, and loopback names.
Nothing is stored or billed for a refused submit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.clients import raw
from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import Gateway

KEY = "sk-webhook-addresses-0123456789"

# Each is 127.0.0.1, ::1, a private address or a loopback name, spelled as getaddrinfo or yarl reads it.
HOSTILE_HOOKS = [
    "http://2130706433/hook", "http://0x7f000001/hook", "http://127.1/hook", "http://[::1]/hook",
    "http://0177.0.0.1/hook", "http://localhost./hook", "http://LOCALHOST/hook", "http://app.localhost/hook",
    "http://１２７.0.0.1/hook", "http://[::ffff:127.0.0.1]/hook", "http://0/hook", "http://10.1/hook",
    "http://0xa9fea9fe/latest/meta-data/", "http://[::1/hook", "http://exa mple.com/hook",
]


@pytest.fixture(scope="module")
def gateway(module_gateway_factory: type[Gateway], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    config = {
        "allow_private_webhooks": False,
        "channels": [{"name": "mock", "type": "mock", "models": ["mock-image"]},
                     {"name": "mj", "type": "midjourney", "models": ["mj_*"], "options": {"mock": True}}],
        "prices": {"mock-image": {"per_image": "0.01"}},
        "keys": [{"name": "alice", "key": KEY, "quota_usd": "5"}],
    }
    yield module_gateway_factory(Path(tmp_path_factory.mktemp("webhook-addresses")), config).start()


def _refused(response: httpx.Response) -> str:
    assert response.status_code == 400, response.text
    body = response.json()
    return str(body["error"]["code"] if "error" in body else body["properties"]["error"])


@pytest.mark.parametrize("hook", HOSTILE_HOOKS)
def test_image_task_webhook_is_refused_at_submit(gateway: Gateway, hook: str) -> None:
    with raw(gateway, KEY) as client:
        response = client.post("/v1/images/generations", params={"async": "true", "webhook": hook},
                               json={"model": "mock-image", "prompt": "x"})
    assert _refused(response) == "invalid_webhook"
    assert response.json()["error"]["param"] == "webhook"


@pytest.mark.parametrize("hook", HOSTILE_HOOKS)
def test_midjourney_notify_hook_is_refused_at_submit(gateway: Gateway, hook: str) -> None:
    with raw(gateway, KEY) as client:
        response = client.post("/mj/submit/imagine", json={"prompt": "x", "notifyHook": hook})
    assert _refused(response) == "invalid_webhook"
    assert response.json()["code"] == 4


def test_refused_submits_store_and_bill_nothing(gateway: Gateway) -> None:
    db = GatewayDB(gateway.database)
    before = db.key_used("alice")
    with raw(gateway, KEY) as client:
        for hook in HOSTILE_HOOKS[:3]:
            client.post("/mj/submit/imagine", json={"prompt": "x", "notifyHook": hook})
            client.post("/v1/images/generations", params={"async": "true", "webhook": hook},
                        json={"model": "mock-image", "prompt": "x"})
    assert db.key_used("alice") == before


def test_public_hooks_are_still_accepted(gateway: Gateway) -> None:
    """A name is left to the resolver at delivery; a public address literal is fine."""
    with raw(gateway, KEY) as client:
        for hook in ("http://hooks.example.com/h", "https://93.184.215.14/h"):
            image = client.post("/v1/images/generations", params={"async": "true", "webhook": hook},
                                json={"model": "mock-image", "prompt": "x"})
            assert image.status_code == 200, image.text
            mj = client.post("/mj/submit/imagine", json={"prompt": "x", "notifyHook": hook})
            assert mj.json()["code"] == 1, mj.text
