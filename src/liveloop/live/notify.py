"""Room messages from the service layer, published to the room bus once their transaction has committed.

A lottery result or a flash-offer sell-out is announced only if the change that produced it is durable;
the room's state (cards, results) is also in the database, so a viewer who joins later sees it anyway.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from liveloop.kit.txbuffer import TransactionBuffer

log = logging.getLogger(__name__)

BUS_KEY = "liveloop.room_bus"  # the sessionmaker's info carries the process's room bus under this key
_ROOM_OUT = TransactionBuffer("room_out")
_tasks: set[asyncio.Task[None]] = set()


def to_room(session: AsyncSession, room: str, message: dict[str, Any]) -> None:
    """Send ``message`` to everyone in ``room`` after the current transaction commits."""
    _ROOM_OUT.add(session, (room, orjson.dumps(message)))


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released: the transaction around it has not committed yet
    pending = _ROOM_OUT.take(session)
    bus = session.info.get(BUS_KEY)
    if not pending or bus is None:
        return

    async def send() -> None:
        for room, payload in pending:
            try:
                await bus.publish(room, payload)
            except Exception:  # the state is in the database; the room shows it on the next join
                log.exception("could not publish a room message for room %s", room)

    task = asyncio.get_running_loop().create_task(send())
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
