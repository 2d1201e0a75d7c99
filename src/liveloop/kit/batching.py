"""Group commit: many concurrent callers' rows written by one transaction, each caller awaiting its own.

A caller's ``await write(row)`` returns only once the transaction holding its row has committed, so an
acknowledged write is durable. While one flush runs, new rows gather for the next; when idle, a row is
flushed at once (no timer delay).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

from sqlalchemy import Table, bindparam
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveloop.kit.db import transaction

K = TypeVar("K")
V = TypeVar("V")

log = logging.getLogger(__name__)


Flush = Callable[[list[dict[str, Any]]], Awaitable[None]]


class GroupCommitWriter:
    def __init__(self, flush: Flush, *, name: str = "group-commit", max_batch: int = 1000) -> None:
        self.flush = flush
        self.name = name
        self.max_batch = max_batch
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def write(self, row: dict[str, Any]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=self.name)
        await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                try:
                    await self.flush([row for row, _ in batch])
                except Exception as exc:  # every caller of the batch learns the write failed
                    for _, future in batch:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in batch:
                        if not future.done():
                            future.set_result(None)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


Work = Callable[[AsyncSession], Awaitable[Callable[[], object] | None]]
OnError = Callable[[BaseException], None]


class TransactionBatcher:
    """Many callers' small units of work in one short transaction, each in its own savepoint.

    ``submit(work, on_error)`` queues ``work`` and returns at once (False, and nothing queued, when
    ``max_pending`` units are waiting already: the caller refuses). A loop runs the queue in order, at most one
    transaction every ``interval`` seconds; a transaction takes units for at most ``max_hold`` seconds, then
    commits, so under a flood the database (SQLite's only connection) is free most of the time for others.

    Each unit runs in a savepoint of the shared transaction: what one unit raises rolls back that unit only, and
    goes to its ``on_error``. The callable a unit returns runs after the commit (an answer to push: it is
    never sent for a write that did not happen). When the commit fails, every unit's ``on_error`` gets the error.
    """

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        interval: float = 0.05,
        max_hold: float = 0.025,
        max_pending: int = 5000,
        max_batch: int = 500,
        name: str = "transaction-batcher",
    ) -> None:
        self.sessions = sessions
        self.interval = interval
        self.max_hold = max_hold
        self.max_pending = max_pending
        self.max_batch = max_batch
        self.name = name
        self.transactions = 0  # committed so far
        self._pending: deque[tuple[Work, OnError]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._current: asyncio.Future[None] | None = None
        self._last = 0.0

    def __len__(self) -> int:
        return len(self._pending)

    def submit(self, work: Work, on_error: OnError) -> bool:
        if len(self._pending) >= self.max_pending:
            return False
        self._pending.append((work, on_error))
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)
        return True

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                delay = self._last + self.interval - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                self._last = time.monotonic()
                # Shielded: stopping the loop never cuts a transaction short, so no caller goes unanswered.
                self._current = asyncio.ensure_future(self._apply())
                await asyncio.shield(self._current)

    async def _apply(self) -> None:
        taken: list[tuple[Work, OnError]] = []
        after: list[Callable[[], object]] = []
        try:
            async with transaction(self.sessions) as session:
                deadline = time.monotonic() + self.max_hold
                while self._pending and len(taken) < self.max_batch and (not taken or time.monotonic() < deadline):
                    work, on_error = self._pending.popleft()
                    taken.append((work, on_error))
                    try:
                        async with session.begin_nested():
                            done = await work(session)
                    except Exception as exc:
                        after.append(_bind(on_error, exc))
                    else:
                        if done is not None:
                            after.append(done)
        except Exception as exc:
            log.exception("%s: a batch of %d writes could not be committed", self.name, len(taken))
            for _, on_error in taken:
                _call(_bind(on_error, exc))
            return
        self.transactions += 1
        for done in after:
            _call(done)

    async def close(self) -> None:
        """Stop the loop, then write what is still queued."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._current is not None:
            with contextlib.suppress(Exception):
                await self._current
        while self._pending:
            await self._apply()


def _bind(on_error: OnError, exc: BaseException) -> Callable[[], None]:
    return lambda: on_error(exc)


def _call(fn: Callable[[], object]) -> None:
    try:
        fn()
    except Exception:
        log.exception("an answer to a batched write failed")


def session_flush(sessions: async_sessionmaker[AsyncSession], table: Table) -> Flush:
    """Write a batch in one transaction of the application's own sessions (any backend)."""

    async def flush(rows: list[dict[str, Any]]) -> None:
        async with transaction(sessions) as session:
            await session.execute(table.insert(), rows)

    return flush


class SQLiteBatchWriter:
    """Write batches to a SQLite file through a dedicated ``sqlite3`` connection, one thread hop per batch.

    On SQLite the async driver costs a couple of milliseconds of fixed overhead per transaction, more than
    the write itself; this path spends about half a millisecond. Values go through SQLAlchemy's own bind
    processors for each column, so what is stored is exactly what the ORM would store.
    """

    def __init__(self, database: str, table: Table, dialect: Dialect) -> None:
        self.database = database
        compiled = table.insert().compile(dialect=dialect)
        self.columns = [c.key for c in table.columns]
        self.sql = str(table.insert().values({c: bindparam(c) for c in self.columns}).compile(dialect=dialect))
        self.order = list(compiled.positiontup or self.columns)
        self.processors = {c.key: c.type._cached_bind_processor(dialect) for c in table.columns}
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._checkpointer: threading.Thread | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            conn = sqlite3.connect(self.database, isolation_level=None, check_same_thread=False, timeout=60)
            # This connection never checkpoints on commit (that would put a file copy and an fsync on the
            # path of whichever write crossed the threshold); a background thread checkpoints instead.
            for pragma in (
                "journal_mode=WAL",
                "synchronous=NORMAL",
                "foreign_keys=ON",
                "busy_timeout=60000",
                "wal_autocheckpoint=0",
            ):
                conn.execute(f"PRAGMA {pragma}")
            self._conn = conn
            self._checkpointer = threading.Thread(target=self._checkpoint_loop, name="sqlite-checkpoint", daemon=True)
            self._checkpointer.start()
        return self._conn

    def _checkpoint_loop(self, every_seconds: float = 1.0) -> None:
        conn = sqlite3.connect(self.database, isolation_level=None, check_same_thread=False, timeout=60)
        try:
            while not self._stop.wait(every_seconds):
                # PASSIVE never blocks writers or readers; what it cannot copy now it copies next time.
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        finally:
            conn.close()

    def _write(self, rows: list[dict[str, Any]]) -> None:
        params = []
        for row in rows:
            values = []
            for column in self.order:
                value = row.get(column)
                process = self.processors[column]
                values.append(process(value) if process is not None and value is not None else value)
            params.append(values)
        with self._lock:
            conn = self._connection()
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany(self.sql, params)
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    async def __call__(self, rows: list[dict[str, Any]]) -> None:
        await asyncio.to_thread(self._write, rows)

    def close(self) -> None:
        self._stop.set()
        if self._checkpointer is not None:
            self._checkpointer.join(timeout=5)
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None


class TTLCache(Generic[K, V]):
    """A small time-bounded cache for values that rarely change (and are harmless when briefly stale)."""

    def __init__(self, ttl_seconds: float, max_items: int = 100_000) -> None:
        self.ttl = ttl_seconds
        self.max_items = max_items
        self._items: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V | None:
        hit = self._items.get(key)
        if hit is None or hit[0] < time.monotonic():
            return None
        return hit[1]

    def put(self, key: K, value: V) -> None:
        if len(self._items) >= self.max_items:
            self._items.clear()
        self._items[key] = (time.monotonic() + self.ttl, value)

    def forget(self, key: K) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()
