"""Two relaygate instances on one PostgreSQL database: both serve and record, and a change made in
the database reaches both through the configuration-version poll."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import pytest
from openai import AuthenticationError, OpenAI

from tests.conftest import POSTGRES_URL, service_unavailable
from tests.helpers.gateway import Gateway

pytestmark = pytest.mark.postgres

KEY = "sk-pg-instances-key-0001"


async def _admin(sql: str, url: str = POSTGRES_URL) -> None:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _fetch(url: str, sql: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(url, timeout=5)
    try:
        return list(await conn.fetch(sql))
    finally:
        await conn.close()


@pytest.fixture
def pg_database() -> Iterator[str]:
    """A fresh database for the test, dropped afterwards."""
    name = "relaygate_it_" + uuid.uuid4().hex[:12]
    try:
        asyncio.run(_admin(f"CREATE DATABASE {name}"))
    except (OSError, asyncpg.PostgresError) as exc:
        service_unavailable("PostgreSQL", type(exc).__name__)
    base = POSTGRES_URL.rsplit("/", 1)[0]
    yield f"{base}/{name}"
    asyncio.run(_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))


def _config(database: str) -> dict[str, object]:
    return {
        "database": database,
        "snapshot_poll_s": 0.2,
        "channels": [{"name": "mock", "type": "mock", "models": ["mock-gpt"], "mock_chunk_delay_ms": 0}],
        "prices": {"mock-gpt": {"input": "0.5", "output": "1.5"}},
        "keys": [{"name": "shared", "key": KEY, "quota_usd": 10}],
    }


def test_two_instances_share_one_database(gateway_factory: type[Gateway], tmp_path: Path, pg_database: str) -> None:
    first = gateway_factory(tmp_path / "a", _config(pg_database)).start()
    second = gateway_factory(tmp_path / "b", _config(pg_database)).start()
    clients = [OpenAI(base_url=g.url + "/v1", api_key=KEY, max_retries=0) for g in (first, second)]
    for i in range(6):
        reply = clients[i % 2].chat.completions.create(
            model="mock-gpt", messages=[{"role": "user", "content": f"hello {i}"}])
        assert reply.choices[0].message.content == f"Mock reply from mock-gpt: hello {i}"

    rows = asyncio.run(_fetch(pg_database, "select count(*) as n, sum(cost_nano) as cost from usage_records"))
    used = asyncio.run(_fetch(pg_database, "select used_nano from api_keys where name = 'shared'"))
    assert rows[0]["n"] == 6
    assert used[0]["used_nano"] == rows[0]["cost"] > 0

    # Disable the key in the database and move the version: both instances must refuse it soon.
    asyncio.run(_admin("update api_keys set enabled = false where name = 'shared';"
                       "update meta set value = (cast(value as bigint) + 1)::text where name = 'config_version'",
                       pg_database))
    for client in clients:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.chat.completions.create(model="mock-gpt", messages=[{"role": "user", "content": "x"}])
            except AuthenticationError as exc:
                assert exc.code == "key_disabled"
                break
            assert time.monotonic() < deadline, "the instance did not pick up the disabled key"
            time.sleep(0.1)
