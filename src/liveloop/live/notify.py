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
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger(__name__)

BUS_KEY = "liveloop.room_bus"  # the sessionmaker's info carries the process's room bus under this key
_PENDING = "liveloop.room_out"
_tasks: set[asyncio.Task[None]] = set()


def to_room(session: AsyncSession, room: str, message: dict[str, Any]) -> None:
    """Send ``message`` to everyone in ``room`` after the current transaction commits."""
    if not session.in_transaction():
        session.sync_session.begin()  # the message lives and dies with a transaction, as a row would
    session.sync_session.info.setdefault(_PENDING, []).append((room, orjson.dumps(message)))


@event.listens_for(Session, "after_commit")
def _publish(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a savepoint was released: the transaction around it has not committed yet
    pending = session.info.pop(_PENDING, None)
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


_MARKS = "liveloop.room_out_marks"


@event.listens_for(Session, "after_transaction_create")
def _mark_savepoint(session: Session, transaction: SessionTransaction) -> None:
    if transaction.nested:
        session.info.setdefault(_MARKS, {})[transaction] = len(session.info.get(_PENDING, ()))


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, transaction: SessionTransaction) -> None:
    """Messages sent inside a savepoint that rolled back are dropped with it, like the rows it wrote."""
    mark = session.info.get(_MARKS, {}).pop(transaction, 0)
    pending = session.info.get(_PENDING)
    if pending and transaction.nested:
        del pending[mark:]


@event.listens_for(Session, "after_transaction_end")
def _forget(session: Session, transaction: SessionTransaction) -> None:
    if transaction.parent is None and not transaction.nested:
        session.info.pop(_PENDING, None)  # published by the commit, or void with the rollback
        session.info.pop(_MARKS, None)
