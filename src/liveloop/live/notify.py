"""Room messages from the service layer, published to the room bus once their transaction has committed.

A lottery result or a flash-offer sell-out is announced only if the change that produced it is durable.
Messages that carry state (cards and their results, show changes, cues, moderation, draws) are also written
to ``room_messages`` in that transaction, with an id (``mid``): the process that committed publishes them
at once and deletes the rows a moment later. If it dies in between, the room relay of any process publishes
what is older than a few seconds; should a message then go out twice, rooms drop the second copy by its id.
Ephemeral messages (a vote, a progress tick, a flash-offer count, a scoreboard) are published only: the
next one supersedes them, and a viewer who joins later reads the state from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from liveloop.kit.db import transaction
from liveloop.kit.ids import new_id
from liveloop.kit.time import utc_now
from liveloop.kit.txbuffer import TransactionBuffer
from liveloop.live import repository
from liveloop.live.bus import Bus
from liveloop.live.protocol import EPHEMERAL

log = logging.getLogger(__name__)

RELAY_KEY = "liveloop.room_relay"  # the sessionmaker's info carries the process's room relay under this key
ROOM_OUT = TransactionBuffer("room_out")


def to_room(session: AsyncSession, room: str, message: Mapping[str, Any]) -> None:
    """Send ``message`` to everyone in ``room`` after the current transaction commits."""
    mid = None if message.get("k") in EPHEMERAL else new_id("rm")
    if mid is not None:
        message = {"mid": mid, **message}
    ROOM_OUT.add(session, (room, orjson.dumps(message), mid))


def write_durable(session: Session) -> None:
    """Before a commit: the durable room messages, as rows (see ``liveloop.database``)."""
    if session.in_nested_transaction():
        return
    now = utc_now()
    rows = [
        {"id": mid, "show_id": room, "payload": payload, "created_at": now}
        for room, payload, mid in ROOM_OUT.peek(session)
        if mid is not None
    ]
    if rows:
        repository.write_room_messages(session, rows)


def publish_committed(session: Session) -> None:
    """After a commit: the room messages of the transaction go to this process's relay."""
    if session.in_nested_transaction():
        return  # a savepoint was released: the transaction around it has not committed yet
    pending = ROOM_OUT.take(session)
    relay = session.info.get(RELAY_KEY)
    if pending and relay is not None:
        relay.publish_committed(pending)


class RoomRelay:
    """Publishes committed room messages on this process's bus, and those another process left behind."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        bus: Bus,
        *,
        grace_seconds: float = 5.0,
        poll_seconds: float = 1.0,
        batch: int = 200,
    ) -> None:
        self.sessions = sessions
        self.bus = bus
        self.grace = timedelta(seconds=grace_seconds)
        self.poll_seconds = poll_seconds
        self.batch = batch
        self._published: list[str] = []  # ids of durable messages on the bus whose rows are not deleted yet
        self._tasks: set[asyncio.Task[None]] = set()
        self._loop_task: asyncio.Task[None] | None = None

    def publish_committed(self, pending: list[tuple[str, bytes, str | None]]) -> None:
        task = asyncio.get_running_loop().create_task(self._send(pending))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, pending: list[tuple[str, bytes, str | None]]) -> None:
        for room, payload, mid in pending:
            try:
                await self.bus.publish(room, payload)
            except Exception:  # the row stays; the relay tries again after the grace period
                log.exception("could not publish a room message for room %s", room)
                continue
            if mid is not None:
                self._published.append(mid)

    async def start(self) -> None:
        self._loop_task = asyncio.create_task(self._run(), name="liveloop-room-relay")

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._loop_task is not None:
            self._loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._loop_task
        with contextlib.suppress(Exception):
            await self.forget_published()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                await self.forget_published()
                while await self.publish_left_behind() == self.batch:
                    pass
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("room relay pass failed; retrying")

    async def forget_published(self) -> int:
        """Delete the rows of messages this process has published (waiting for the publishes under way)."""
        if self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)
        done, self._published = self._published, []
        if not done:
            return 0
        try:
            async with transaction(self.sessions) as session:
                await repository.forget_room_messages(session, done)
        except BaseException:
            self._published.extend(done)
            raise
        return len(done)

    async def publish_left_behind(self) -> int:
        """Publish rows older than the grace period (their process died before it could), then delete them."""
        async with transaction(self.sessions) as session:
            rows = await repository.left_behind(session, utc_now() - self.grace, self.batch)
            for _, show_id, payload in rows:
                await self.bus.publish(show_id, payload)
            if rows:
                await repository.forget_room_messages(session, [row_id for row_id, _, _ in rows])
        if rows:
            log.info("published %d room messages left behind by another process", len(rows))
        return len(rows)
