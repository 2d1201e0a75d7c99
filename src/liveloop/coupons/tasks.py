"""Coupon batches too large for one request, filled off the request path one chunk per transaction.

A request that creates such a batch only marks its session; once that transaction has committed, the
process's :class:`BatchGenerator` (kept in the sessionmaker's ``info`` under :data:`GENERATOR_KEY`) starts
filling it. Between chunks the generator steps aside, so requests waiting for a database connection (on
SQLite there is only one) are served first. Batches left half-made by a process that died are finished by the
next generator that starts, or by the worker's ``coupon_batches`` job, whichever comes first: chunks are
claimed in the database (see :func:`liveloop.coupons.service.generate_chunk`), so they can run side by side.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from liveloop.coupons.service import GENERATION_STARTED, generate_next_chunk
from liveloop.kit.db import transaction

log = logging.getLogger(__name__)

GENERATOR_KEY = "liveloop.coupon_generator"
PAUSE_SECONDS = 0.005  # between chunks: long enough for every waiting request to take the connection first


class BatchGenerator:
    """Fills generating batches, one chunk per transaction, in one background task per process."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], *, pause_seconds: float = PAUSE_SECONDS, retries: int = 5
    ) -> None:
        self.sessions = sessions
        self.pause_seconds = pause_seconds
        self.retries = retries
        self._task: asyncio.Task[None] | None = None
        self._again = False

    def kick(self) -> None:
        """Make sure the batches still generating are being filled (a no-op when they already are)."""
        if self._task is not None and not self._task.done():
            self._again = True  # the running pass may have just found nothing: look once more
            return
        self._task = asyncio.get_running_loop().create_task(self._run(), name="liveloop-coupon-batches")

    async def _run(self) -> None:
        failures = 0
        while True:
            self._again = False
            try:
                while await self.run_chunk():
                    failures = 0
                    await asyncio.sleep(self.pause_seconds)
            except Exception:
                failures += 1
                if failures > self.retries:
                    log.exception("coupon batch generation failed %d times; the worker will resume it", failures)
                    return
                log.warning("coupon batch generation failed; retrying", exc_info=True)
                await asyncio.sleep(0.2 * 2**failures)
                continue
            if not self._again:
                return

    async def run_chunk(self) -> int:
        """One chunk of the oldest batch still generating, in its own transaction; 0 when none is left."""
        async with transaction(self.sessions) as session:
            return await generate_next_chunk(session)

    async def wait(self) -> None:
        """Until the current pass is done (tests and shutdown)."""
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(self._task)

    async def close(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()  # the chunk under way rolls back; the next generator or the worker redoes it
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def start_generation(session: Session) -> None:
    """After a commit that created a batch: this process's generator starts on it (see ``liveloop.database``)."""
    if session.in_nested_transaction():
        return  # a savepoint was released: the transaction around it has not committed yet
    if session.info.pop(GENERATION_STARTED, False):
        generator = session.info.get(GENERATOR_KEY)
        if generator is not None:
            generator.kick()


def forget_generation(session: Session) -> None:
    """After a rollback: the batch it created is gone, and nothing is generated."""
    session.info.pop(GENERATION_STARTED, None)


async def coupon_batches(session: AsyncSession) -> int:
    """The worker's job: one chunk of a batch still generating (none made by this process, or left behind)."""
    # Step aside first: this session has no connection yet, so requests waiting for one are served before it.
    await asyncio.sleep(PAUSE_SECONDS)
    return await generate_next_chunk(session)
