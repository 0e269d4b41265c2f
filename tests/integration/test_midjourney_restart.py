"""Midjourney tasks survive their process: a task in flight when its gateway is SIGKILLed is followed by
the next process on the same home (it takes the channel's poll lease once the dead one's runs out) and
settled, or refunded, exactly once."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes.clients import raw
from tests.fakes.midjourney_upstream import FakeMidjourney
from tests.fakes.usage_db import GatewayDB
from tests.helpers.gateway import Gateway
from tests.integration.test_midjourney import (
    ALICE,
    MJ_SECRET,
    mj_channel,
    mj_config,
    price,
    rid,
    submit,
    submits,
    upstream_id_of,
    wait_task,
)


@pytest.fixture
def mj() -> Iterator[FakeMidjourney]:
    with FakeMidjourney(api_secret=MJ_SECRET) as fake:
        yield fake


def _wait_running(client: httpx.Client, task_id: str, timeout: float = 10.0) -> None:
    """Until the gateway has seen the task running upstream (a poll reached it)."""
    deadline = time.monotonic() + timeout
    while True:
        task = client.get(f"/mj/task/{task_id}/fetch").json()
        if task["status"] == "IN_PROGRESS":
            return
        assert time.monotonic() < deadline, task
        time.sleep(0.05)


def test_a_task_in_flight_is_finished_after_a_restart(gateway_factory: type[Gateway], tmp_path: Path,
                                                      mj: FakeMidjourney) -> None:
    config = mj_config([mj_channel("mj-a", mj, "a")])
    mj.next_submit("a", duration_s=3.0)
    first = gateway_factory(tmp_path, config).start()
    db = GatewayDB(first.database)
    with raw(first, ALICE) as client:
        task_id, response = submit(client, "/mj/submit/imagine", {"prompt": "survive the crash"})
        _wait_running(client, task_id)
    assert db.key_used("alice") == price("mj_imagine")
    first.kill()  # no drain

    second = gateway_factory(tmp_path, config).start()
    with raw(second, ALICE) as client:
        done = wait_task(client, task_id, timeout=20)
    assert done["status"] == "SUCCESS" and done["id"] == task_id, done
    assert done["imageUrl"] == mj.image_url(upstream_id_of(mj, submits(mj, "submit/imagine")[-1]))
    assert len(submits(mj)) == 1  # followed, not submitted again
    rows = db.usage_rows(rid(response))
    assert len(rows) == 1, rows
    assert (rows[0]["end_reason"], rows[0]["cost_nano"]) == ("done", price("mj_imagine"))
    assert db.key_used("alice") == price("mj_imagine")  # charged once at submit, kept once


def test_a_task_that_fails_while_the_gateway_is_down_is_refunded_once(gateway_factory: type[Gateway],
                                                                      tmp_path: Path, mj: FakeMidjourney) -> None:
    config = mj_config([mj_channel("mj-a", mj, "a")])
    mj.next_submit("a", duration_s=3.0)
    first = gateway_factory(tmp_path, config).start()
    db = GatewayDB(first.database)
    with raw(first, ALICE) as client:
        task_id, response = submit(client, "/mj/submit/imagine", {"prompt": "fail in the dark"})
        _wait_running(client, task_id)
    first.kill()
    up = upstream_id_of(mj, submits(mj, "submit/imagine")[-1])
    mj.finish(up, fail_reason="banned by the moderator")  # it ends while nobody watches

    second = gateway_factory(tmp_path, config).start()
    with raw(second, ALICE) as client:
        done = wait_task(client, task_id, timeout=20)
    assert done["status"] == "FAILURE" and done["failReason"] == "banned by the moderator", done
    rows = db.usage_rows(rid(response))
    assert len(rows) == 1, rows
    assert (rows[0]["end_reason"], rows[0]["cost_nano"]) == ("upstream_error", 0)
    assert db.key_used("alice") == 0
