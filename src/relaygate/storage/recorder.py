"""Group commit of usage records.

Requests hand their record to ``Recorder.write`` and wait until it is committed; one writer task
commits whatever has queued up meanwhile in a single transaction (records plus each key's spend).
Under load many requests share one commit; alone, a request waits for exactly one. The writer also
re-reads the keys' committed spend between commits, so the in-memory ledger can never count a batch
twice or miss one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import AsyncIterator, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, NamedTuple, Protocol

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from relaygate.storage import queries
from relaygate.storage.tables import api_keys, usage_records

log = logging.getLogger("relaygate.recorder")

MAX_BATCH = 1000


class UsageRecord(NamedTuple):
    """One request's usage and cost, built whole by the meter and never changed after (the recorder, the
    task store and the access log read it; none may alter what was decided). A named tuple rather than a
    frozen dataclass: as cheap to build as a plain one (a frozen dataclass's ``__init__`` cost ~3 µs more
    per request, measured), and already the row the group commit inserts, its fields in column order."""

    request_id: str
    created_at_ms: int
    surface: str
    model: str
    stream: bool
    status: int
    end_reason: str
    usage_source: str = "none"
    key_id: int | None = None
    key_name: str | None = None
    upstream_model: str | None = None
    channel_id: int | None = None
    channel_name: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    cost_nano: int = 0
    attempts: int = 0
    latency_ms: int = 0
    first_byte_ms: int | None = None
    client_ip: str | None = None
    error_code: str | None = None
    image_input_tokens: int = 0
    images: int = 0  # images billed (image endpoints)
    client_request_id: str | None = None  # the client's own id; ``request_id`` is relaygate's


class SpendListener(Protocol):
    def committed(self, spend_by_key: dict[int, int]) -> None: ...

    def refreshed(self, used_by_key: dict[int, int]) -> None: ...

    def failed(self, spend_by_key: dict[int, int]) -> None: ...


_Item = tuple[UsageRecord, "asyncio.Future[None]"]

# The hot write, prepared once: a record is its row, its fields in the table columns named here.
_COLUMNS = UsageRecord._fields
assert all(name in usage_records.c for name in _COLUMNS), "UsageRecord and usage_records must match"
_INSERT_USAGE = sa.insert(usage_records)
_INSERT_USAGE_SQL = (f"INSERT INTO {usage_records.name} ({', '.join(_COLUMNS)}) "
                     f"VALUES ({', '.join('?' for _ in _COLUMNS)})")
_ADD_SPEND_SQL = f"UPDATE {api_keys.name} SET used_nano = used_nano + ? WHERE id = ?"


def _row_dicts(records: list[UsageRecord]) -> list[dict[str, Any]]:
    return [r._asdict() for r in records]


def _sqlite_file(engine: AsyncEngine) -> str | None:
    """The database file when the engine is a file-backed SQLite database, else None."""
    url, dialect = getattr(engine, "url", None), getattr(engine, "dialect", None)
    if url is None or dialect is None:  # not a real engine (a test double): use it as it is
        return None
    database: str | None = url.database
    if dialect.name != "sqlite" or not database or database == ":memory:" or database.startswith("file:"):
        return None
    if url.query.get("uri") or url.query.get("mode"):
        return None
    return database


class _SqliteWriter:
    """The group commit on SQLite without the async driver's per-statement thread round trips: one
    connection of its own, on one thread of its own; a whole batch (BEGIN, the inserts, the spend
    updates, COMMIT) is one hop to that thread. It copies the pragmas of the engine's connections."""

    def __init__(self, path: str) -> None:
        self._path = path
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="relaygate-recorder")
        self._conn: sqlite3.Connection | None = None

    async def open(self, pragmas: dict[str, int]) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._open, pragmas)

    def _open(self, pragmas: dict[str, int]) -> None:
        conn = sqlite3.connect(self._path, timeout=30, isolation_level=None, check_same_thread=True)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            for name, value in pragmas.items():
                conn.execute(f"PRAGMA {name}={int(value)}")
        except BaseException:
            conn.close()
            raise
        self._conn = conn

    async def insert(self, rows: Sequence[tuple[Any, ...]], spend: list[tuple[int, int]]) -> None:
        await asyncio.get_running_loop().run_in_executor(self._executor, self._insert, rows, spend)

    def _insert(self, rows: Sequence[tuple[Any, ...]], spend: list[tuple[int, int]]) -> None:
        conn = self._conn
        assert conn is not None
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(_INSERT_USAGE_SQL, rows)
                if spend:
                    conn.executemany(_ADD_SPEND_SQL, spend)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.IntegrityError as exc:  # the same exception the SQLAlchemy path raises
            raise sa.exc.IntegrityError(_INSERT_USAGE_SQL, None, exc) from exc

    async def close(self) -> None:
        if self._conn is not None:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


class _SharedExclusive:
    """Many shared holders at once, or one exclusive holder (the refresh), which waits for the shared
    ones in progress and keeps new ones waiting meanwhile."""

    def __init__(self) -> None:
        self._condition = asyncio.Condition()
        self._shared = 0
        self._exclusive = False

    @contextlib.asynccontextmanager
    async def shared(self) -> AsyncIterator[None]:
        async with self._condition:
            await self._condition.wait_for(lambda: not self._exclusive)
            self._shared += 1
        try:
            yield
        finally:
            async with self._condition:
                self._shared -= 1
                self._condition.notify_all()

    async def try_exclusive(self, timeout_s: float) -> bool:
        """Hold it exclusively; False (and not held) when the shared holders did not finish in time."""
        async with self._condition:
            await self._condition.wait_for(lambda: not self._exclusive)
            self._exclusive = True
            try:
                async with asyncio.timeout(timeout_s):
                    await self._condition.wait_for(lambda: self._shared == 0)
            except TimeoutError:
                self._exclusive = False
                self._condition.notify_all()
                return False
        return True

    async def release_exclusive(self) -> None:
        async with self._condition:
            self._exclusive = False
            self._condition.notify_all()


class Recorder:
    def __init__(self, engine: AsyncEngine, listener: SpendListener, *,
                 refresh_every_s: float = 1.0, clock: Callable[[], float] | None = None) -> None:
        self._engine = engine
        self._listener = listener
        self._queue: asyncio.Queue[_Item | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._refresh_every_s = refresh_every_s
        self._clock = clock or (lambda: asyncio.get_running_loop().time())
        self._last_refresh = 0.0
        self._last_batch = 0
        self._sqlite_path = _sqlite_file(engine)
        self._sqlite: _SqliteWriter | None = None
        self._outside = _SharedExclusive()

    def start(self) -> None:
        if not self._last_refresh:  # the period counts from now, not from the clock's origin
            self._last_refresh = self._clock()
        self._task = asyncio.create_task(self._run(), name="relaygate-recorder")

    async def stop(self) -> None:
        """Commit everything queued, then stop."""
        if self._task is None:
            return
        await self._queue.put(None)
        await self._task
        self._task = None
        if self._sqlite is not None:
            await self._sqlite.close()
            self._sqlite = None

    async def write(self, record: UsageRecord) -> None:
        """Return once the record is committed (raises if the commit failed). A caller cancelled meanwhile
        cancels only its wait: the record stays queued and is committed (the writer resolves only the
        futures still pending), so no shield (an outer future and two callbacks per call) is needed."""
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.put_nowait((record, future))
        await future

    async def _run(self) -> None:
        stopping = False
        while not stopping:
            try:
                async with asyncio.timeout(self._refresh_every_s):
                    item = await self._queue.get()
            except TimeoutError:
                await self._refresh_if_due()
                continue
            if self._last_batch > 1:
                # Under concurrency, let the requests that are ready in this loop iteration queue
                # their records too: fewer, larger commits (a request alone never waits for this).
                await asyncio.sleep(0)
            batch: list[_Item] = []
            if item is None:
                stopping = True
            else:
                batch.append(item)
            while len(batch) < MAX_BATCH and not self._queue.empty():
                nxt = self._queue.get_nowait()
                if nxt is None:
                    stopping = True
                    continue
                batch.append(nxt)
            self._last_batch = len(batch)
            if batch:
                await self._commit(batch)
            await self._refresh_if_due()

    async def _commit(self, batch: list[_Item]) -> None:
        spend: dict[int, int] = {}
        for record, _ in batch:
            if record.key_id is not None and record.cost_nano:
                spend[record.key_id] = spend.get(record.key_id, 0) + record.cost_nano
        try:
            await self._insert([record for record, _ in batch], spend)
        except Exception as exc:  # a failed commit must reach every waiter, not kill the writer
            if len(batch) > 1:
                # One record the database refuses must not fail the rest of the batch.
                for item in batch:
                    await self._commit([item])
                return
            log.error("usage commit failed for %d records: %s", len(batch), type(exc).__name__)
            self._listener.failed(spend)
            for _, future in batch:
                if not future.done():
                    future.set_exception(RecorderError("usage record could not be stored"))
            return
        self._listener.committed(spend)
        for _, future in batch:
            if not future.done():
                future.set_result(None)

    async def _insert(self, records: list[UsageRecord], spend: dict[int, int]) -> None:
        if self._sqlite_path is not None:
            writer = self._sqlite or await self._open_sqlite()
            if writer is not None:
                await writer.insert(records,
                                    [(cost, key_id) for key_id, cost in spend.items()])
                return
        async with self._engine.begin() as conn:
            await conn.execute(_INSERT_USAGE, _row_dicts(records))
            for key_id, cost in spend.items():
                await conn.execute(
                    sa.update(api_keys).where(api_keys.c.id == key_id)
                    .values(used_nano=api_keys.c.used_nano + cost)
                )

    async def _open_sqlite(self) -> _SqliteWriter | None:
        """Open the dedicated SQLite writer with the pragmas the engine's connections have; if that
        fails, keep using the engine (same transaction, more overhead)."""
        assert self._sqlite_path is not None
        writer = _SqliteWriter(self._sqlite_path)
        try:
            async with self._engine.connect() as conn:
                pragmas = {name: int((await conn.exec_driver_sql(f"PRAGMA {name}")).scalar_one())
                           for name in ("synchronous", "busy_timeout", "foreign_keys")}
            await writer.open(pragmas)
        except Exception as exc:
            log.warning("usage records go through the engine: no dedicated SQLite writer (%s)", type(exc).__name__)
            await writer.close()
            self._sqlite_path = None
            return None
        self._sqlite = writer
        return writer

    async def refresh_now(self) -> None:
        """Read the committed spend once (at start, before the writer runs)."""
        self._last_refresh = self._clock()
        await self._refresh()

    async def _refresh_if_due(self) -> None:
        now = self._clock()
        if now - self._last_refresh < self._refresh_every_s:
            return
        self._last_refresh = now
        await self._refresh()

    async def _refresh(self) -> None:
        # Not while a change outside the group commit is between its commit and the ledger; if they take
        # long (a busy database), skip this refresh rather than hold up the writer.
        if not await self._outside.try_exclusive(self._refresh_every_s / 2):
            return
        try:
            async with self._engine.connect() as conn:
                used = await queries.key_balances(conn)
            self._listener.refreshed(used)
        except Exception as exc:
            log.warning("could not refresh key balances: %s", type(exc).__name__)
        finally:
            await self._outside.release_exclusive()

    def outside_commit(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Wrap a change of committed spend made outside the group commit (a task's hold or its end)
        together with the listener's update for it: no refresh reads the database between the two, so
        the ledger never counts such a change twice (read back and added) or misses it."""
        return self._outside.shared()


class RecorderError(Exception):
    pass
