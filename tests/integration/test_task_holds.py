"""Task holds are exact across processes (issue 9, item 4): two relaygate processes on one database
(one SQLite file, or one PostgreSQL database) take 1,000 parallel submits for a key whose quota covers
exactly ten tasks, for Midjourney imagines and for async image generations. Exactly ten are accepted,
the key's spend is exactly ten holds, every other submit is refused with ``insufficient_quota`` in the
caller's dialect, and the refused ones never reached the upstream (the fake counts the submits)."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import httpx
import pytest

from tests.fakes.midjourney_upstream import FakeMidjourney
from tests.helpers.gateway import Gateway
from tests.integration.test_midjourney import MJ_SECRET, mj_channel
from tests.integration.test_postgres_instances import _fetch, pg_database

__all__ = ["pg_database"]  # the fixture, imported for the PostgreSQL case

MJ_KEY = "sk-holds-midjourney-0123456789"
IMAGE_KEY = "sk-holds-images-0123456789"
SUBMITS = 1_000
ACCEPTABLE = 10
MJ_PRICE = 100_000_000  # mj_imagine 0.1
IMAGE_PRICE = 10_000_000  # mock-image 0.01 per image, one image


@pytest.fixture
def mj() -> Iterator[FakeMidjourney]:
    with FakeMidjourney(api_secret=MJ_SECRET) as fake:
        fake.set("a", duration_s=30.0)  # the tasks stay open: only the submits matter here
        yield fake


def _config(database: str, mj: FakeMidjourney) -> dict[str, Any]:
    return {
        "database": database,
        "snapshot_poll_s": 0.2,
        "channels": [{"name": "mock", "type": "mock", "models": ["mock-image"]}, mj_channel("mj-a", mj, "a")],
        "prices": {"mj_imagine": {"per_call": "0.1"}, "mock-image": {"per_image": "0.01"}},
        "keys": [{"name": "mj", "key": MJ_KEY, "quota_usd": "1"},  # exactly ten imagines
                 {"name": "img", "key": IMAGE_KEY, "quota_usd": "0.1"}],  # exactly ten one-image tasks
    }


async def _submit_all(urls: list[str], key: str, path: str, body: dict[str, Any]) -> list[tuple[int, Any]]:
    """SUBMITS parallel submits, alternating between the processes; (status, JSON body) of each."""
    connector = aiohttp.TCPConnector(limit=64)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout,
                                     headers={"Authorization": f"Bearer {key}"}) as session:
        async def one(n: int) -> tuple[int, Any]:
            async with session.post(urls[n % len(urls)] + path, json=body) as response:
                return response.status, await response.json(content_type=None)

        return await asyncio.gather(*(one(n) for n in range(SUBMITS)))


def _check(results: list[tuple[int, Any]], accepted: Any, refused: Any) -> None:
    ok = [body for status, body in results if status == 200]
    assert len(ok) == ACCEPTABLE and all(accepted(body) for body in ok), ok
    refusals = [(status, body) for status, body in results if status != 200]
    assert all(status == 429 and refused(body) for status, body in refusals), refusals[:3]


def _run(urls: list[str], mj: FakeMidjourney) -> None:
    mj_results = asyncio.run(_submit_all(urls, MJ_KEY, "/mj/submit/imagine", {"prompt": "a lighthouse"}))
    _check(mj_results, lambda b: b["code"] == 1,
           lambda b: b["properties"]["error"] == "insufficient_quota" and b["result"] is None)
    assert len(mj.mj_requests("submit/imagine")) == ACCEPTABLE  # refused submits never went upstream
    image_results = asyncio.run(_submit_all(urls, IMAGE_KEY, "/v1/images/generations?async=true",
                                            {"model": "mock-image", "prompt": "x"}))
    _check(image_results, lambda b: isinstance(b["task_id"], str),
           lambda b: b["error"]["code"] == "insufficient_quota")


def _start_two(gateway_factory: type[Gateway], tmp_path: Path, config: dict[str, Any]) -> list[Gateway]:
    return [gateway_factory(tmp_path / name, config).start() for name in ("one", "two")]


def test_two_processes_on_one_sqlite_file(gateway_factory: type[Gateway], tmp_path: Path,
                                          mj: FakeMidjourney) -> None:
    path = tmp_path / "shared.db"
    gateways = _start_two(gateway_factory, tmp_path, _config(f"sqlite:///{path}", mj))
    _run([g.url for g in gateways], mj)
    db = sqlite3.connect(path, timeout=30)
    used = dict(db.execute("select name, used_nano from api_keys").fetchall())
    tasks = dict(db.execute("select kind, count(*) from tasks group by kind").fetchall())
    assert (used["mj"], used["img"]) == (ACCEPTABLE * MJ_PRICE, ACCEPTABLE * IMAGE_PRICE)
    assert tasks == {"midjourney": ACCEPTABLE, "image": ACCEPTABLE}


@pytest.mark.postgres
def test_two_instances_on_one_postgres_database(gateway_factory: type[Gateway], tmp_path: Path, pg_database: str,
                                                mj: FakeMidjourney) -> None:
    gateways = _start_two(gateway_factory, tmp_path, _config(pg_database, mj))
    _run([g.url for g in gateways], mj)
    used = {r["name"]: r["used_nano"] for r in asyncio.run(_fetch(pg_database, "select name, used_nano from api_keys"))}
    tasks = {r["kind"]: r["n"] for r in asyncio.run(_fetch(pg_database,
                                                             "select kind, count(*) as n from tasks group by kind"))}
    assert (used["mj"], used["img"]) == (ACCEPTABLE * MJ_PRICE, ACCEPTABLE * IMAGE_PRICE)
    assert tasks == {"midjourney": ACCEPTABLE, "image": ACCEPTABLE}


class _WatchingMidjourney(FakeMidjourney):
    """The fake upstream, noting at each submit what the gateway's database already holds."""

    def __init__(self, database: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.database = database
        self.seen: list[tuple[str, int, int]] = []  # (prompt, pre-submit tasks, the key's used_nano)

    async def _dispatch(self, request: Any) -> Any:
        if request.method == "POST" and request.path.endswith("/submit/imagine"):
            prompt = (await request.json()).get("prompt", "")
            db = sqlite3.connect(self.database, timeout=30)
            try:
                pending = db.execute("select count(*) from tasks where status = 'SUBMITTING'").fetchone()[0]
                used = db.execute("select used_nano from api_keys where name = 'mj'").fetchone()[0]
            finally:
                db.close()
            self.seen.append((prompt, pending, used))
        return await super()._dispatch(request)


def test_a_midjourney_submit_is_stored_and_held_before_it_is_sent(gateway_factory: type[Gateway],
                                                                   tmp_path: Path) -> None:
    path = tmp_path / "one.db"
    with _WatchingMidjourney(path, api_secret=MJ_SECRET) as fake:
        fake.set("a", duration_s=30.0)
        gateway = gateway_factory(tmp_path / "g", _config(f"sqlite:///{path}", fake)).start()
        headers = {"Authorization": f"Bearer {MJ_KEY}"}
        accepted = httpx.post(gateway.url + "/mj/submit/imagine", json={"prompt": "ok"}, headers=headers, timeout=30)
        refused = httpx.post(gateway.url + "/mj/submit/imagine", json={"prompt": "no --banned"}, headers=headers,
                             timeout=30)
    assert accepted.json()["code"] == 1 and refused.json()["code"] == 24
    # When each submit reached the upstream, its task was stored (pre-submit) and its price held.
    assert fake.seen == [("ok", 1, MJ_PRICE), ("no --banned", 1, 2 * MJ_PRICE)]
    db = sqlite3.connect(path, timeout=30)
    used = db.execute("select used_nano from api_keys where name = 'mj'").fetchone()[0]
    records = db.execute("select request_id, cost_nano, end_reason from usage_records").fetchall()
    statuses = sorted(r[0] for r in db.execute("select status from tasks").fetchall())
    assert used == MJ_PRICE  # the refused submit was refunded at once
    assert records == [(refused.headers["x-request-id"], 0, "rejected")]  # its one record; the other is open
    assert statuses[0] == "FAILURE" and statuses[1] not in ("SUBMITTING", "FAILURE"), statuses
