"""TransactionBatcher: many callers' units of work in one transaction, each unit on its own."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.kit.batching import TransactionBatcher
from liveloop.kit.db import transaction
from liveloop.models import ShowCounter
from tests.conftest import ShopCtx
from tests.live.conftest import live_show


async def test_units_share_a_transaction_and_a_failing_one_leaves_no_trace(shop: ShopCtx) -> None:
    show = await live_show(shop)
    sessions = shop.app.state.sessions
    batcher = TransactionBatcher(sessions, interval=0.01, max_hold=1.0)
    answers: dict[str, Any] = {}
    done = asyncio.Event()

    def unit(name: str, label: str, fail: bool = False) -> Any:
        async def work(session: AsyncSession) -> Any:
            session.add(ShowCounter(show_id=show["id"], name=name, value=1))
            await session.flush()
            if fail:
                raise ValueError(name)
            assert label not in answers  # answered after the commit, never before
            return lambda: answers.setdefault(label, "ok")

        return work

    def failed(label: str) -> Any:
        return lambda exc: answers.setdefault(label, type(exc).__name__)

    # The second "a" breaks the unique constraint: only that unit is rolled back.
    for name, label, fail in (("a", "a", False), ("b", "b", True), ("c", "c", False), ("a", "a2", False)):
        assert batcher.submit(unit(name, label, fail), failed(label))
    batcher.submit(_noop(done), failed("noop"))
    await asyncio.wait_for(done.wait(), 5)
    await batcher.close()
    assert answers == {"a": "ok", "b": "ValueError", "c": "ok", "a2": IntegrityError.__name__}
    assert batcher.transactions == 1
    async with transaction(sessions) as session:
        names = set(
            (await session.execute(select(ShowCounter.name).where(ShowCounter.show_id == show["id"]))).scalars()
        )
    assert names >= {"a", "c"}
    assert "b" not in names


def _noop(done: asyncio.Event) -> Any:
    async def work(session: AsyncSession) -> Any:
        return done.set

    return work


async def test_a_full_queue_takes_nothing_more(shop: ShopCtx) -> None:
    batcher = TransactionBatcher(shop.app.state.sessions, max_pending=1)
    done = asyncio.Event()
    assert batcher.submit(_noop(done), lambda exc: None)
    assert not batcher.submit(_noop(done), lambda exc: None)  # refused at once: the caller answers try_again
    await asyncio.wait_for(done.wait(), 5)
    assert batcher.submit(_noop(done), lambda exc: None)  # room again once the first was written
    await batcher.close()
