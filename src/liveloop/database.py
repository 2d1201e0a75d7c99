"""Sessions for the app, the worker and the commands, with every Session listener registered in one place.

Several domains act around a commit: the outbox writes the events a transaction emitted, the room writes its
durable messages and publishes them once committed, the ledger remembers the accounts it saw, the coupon
generator starts on a batch just created. Each domain writes what its listener does; this module is where
they are made to listen, by :func:`session_factory`, which every process opens its sessions with. Nothing
listens because a module happened to be imported.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from liveloop.coupons import tasks as coupon_tasks
from liveloop.events import service as events
from liveloop.kit import db
from liveloop.ledger import service as ledger
from liveloop.live import notify

BUFFERS = (events.OUTBOX, notify.ROOM_OUT)
SESSION_LISTENERS: tuple[tuple[str, Callable[[Session], Any]], ...] = (
    ("before_commit", events.write_outbox),  # the events, in the transaction that emitted them
    ("before_commit", notify.write_durable),  # room messages that carry state, as rows the relay can resend
    ("after_commit", notify.publish_committed),  # … and on the bus once the change is durable
    ("after_commit", ledger.remember_accounts),
    ("after_rollback", ledger.forget_accounts),
    ("after_commit", coupon_tasks.start_generation),
    ("after_rollback", coupon_tasks.forget_generation),
)


def install_listeners() -> None:
    """Register every listener (once: calling it again changes nothing)."""
    for buffer in BUFFERS:
        buffer.listen()
    for name, fn in SESSION_LISTENERS:
        if not event.contains(Session, name, fn):
            event.listen(Session, name, fn)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """The sessionmaker every liveloop process uses: :func:`liveloop.kit.db.session_factory`, listened to."""
    install_listeners()
    return db.session_factory(engine)
