"""Async image tasks survive their process: a task whose gateway is killed mid-generation is finished
by the next process that takes its lease (or failed and refunded when it was interrupted too often or
ran out of time), and billed exactly once."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.fakes.clients import raw
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import Gateway
from tests.integration.test_images import ALICE, images_config, wait_task


def _submit(gateway: Gateway, delay_s: float) -> tuple[str, str]:
    with raw(gateway, ALICE) as client:
        response = client.post("/v1/images/generations?async=true",
                               json={"model": "dall-e-3", "prompt": "crane", "x_fake": {"delay_s": delay_s}})
    assert response.status_code == 200, response.text
    return response.json()["task_id"], response.headers["x-request-id"]


def _wait_in_progress(gateway: Gateway, fake: FakeOpenAI, task_id: str) -> None:
    """Until the upstream has the request (the task is running there, not merely claimed)."""
    deadline = time.monotonic() + 10
    with raw(gateway, ALICE) as client:
        while time.monotonic() < deadline:
            status = client.get(f"/v1/images/tasks/{task_id}").json()["data"]["status"]
            if status == "IN_PROGRESS" and fake.image_requests():
                return
            time.sleep(0.05)
    raise AssertionError("the task never started")


def _config(fake: FakeOpenAI, gemini: FakeGemini, **settings: Any) -> dict[str, Any]:
    return images_config(fake, gemini, task_lease_s=1, **settings)


def test_a_task_killed_mid_run_is_finished_after_restart(gateway_factory: type[Gateway], tmp_path: Path,
                                                          fake: FakeOpenAI) -> None:
    with FakeGemini() as gemini:
        config = _config(fake, gemini)
        first = gateway_factory(tmp_path, config).start()
        db = GatewayDB(first.database)
        task_id, request_id = _submit(first, delay_s=2.0)
        _wait_in_progress(first, fake, task_id)
        first.kill()  # no drain: the run is lost with the process

        second = gateway_factory(tmp_path, config).start()
        with raw(second, ALICE) as client:
            done = wait_task(client, task_id)
    assert done["status"] == "SUCCESS" and done["data"]["data"][0]["url"]
    assert len(fake.image_requests()) == 2  # the lost run and the one that finished
    assert len(db.usage_rows(request_id)) == 1
    assert db.usage(request_id)["cost_nano"] == 40_000_000
    assert db.key_used("alice") == 40_000_000  # held once at submit, settled once


def test_a_task_interrupted_too_often_fails_and_is_refunded(gateway_factory: type[Gateway], tmp_path: Path,
                                                             fake: FakeOpenAI) -> None:
    with FakeGemini() as gemini:
        config = _config(fake, gemini, task_max_runs=1)
        first = gateway_factory(tmp_path, config).start()
        db = GatewayDB(first.database)
        task_id, request_id = _submit(first, delay_s=2.0)
        _wait_in_progress(first, fake, task_id)
        first.kill()
        second = gateway_factory(tmp_path, config).start()
        with raw(second, ALICE) as client:
            done = wait_task(client, task_id)
    assert done["status"] == "FAILURE" and "interrupted" in done["fail_reason"]
    row = db.usage(request_id)
    assert (row["end_reason"], row["error_code"], row["cost_nano"]) == ("upstream_error", "task_interrupted", 0)
    assert db.key_used("alice") == 0


def test_a_task_that_runs_out_of_time_fails_and_is_refunded(gateway_factory: type[Gateway], tmp_path: Path,
                                                             fake: FakeOpenAI) -> None:
    with FakeGemini() as gemini:
        gateway = gateway_factory(tmp_path, _config(fake, gemini, task_timeout_s=0.5)).start()
        db = GatewayDB(gateway.database)
        task_id, request_id = _submit(gateway, delay_s=3.0)
        with raw(gateway, ALICE) as client:
            done = wait_task(client, task_id)
    assert done["status"] == "FAILURE" and "in time" in done["fail_reason"]
    assert (db.usage(request_id)["end_reason"], db.usage(request_id)["cost_nano"]) == ("timeout", 0)
    assert db.key_used("alice") == 0


def test_draining_gateway_finishes_its_running_task(gateway_factory: type[Gateway], tmp_path: Path,
                                                    fake: FakeOpenAI) -> None:
    """SIGTERM drains: a task already running is finished before the process exits."""
    with FakeGemini() as gemini:
        gateway = gateway_factory(tmp_path, _config(fake, gemini)).start()
        db = GatewayDB(gateway.database)
        task_id, request_id = _submit(gateway, delay_s=1.0)
        _wait_in_progress(gateway, fake, task_id)
        assert gateway.stop() == 0
    assert db.usage(request_id)["end_reason"] == "done"
