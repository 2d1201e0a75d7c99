"""Group commit: many concurrent callers' rows written by one transaction, each caller awaiting its own.

A caller's ``await write(row)`` returns only once the transaction holding its row has committed, so an
acknowledged write is durable. While one flush runs, new rows gather for the next; when idle, a row is
flushed at once (no timer delay).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, Generic, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from liveloop.kit.db import transaction

K = TypeVar("K")
V = TypeVar("V")


class GroupCommitWriter:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], table: Any, *, max_batch: int = 1000) -> None:
        self.sessions = sessions
        self.table = table
        self.max_batch = max_batch
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def write(self, row: dict[str, Any]) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name=f"group-commit-{self.table.name}")
        await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._pending:
                batch, self._pending = self._pending[: self.max_batch], self._pending[self.max_batch :]
                try:
                    async with transaction(self.sessions) as session:
                        await session.execute(self.table.insert(), [row for row, _ in batch])
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

    def clear(self) -> None:
        self._items.clear()
