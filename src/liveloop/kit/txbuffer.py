"""Things that belong to the session's current transaction without being rows yet (outbox events, room
messages): kept while it runs, dropped with a savepoint or transaction that rolls back."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction


class NotListening(RuntimeError):
    """A buffer was used before its listeners were registered: what it holds would never be written."""


class TransactionBuffer:
    """Items kept on a session for its transaction; ``listen()`` registers the listeners that keep them right.

    Buffers are created at import time and listen only once told to (by the app's and the worker's session
    factory), so what a transaction does never depends on which modules happen to have been imported.
    """

    def __init__(self, name: str) -> None:
        self.name = name
        self._items = f"liveloop.{name}"
        self._marks = f"liveloop.{name}.marks"

    def listen(self) -> None:
        """Register this buffer's listeners on every Session (once; calling it again changes nothing)."""
        for name, fn in (
            ("after_transaction_create", self._mark),
            ("after_soft_rollback", self._drop),
            ("after_transaction_end", self._end),
        ):
            if not event.contains(Session, name, fn):
                event.listen(Session, name, fn)

    @property
    def listening(self) -> bool:
        return event.contains(Session, "after_transaction_end", self._end)

    def add(self, session: AsyncSession, item: Any) -> None:
        if not self.listening:
            raise NotListening(
                f"The {self.name} buffer has no listeners: open sessions with liveloop.database.session_factory."
            )
        if not session.in_transaction():
            session.sync_session.begin()  # the item lives and dies with a transaction, as a written row would
        session.sync_session.info.setdefault(self._items, []).append(item)

    def peek(self, session: Session) -> list[Any]:
        """The items so far, left in the buffer."""
        return list(session.info.get(self._items, ()))

    def take(self, session: Session) -> list[Any]:
        """The items so far, removed from the buffer."""
        items: list[Any] = session.info.pop(self._items, None) or []
        return items

    def _mark(self, session: Session, transaction: SessionTransaction) -> None:
        if transaction.nested:
            session.info.setdefault(self._marks, {})[transaction] = len(session.info.get(self._items, ()))

    def _drop(self, session: Session, transaction: SessionTransaction) -> None:
        mark = session.info.get(self._marks, {}).pop(transaction, 0)
        items = session.info.get(self._items)
        if items and transaction.nested:
            del items[mark:]

    def _end(self, session: Session, transaction: SessionTransaction) -> None:
        # A root transaction's items were taken by its commit, or are void with its rollback.
        if transaction.parent is None and not transaction.nested:
            session.info.pop(self._items, None)
            session.info.pop(self._marks, None)
