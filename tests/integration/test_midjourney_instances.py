"""Two relaygate instances on one PostgreSQL database following the Midjourney tasks of one channel:
the channel's poll lease lets one of them poll at a time, so the upstream sees the list-by-condition
rate of ONE poller and never two overlapping polls of the same tasks; each task ends, is billed and
notified exactly once whichever instance took it."""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from tests.fakes.clients import raw
from tests.fakes.midjourney_upstream import FakeMidjourney
from tests.helpers.gateway import Gateway
from tests.helpers.webhook import WebhookReceiver
from tests.integration.test_midjourney import ALICE, MJ_SECRET, mj_channel, mj_config, price, submit, wait_task
from tests.integration.test_postgres_instances import _fetch, pg_database

pytestmark = pytest.mark.postgres

__all__ = ["pg_database"]  # the fixture, imported for this module's tests

POLL_S = 0.2
TASKS = 6
LIST = "task/list-by-condition"


@dataclass(frozen=True, slots=True)
class TimedList:
    """One list-by-condition request: when it arrived, when it was answered, which ids it asked for."""

    started: float
    ended: float
    ids: frozenset[str]


class TimedFakeMidjourney(FakeMidjourney):
    """The fake upstream, also noting when each list-by-condition request was in flight (monotonic clock)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._timed: list[TimedList] = []
        self._timed_lock = threading.Lock()

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        started = time.monotonic()
        response = await super()._dispatch(request)
        if request.method == "POST" and request.path.endswith("/mj/" + LIST):
            try:
                ids = orjson.loads(await request.read()).get("ids") or []
            except (orjson.JSONDecodeError, AttributeError):
                ids = []
            with self._timed_lock:
                self._timed.append(TimedList(started, time.monotonic(), frozenset(str(i) for i in ids)))
        return response

    def timed_lists(self) -> list[TimedList]:
        with self._timed_lock:
            return list(self._timed)


@pytest.fixture
def mj() -> Iterator[TimedFakeMidjourney]:
    with TimedFakeMidjourney(api_secret=MJ_SECRET) as fake:
        yield fake


def _rows(database: str, sql: str) -> list[dict[str, Any]]:
    return [dict(r) for r in asyncio.run(_fetch(database, sql))]


def test_two_instances_poll_one_channel_once(gateway_factory: type[Gateway], tmp_path: Path, pg_database: str,
                                             mj: TimedFakeMidjourney) -> None:
    # Every task runs 3 s; each poll (and submit) takes 50 ms at the upstream, so two pollers would overlap.
    mj.set("a", duration_s=3.0, delay_s=0.05)
    config = mj_config([mj_channel("mj-a", mj, "a")], database=pg_database, snapshot_poll_s=0.2,
                       mj_poll_s=POLL_S)
    gateways = [gateway_factory(tmp_path / name, config).start() for name in ("one", "two")]
    with WebhookReceiver() as receiver:
        clients = [raw(g, ALICE) for g in gateways]
        try:
            submitted: list[tuple[str, str]] = []
            for n in range(TASKS):
                task_id, response = submit(clients[n % 2], "/mj/submit/imagine",
                                           {"prompt": f"shared task {n}", "notifyHook": f"{receiver.url}/hook/{n}"})
                submitted.append((task_id, str(response.headers["x-request-id"])))
            window_start = time.monotonic()
            for n, (task_id, _) in enumerate(submitted):
                # Each is seen through the other instance than the one it was submitted to.
                done = wait_task(clients[(n + 1) % 2], task_id, timeout=20)
                assert done["status"] == "SUCCESS", done
            window_end = time.monotonic()
            deadline = time.monotonic() + 15
            while sum(b.get("status") == "SUCCESS" for b in receiver.received) < TASKS:
                assert time.monotonic() < deadline, receiver.received
                time.sleep(0.05)
            time.sleep(1.0)  # would a second SUCCESS come from the other instance?
            bodies = list(receiver.received)
        finally:
            for client in clients:
                client.close()

    ids = [task_id for task_id, _ in submitted]
    # Notified: the end exactly once per task.
    for task_id in ids:
        ends = [b for b in bodies if b["id"] == task_id and b["status"] == "SUCCESS"]
        assert len(ends) == 1, (task_id, [(b["id"], b["status"]) for b in bodies])
    assert {b["id"] for b in bodies} == set(ids)

    # Billed: one usage record per task, the key's spend the sum of the prices once.
    rows = _rows(pg_database, "select request_id, model, cost_nano, end_reason from usage_records "
                              "where surface = 'midjourney'")
    assert sorted(r["request_id"] for r in rows) == sorted(request_id for _, request_id in submitted)
    assert all((r["model"], r["cost_nano"], r["end_reason"]) == ("mj_imagine", price("mj_imagine"), "done")
               for r in rows), rows
    used = _rows(pg_database, "select used_nano from api_keys where name = 'alice'")
    assert used[0]["used_nano"] == TASKS * price("mj_imagine")

    # Polled at the rate of one poller, never twice at once for the same tasks.
    upstream_ids = {str(t["id"]) for t in mj.tasks()}
    assert len(upstream_ids) == TASKS
    lists = [t for t in mj.timed_lists() if t.ids & upstream_ids]
    assert lists, "the tasks were never polled"
    window = window_end - window_start
    in_window = [t for t in lists if window_start <= t.started <= window_end]
    # One poller waits mj_poll_s after each round, so it cannot exceed window / mj_poll_s (+1 at the edges);
    # two would come at about twice its rate (each round also takes the upstream's 50 ms).
    bound = window / POLL_S + 2
    assert len(in_window) <= bound, f"{len(in_window)} polls in {window:.2f} s (bound {bound:.1f})"
    assert len(in_window) >= 2, "the tasks were hardly polled"
    ordered = sorted(lists, key=lambda t: t.started)
    for earlier, later in itertools.pairwise(ordered):
        if earlier.ids & later.ids:
            assert later.started >= earlier.ended, f"overlapping polls: {earlier} and {later}"
            # One poller's rounds are at least mj_poll_s apart; a second poller's would fall in between.
            gap = later.started - earlier.started
            assert gap >= 0.75 * POLL_S, f"two polls of the same tasks {gap:.3f} s apart"
    assert all(len(r.json()["ids"]) <= 100 and r.headers["mj-api-secret"] == MJ_SECRET and r.mode == ""
               for r in mj.mj_requests(LIST))
    assert [r.endpoint for r in mj.mj_requests() if r.endpoint.startswith("submit/")] == ["submit/imagine"] * TASKS
