"""Named queries on SQLite and PostgreSQL: usage filters, newest-first pagination, summaries, and the
configuration rows the snapshot is built from."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from relaygate.storage import queries
from relaygate.storage.tables import usage_records

DAY_MS = 86_400_000
T0 = 20_000 * DAY_MS  # midnight UTC, 2024-10-04


def _usage(i: int, **fields: Any) -> dict[str, Any]:
    row: dict[str, Any] = {"request_id": f"r{i:03d}", "created_at_ms": T0 + i * 60_000, "surface": "openai.chat",
                           "model": "gpt-4o", "stream": False, "status": 200, "end_reason": "done",
                           "usage_source": "upstream", "key_id": 1, "key_name": "a", "channel_id": 10,
                           "input_tokens": 10, "output_tokens": 2, "cached_input_tokens": 0, "cost_nano": 100}
    row.update(fields)
    return row


# 30 records: keys 1/2, models gpt-4o/gpt-4o-mini, channels 10/11, some not done, two days
ROWS = [_usage(i, key_id=1 + i % 2, model="gpt-4o" if i % 3 else "gpt-4o-mini", channel_id=10 + (i % 5 == 0),
               end_reason="done" if i % 7 else "client_gone", cost_nano=100 + i,
               input_tokens=10 + i, cached_input_tokens=i % 4,
               created_at_ms=T0 + i * 60_000 + (DAY_MS if i >= 20 else 0))
        for i in range(30)]


@pytest.fixture
async def filled(engine: AsyncEngine) -> AsyncEngine:
    async with engine.begin() as conn:
        await conn.execute(sa.insert(usage_records), ROWS)
    return engine


def _ids(rows: list[dict[str, Any]]) -> list[str]:
    return [str(r["request_id"]) for r in rows]


def _expected(pred: Any) -> list[str]:
    return [r["request_id"] for r in reversed(ROWS) if pred(r)]


@pytest.mark.parametrize(("filters", "pred"), [
    ({}, lambda r: True),
    ({"key_id": 2}, lambda r: r["key_id"] == 2),
    ({"model": "gpt-4o-mini"}, lambda r: r["model"] == "gpt-4o-mini"),
    ({"channel_id": 11}, lambda r: r["channel_id"] == 11),
    ({"end_reason": "client_gone"}, lambda r: r["end_reason"] == "client_gone"),
    ({"since_ms": T0 + DAY_MS}, lambda r: r["created_at_ms"] >= T0 + DAY_MS),
    ({"until_ms": T0 + 5 * 60_000}, lambda r: r["created_at_ms"] < T0 + 5 * 60_000),
    ({"request_id": "r017"}, lambda r: r["request_id"] == "r017"),
    ({"key_id": 1, "model": "gpt-4o", "end_reason": "done"},
     lambda r: r["key_id"] == 1 and r["model"] == "gpt-4o" and r["end_reason"] == "done"),
    ({"key_id": 3}, lambda r: False),
])
async def test_list_usage_filters_newest_first(filled: AsyncEngine, filters: dict[str, Any], pred: Any) -> None:
    async with filled.connect() as conn:
        rows = await queries.list_usage(conn, filters, limit=100)
    assert _ids(rows) == _expected(pred)


async def test_pages_cover_every_row_once(filled: AsyncEngine) -> None:
    seen: list[str] = []
    before: int | None = None
    pages = 0
    async with filled.connect() as conn:
        while True:
            page = await queries.list_usage(conn, {"key_id": 1}, limit=4, before_id=before)
            if not page:
                break
            pages += 1
            assert len(page) <= 4
            seen.extend(_ids(page))
            before = min(int(r["id"]) for r in page)
    assert seen == _expected(lambda r: r["key_id"] == 1)
    assert pages == 4  # 15 rows in pages of 4


async def test_usage_by_request_id(filled: AsyncEngine) -> None:
    async with filled.connect() as conn:
        row = await queries.usage_by_request_id(conn, "r005")
        missing = await queries.usage_by_request_id(conn, "nope")
    assert row is not None and row["cost_nano"] == 105 and row["channel_id"] == 11
    assert missing is None


def _totals(rows: list[dict[str, Any]]) -> dict[str, int]:
    return {"requests": len(rows), "input_tokens": sum(r["input_tokens"] for r in rows),
            "output_tokens": sum(r["output_tokens"] for r in rows),
            "cached_input_tokens": sum(r["cached_input_tokens"] for r in rows),
            "cost_nano": sum(r["cost_nano"] for r in rows)}


async def test_summary_without_grouping_is_the_totals(filled: AsyncEngine) -> None:
    async with filled.connect() as conn:
        [total] = await queries.usage_summary(conn, {}, [])
        [empty] = await queries.usage_summary(conn, {"key_id": 99}, [])
    assert {k: int(v) for k, v in total.items()} == _totals(ROWS)
    assert {k: int(v) for k, v in empty.items()} == {**_totals([]), "requests": 0}


@pytest.mark.parametrize("group_by", [["model"], ["key_id"], ["channel_id"], ["key_id", "model"], ["day"],
                                      ["day", "model"]])
async def test_summary_groups(filled: AsyncEngine, group_by: list[str]) -> None:
    def group_of(row: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(row["created_at_ms"] // DAY_MS if g == "day" else row[g] for g in group_by)

    expected: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
    for row in ROWS:
        expected.setdefault(group_of(row), []).append(row)
    async with filled.connect() as conn:
        result = await queries.usage_summary(conn, {}, group_by)
    got = {tuple(r[g] for g in group_by): {k: int(r[k]) for k in _totals([])} for r in result}
    assert got == {k: _totals(v) for k, v in expected.items()}
    assert [tuple(r[g] for g in group_by) for r in result] == sorted(expected)  # ordered by the groups


async def test_summary_by_day_puts_late_evening_in_its_own_day(engine: AsyncEngine) -> None:
    """A record at 18:00 UTC belongs to that day, not the next (integer division, not rounding)."""
    rows = [_usage(0, created_at_ms=T0 + 18 * 3_600_000), _usage(1, created_at_ms=T0 + DAY_MS - 1),
            _usage(2, created_at_ms=T0 + DAY_MS)]
    async with engine.begin() as conn:
        await conn.execute(sa.insert(usage_records), rows)
    async with engine.connect() as conn:
        result = await queries.usage_summary(conn, {}, ["day"])
    assert [(int(r["day"]), int(r["requests"])) for r in result] == [(T0 // DAY_MS, 2), (T0 // DAY_MS + 1, 1)]


async def test_summary_filters_by_time(filled: AsyncEngine) -> None:
    async with filled.connect() as conn:
        [second_day] = await queries.usage_summary(conn, {"since_ms": T0 + DAY_MS}, [])
    assert int(second_day["requests"]) == 10


# --- configuration rows -------------------------------------------------------------------------

async def test_keys_round_trip_with_big_amounts_and_json(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        key_id = await queries.insert_key(conn, {
            "name": "big", "key_hash": "b" * 64, "key_hint": "sk-b…", "quota_nano": 10**15 + 7,
            "models": ["gpt-4o", "gpt-4-gizmo-*"], "ip_allow": ["10.0.0.0/8"], "expires_at": 4_102_444_800})
        assert await queries.update_key(conn, key_id, {"used_nano": 2**40})
        assert not await queries.update_key(conn, key_id + 1000, {"used_nano": 1})
    async with engine.connect() as conn:
        key = await queries.get_key(conn, key_id)
        by_hash = await queries.find_key_by_hash(conn, "b" * 64)
        by_name = await queries.find_key_by_name(conn, "big")
        balances = await queries.key_balances(conn)
    assert key is not None and key == by_hash == by_name
    assert (key["quota_nano"], key["used_nano"]) == (10**15 + 7, 2**40)
    assert key["models"] == ["gpt-4o", "gpt-4-gizmo-*"] and key["ip_allow"] == ["10.0.0.0/8"]
    assert bool(key["enabled"]) is True and key["source"] == "api"
    assert balances == {key_id: 2**40}


async def test_channels_round_trip(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        first = await queries.insert_channel(conn, {"name": "a", "type": "openai", "base_url": "http://x",
                                                    "api_key_enc": "enc", "api_key_hint": "sk…",
                                                    "model_map": {"gpt-4-vision-preview": "gpt-4o"},
                                                    "options": {"mock_chunk_delay_ms": 0}})
        second = await queries.insert_channel(conn, {"name": "b", "type": "mock", "base_url": "",
                                                     "api_key_enc": "", "api_key_hint": "", "priority": -3})
        await queries.update_channel(conn, first, {"enabled": False, "weight": 5})
    async with engine.connect() as conn:
        rows = await queries.list_channels(conn)
        found = await queries.find_channel_by_name(conn, "b")
        got = await queries.get_channel(conn, first)
    assert [r["id"] for r in rows] == [first, second]
    assert found is not None and found["priority"] == -3
    assert got is not None and got["model_map"] == {"gpt-4-vision-preview": "gpt-4o"}
    assert (bool(got["enabled"]), got["weight"], got["options"]) == (False, 5, {"mock_chunk_delay_ms": 0})


async def test_prices_upsert_and_delete(engine: AsyncEngine) -> None:
    values = {"input_nano": 2_500_000_000, "output_nano": 10_000_000_000, "cached_input_nano": None,
              "cache_write_nano": None, "per_call_nano": None}
    async with engine.begin() as conn:
        await queries.upsert_price(conn, "gpt-4o", values, "config")
        await queries.upsert_price(conn, "gpt-4o", {**values, "output_nano": 11}, "api")
        await queries.upsert_price(conn, "gpt-4-gizmo-*", {**values, "per_call_nano": 100_000_000}, "api")
    async with engine.connect() as conn:
        prices = await queries.list_prices(conn)
    assert [(p["pattern"], p["output_nano"], p["source"]) for p in prices] == [
        ("gpt-4-gizmo-*", 10_000_000_000, "api"), ("gpt-4o", 11, "api")]
    async with engine.begin() as conn:
        assert await queries.delete_price(conn, "gpt-4o")
        assert not await queries.delete_price(conn, "gpt-4o")


async def test_meta_and_config_version(engine: AsyncEngine) -> None:
    async with engine.begin() as conn:
        assert await queries.config_version(conn) == 0
        assert await queries.bump_config_version(conn) == 1
        assert await queries.bump_config_version(conn) == 2
        await queries.set_meta(conn, "x", "1")
        await queries.set_meta(conn, "x", "2")
    async with engine.connect() as conn:
        assert await queries.config_version(conn) == 2
        assert await queries.get_meta(conn, "x") == "2"
        assert await queries.get_meta(conn, "missing") is None
