"""AdminService on real SQLite and PostgreSQL: exact money, secrets at rest, versions, pages, summaries, probes."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from relaygate.admin import inputs
from relaygate.admin.probe import probe_channel
from relaygate.admin.service import AdminService, Conflict
from relaygate.auth.keys import hash_key
from relaygate.bootstrap import sync_config
from relaygate.errors import InvalidRequest, NotFound
from relaygate.infra.http import HttpTransport, create_session
from relaygate.routing.health import HealthBook
from relaygate.routing.records import ChannelRecord
from relaygate.settings import KeyConfig, Settings
from relaygate.storage import queries
from relaygate.storage.crypto import SecretBox
from relaygate.storage.engine import create_engine
from relaygate.storage.migrate import migrate
from relaygate.storage.tables import api_keys, channels, usage_records
from tests.conftest import POSTGRES_URL, service_unavailable

SECRET = "unit-test-secret-0123456789"
DAY_MS = 86_400_000


@dataclass
class Env:
    admin: AdminService
    engine: AsyncEngine
    changes: list[int] = field(default_factory=list)

    async def version(self) -> int:
        async with self.engine.connect() as conn:
            return await queries.config_version(conn)


async def _pg(sql: str) -> None:
    conn = await asyncpg.connect(POSTGRES_URL, timeout=5)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@asynccontextmanager
async def database_url(kind: str, tmp_path: Path) -> AsyncIterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'admin.db'}"
        return
    name = "relaygate_admin_" + uuid.uuid4().hex[:12]
    try:
        await _pg(f"CREATE DATABASE {name}")
    except (OSError, asyncpg.PostgresError) as exc:
        service_unavailable("PostgreSQL", type(exc).__name__)
    try:
        yield POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    finally:
        await _pg(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def env(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Env]:
    async with database_url(request.param, tmp_path) as url:
        engine = create_engine(url)
        await migrate(engine)
        changes: list[int] = []

        async def on_change() -> None:
            changes.append(1)

        admin = AdminService(engine, SecretBox(SECRET), health=HealthBook(), on_change=on_change)
        try:
            yield Env(admin, engine, changes)
        finally:
            await engine.dispose()


async def test_key_create_stores_only_the_hash_and_renders_money_exactly(env: Env) -> None:
    created = await env.admin.create_key({"name": " dev ", "quota_usd": 0.1})
    assert created["name"] == "dev" and created["quota_nano"] == 100_000_000 and created["quota_usd"] == "0.1"
    async with env.engine.connect() as conn:
        row = (await conn.execute(sa.select(api_keys))).one()._mapping
        await conn.execute(sa.update(api_keys).values(used_nano=33_333_333))
        await conn.commit()
    assert row["key_hash"] == hash_key(created["key"]) and created["key"] not in str(dict(row))
    key = await env.admin.get_key(created["id"])
    assert (key["used_usd"], key["remaining_usd"], key["remaining_nano"]) == ("0.033333333", "0.066666667", 66_666_667)
    assert "key" not in key
    assert env.changes == [1] and await env.version() == 1


async def test_overdrawn_key_shows_nothing_remaining(env: Env) -> None:
    created = await env.admin.create_key({"name": "tight", "quota_usd": "0.000000002"})
    async with env.engine.begin() as conn:
        await conn.execute(sa.update(api_keys).values(used_nano=5))
    key = await env.admin.get_key(created["id"])
    assert (key["remaining_nano"], key["remaining_usd"], key["used_usd"]) == (0, "0", "0.000000005")


async def test_every_change_bumps_the_version_and_a_failed_one_does_not(env: Env) -> None:
    key = await env.admin.create_key({"name": "a"})
    await env.admin.update_key(key["id"], {"models": ["gpt-*"]})
    await env.admin.disable_key(key["id"])
    channel = await env.admin.create_channel({"name": "m", "type": "mock"})
    await env.admin.update_channel(channel["id"], {"weight": 0})
    await env.admin.put_price("gpt-*", {"input": 1})
    await env.admin.delete_price("gpt-*")
    assert await env.version() == 7 and len(env.changes) == 7
    with pytest.raises(Conflict):
        await env.admin.create_channel({"name": "m", "type": "mock"})
    with pytest.raises(Conflict):
        await env.admin.create_key({"name": "a"})
    with pytest.raises(NotFound):
        await env.admin.delete_price("gpt-*")
    assert await env.version() == 7 and len(env.changes) == 7


async def test_upstream_key_is_encrypted_at_rest_and_never_rendered(env: Env) -> None:
    secret = "sk-upstream-0123456789abcdef"
    created = await env.admin.create_channel({"name": "up", "type": "openai", "base_url": "https://api.example",
                                              "api_key": secret, "models": ["gpt-4o"]})
    async with env.engine.connect() as conn:
        stored = (await conn.execute(sa.select(channels))).one()._mapping
    assert stored["api_key_enc"] != secret and SecretBox(SECRET).decrypt(stored["api_key_enc"]) == secret
    views = [created, await env.admin.get_channel(created["id"]), *await env.admin.list_channels()]
    for view in views:
        assert secret not in str(view) and "api_key_enc" not in view and view["api_key_hint"] == "sk-up…cdef"
        assert view["health"] == {"consecutive_failures": 0, "circuit_open": False}
    cleared = await env.admin.update_channel(created["id"], {"api_key": None})
    assert cleared["api_key_hint"] == ""
    async with env.engine.connect() as conn:
        assert (await conn.execute(sa.select(channels.c.api_key_enc))).scalar_one() == ""


async def sync_keys(env: Env, *keys: KeyConfig) -> None:
    """What ``serve`` and ``migrate`` do with the ``keys:`` of the config file."""
    async with env.engine.begin() as conn:
        await sync_config(conn, Settings(keys=keys), SecretBox(SECRET))


async def test_resolve_by_id_or_name(env: Env) -> None:
    first = await env.admin.create_key({"name": "twin"})
    await sync_keys(env, KeyConfig(name="twin", key="sk-config-twin-0123456789"))  # the file may reuse a name
    solo = await env.admin.create_key({"name": "solo"})
    assert await env.admin.resolve_key(str(first["id"])) == first["id"]
    assert await env.admin.resolve_key("solo") == solo["id"]
    with pytest.raises(Conflict):
        await env.admin.resolve_key("twin")
    with pytest.raises(NotFound):
        await env.admin.resolve_key("nobody")
    channel = await env.admin.create_channel({"name": "c1", "type": "mock"})
    assert await env.admin.resolve_channel("c1") == await env.admin.resolve_channel(str(channel["id"]))


async def test_key_names_are_unique_on_create_and_rename(env: Env) -> None:
    alice = await env.admin.create_key({"name": "alice"})
    await env.admin.disable_key(alice["id"])  # a disabled key keeps its name
    bob = await env.admin.create_key({"name": "bob"})
    version = await env.version()
    attempts = (lambda: env.admin.create_key({"name": " alice "}),
                lambda: env.admin.update_key(bob["id"], {"name": "alice"}))
    for attempt in attempts:
        with pytest.raises(Conflict) as caught:
            await attempt()
        assert (caught.value.status, caught.value.code, caught.value.param) == (409, "conflict", "name")
        assert "alice" in caught.value.message
    assert await env.version() == version and [k["name"] for k in await env.admin.list_keys()] == ["alice", "bob"]
    # Sending a key its own name, or a free one, is no conflict.
    assert (await env.admin.update_key(bob["id"], {"name": " bob ", "quota_usd": "1"}))["quota_usd"] == "1"
    assert (await env.admin.update_key(alice["id"], {"name": "carol"}))["name"] == "carol"
    assert (await env.admin.update_key(bob["id"], {"name": "alice"}))["name"] == "alice"


async def test_concurrent_creates_with_one_name_make_one_key(env: Env) -> None:
    """No unique constraint guards key names: the check and the insert must not interleave."""
    results = await asyncio.gather(*(env.admin.create_key({"name": "racer"}) for _ in range(6)),
                                   return_exceptions=True)
    assert sum(isinstance(r, dict) for r in results) == 1, results
    assert all(isinstance(r, dict | Conflict) for r in results), results
    assert [k["name"] for k in await env.admin.list_keys()] == ["racer"]


async def test_config_keys_may_share_a_name_with_api_keys(env: Env) -> None:
    """The config sync matches keys by hash, so a file key named like an API key is still applied."""
    made = await env.admin.create_key({"name": "shared", "quota_usd": "1"})
    declared = KeyConfig(name="shared", key="sk-config-shared-0123456789", quota_usd="2")
    await sync_keys(env, declared)
    await sync_keys(env, declared)  # and again at the next start: updated in place, not duplicated
    keys = await env.admin.list_keys()
    assert [(k["name"], k["source"], k["quota_usd"]) for k in keys] == [("shared", "api", "1"),
                                                                        ("shared", "config", "2")]
    with pytest.raises(Conflict):
        await env.admin.resolve_key("shared")
    # Both keep working; only making or renaming a key through the service is held to unique names.
    assert (await env.admin.update_key(made["id"], {"name": "shared", "enabled": False}))["enabled"] is False
    with pytest.raises(Conflict):
        await env.admin.create_key({"name": "shared"})
    renamed = await env.admin.update_key(made["id"], {"name": "from-api"})
    assert renamed["name"] == "from-api" and await env.admin.resolve_key("shared") == keys[1]["id"]


async def test_prices_are_exact(env: Env) -> None:
    price = await env.admin.put_price("gpt-4o", {"input": "2.5", "output": 10, "cached_input": 1.25})
    assert price["input"] == "2.5" and price["cached_input"] == "1.25" and price["per_call"] is None
    async with env.engine.connect() as conn:
        row = (await queries.list_prices(conn))[0]
    assert (row["input_nano"], row["output_nano"], row["cached_input_nano"]) == (2_500_000_000, 10 * 10**9,
                                                                                 1_250_000_000)
    with pytest.raises(InvalidRequest) as caught:
        await env.admin.put_price("gpt-4o", {"per_call": "0.0000000005"})
    assert (caught.value.code, caught.value.param) == ("invalid_value", "per_call")


# --- usage --------------------------------------------------------------------------------------

def record(i: int, *, key_id: int = 1, model: str = "m", at_ms: int = 0, cost: int = 0) -> dict[str, Any]:
    return {"request_id": f"req_{i}", "created_at_ms": at_ms, "key_id": key_id, "surface": "openai.chat",
            "model": model, "stream": False, "status": 200, "end_reason": "done", "usage_source": "upstream",
            "input_tokens": 10, "output_tokens": 5, "cost_nano": cost}


async def insert_usage(env: Env, rows: list[dict[str, Any]]) -> None:
    async with env.engine.begin() as conn:
        await conn.execute(sa.insert(usage_records), rows)


async def test_usage_pages_newest_first(env: Env) -> None:
    await insert_usage(env, [record(i, at_ms=i * 1000, cost=i) for i in range(1, 8)])
    seen: list[str] = []
    params: dict[str, str] = {"limit": "3"}
    while True:
        page = await env.admin.list_usage(params)
        seen += [r["request_id"] for r in page["data"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = str(page["next_cursor"])
    assert seen == [f"req_{i}" for i in range(7, 0, -1)]
    window = await env.admin.list_usage({"since": "2", "until": "1970-01-01T00:00:05Z"})
    assert [r["request_id"] for r in window["data"]] == ["req_4", "req_3", "req_2"]
    one = await env.admin.get_usage("req_3")
    assert (one["cost_nano"], one["cost_usd"], one["created_at"]) == (3, "0.000000003", "1970-01-01T00:00:03.000Z")


async def test_usage_summary_groups_by_day_and_totals(env: Env) -> None:
    await insert_usage(env, [
        record(1, key_id=1, model="a", at_ms=0, cost=1_000_000_001),
        record(2, key_id=1, model="a", at_ms=DAY_MS - 1, cost=2),
        record(3, key_id=2, model="a", at_ms=DAY_MS, cost=3),
        record(4, key_id=1, model="b", at_ms=DAY_MS + 5, cost=4),
    ])
    by_day = await env.admin.usage_summary({"group_by": "day"})
    assert [(r["day"], r["requests"], r["cost_nano"]) for r in by_day["data"]] == [
        ("1970-01-01", 2, 1_000_000_003), ("1970-01-02", 2, 7)]
    assert by_day["total"] == {"requests": 4, "input_tokens": 40, "output_tokens": 20, "cached_input_tokens": 0,
                               "cost_nano": 1_000_000_010, "cost_usd": "1.00000001"}
    by_key_model = await env.admin.usage_summary({"group_by": "key_id,model", "since": "86400"})
    assert [(r["key_id"], r["model"], r["cost_usd"]) for r in by_key_model["data"]] == [
        (1, "b", "0.000000004"), (2, "a", "0.000000003")]
    empty = await env.admin.usage_summary({"model": "none"})
    assert empty["data"] == [] and empty["total"]["requests"] == 0


@pytest.mark.parametrize(("value", "expected"), [
    ("0", 0), ("1718000000", 1_718_000_000_000), ("1718000000.25", 1_718_000_000_250),
    ("2024-06-10", 1_717_977_600_000), ("2024-06-10T02:00:00+02:00", 1_717_977_600_000),
    ("2024-06-10T00:00:00Z", 1_717_977_600_000),
])
def test_instants(value: str, expected: int) -> None:
    assert inputs.instant_ms(value, "since") == expected


@pytest.mark.parametrize("value", ["-1", "NaN", "Infinity", "1e400", "soon", "0001-01-01T00:00:00+14:00", ""])
def test_bad_instants(value: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        inputs.instant_ms(value, "since")
    assert caught.value.param == "since"


# --- probes -------------------------------------------------------------------------------------

def channel(kind: str, base_url: str = "", models: tuple[str, ...] = ("m",)) -> ChannelRecord:
    return ChannelRecord(id=1, name="c", type=kind, base_url=base_url, api_key="sk-secret-secret", models=models)


async def test_probe_mock_needs_no_http_client() -> None:
    result = await probe_channel(channel("mock"), None, 5.0)
    assert result["ok"] is True and result["status"] == 200 and result["error"] is None


async def test_probe_unreachable_upstream_fails_quickly() -> None:
    session = create_session()
    try:
        result = await probe_channel(channel("openai", "http://127.0.0.1:1"), HttpTransport(session), 5.0)
    finally:
        await session.close()
    assert result == {"ok": False, "status": None, "latency_ms": result["latency_ms"],
                      "error": "the upstream could not be reached"}


async def test_probe_without_transport_or_known_type() -> None:
    no_client = await probe_channel(channel("openai", "http://127.0.0.1:1"), None, 5.0)
    assert no_client["ok"] is False and "HTTP client" in no_client["error"]
    unknown = await probe_channel(channel("bard"), None, 5.0)
    assert unknown["ok"] is False and "bard" in unknown["error"]


async def test_successful_test_closes_the_circuit(env: Env) -> None:
    created = await env.admin.create_channel({"name": "m", "type": "mock", "models": ["m"]})
    health = HealthBook(failures=1)
    admin = AdminService(env.engine, SecretBox(SECRET), health=health)
    health.failure(created["id"])
    assert (await admin.get_channel(created["id"]))["health"]["circuit_open"] is True
    result = await admin.test_channel(created["id"])
    assert result["ok"] is True and result["name"] == "m"
    assert (await admin.get_channel(created["id"]))["health"]["circuit_open"] is False
