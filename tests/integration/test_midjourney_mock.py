"""The built-in offline Midjourney channel behind a real gateway: what a new user tries first."""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any

import httpx

from tests.fakes.clients import raw
from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import Gateway

KEY = "sk-mj-mock-try-0123456789"


def _wait(client: httpx.Client, task_id: str, timeout: float = 20) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        task: dict[str, Any] = client.get(f"/mj/task/{task_id}/fetch").json()
        if task["status"] in ("SUCCESS", "FAILURE") or time.monotonic() > deadline:
            return task
        time.sleep(0.2)


def test_offline_midjourney_channel_runs_the_tutorial(gateway_factory: type[Gateway], tmp_path: Path) -> None:
    config = {"mj_poll_s": 0.3, "channels": [{"name": "mj", "type": "midjourney", "models": ["mj_*", "swap_face"],
                                              "options": {"mock": True, "image_proxy": True}}],
              "keys": [{"name": "alice", "key": KEY, "quota_usd": "5"}]}
    gateway = gateway_factory(tmp_path, config).start()
    db = GatewayDB(gateway.database)
    with raw(gateway, KEY) as client:
        submitted = client.post("/mj/submit/imagine", json={"prompt": "a lighthouse"})
        assert submitted.json()["code"] == 1, submitted.text
        grid = _wait(client, submitted.json()["result"])
        assert grid["status"] == "SUCCESS" and len(grid["buttons"]) == 9
        image = httpx.get(grid["imageUrl"])  # a signed link that serves the mock's data: image
        assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"
        u1 = grid["buttons"][0]["customId"]
        upscale = client.post("/mj/submit/action", json={"taskId": grid["id"], "customId": u1}).json()
        done = _wait(client, upscale["result"])
        region = next(b["customId"] for b in done["buttons"] if "Inpaint" in b["customId"])
        waiting = client.post("/mj/submit/action", json={"taskId": done["id"], "customId": region}).json()
        assert waiting["code"] == 21
        mask = "data:image/png;base64," + base64.b64encode(image.content).decode()
        confirmed = client.post("/mj/submit/modal", json={"taskId": waiting["result"], "prompt": "a boat",
                                                         "maskBase64": mask}).json()
        assert (confirmed["code"], confirmed["result"]) == (1, waiting["result"])  # the same task goes on
        assert _wait(client, confirmed["result"])["status"] == "SUCCESS"
        failed = _wait(client, client.post("/mj/submit/imagine", json={"prompt": "x --fail"}).json()["result"])
        assert failed["status"] == "FAILURE"
    # imagine 0.1 + upscale 0.05 + inpaint 0 + modal 0.1; the failed imagine was refunded
    assert db.key_used("alice") == 250_000_000
    assert db.usage(submitted.headers["x-request-id"])["cost_nano"] == 100_000_000
