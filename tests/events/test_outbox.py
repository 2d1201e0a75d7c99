"""The outbox buffer: events are written with the transaction that emitted them, and only with it."""

from __future__ import annotations

from sqlalchemy import func, select

from liveloop.events.service import emit, flush_outbox
from liveloop.kit.db import transaction
from liveloop.models import EventType, OutboxEvent
from tests.conftest import ShopCtx


async def count(shop: ShopCtx, event_type: EventType) -> int:
    async with transaction(shop.app.state.sessions) as s:
        query = select(func.count()).where(OutboxEvent.shop_id == shop.shop.id, OutboxEvent.type == event_type)
        return int((await s.execute(query)).scalar_one())


async def test_events_are_written_on_commit_and_dropped_with_a_rollback(shop: ShopCtx) -> None:
    sessions = shop.app.state.sessions
    async with transaction(sessions) as s:
        await emit(s, shop.shop.id, EventType.MEMBER_CREATED, {"n": 1})
        async with s.begin_nested():
            await emit(s, shop.shop.id, EventType.MEMBER_CREATED, {"n": 2})
        try:
            async with s.begin_nested():
                await emit(s, shop.shop.id, EventType.REFERRAL_REJECTED, {"n": 3})
                raise LookupError
        except LookupError:
            pass
        await emit(s, shop.shop.id, EventType.MEMBER_CREATED, {"n": 4})
    assert await count(shop, EventType.MEMBER_CREATED) == 3
    assert await count(shop, EventType.REFERRAL_REJECTED) == 0

    async with sessions() as s:
        await emit(s, shop.shop.id, EventType.REFERRAL_HELD, {})
        await s.rollback()
        await s.commit()  # nothing was left to write
    assert await count(shop, EventType.REFERRAL_HELD) == 0


async def test_flush_makes_buffered_events_readable_in_the_same_transaction(shop: ShopCtx) -> None:
    async with transaction(shop.app.state.sessions) as s:
        await emit(s, shop.shop.id, EventType.DRAW_COMMITTED, {"draw": "d1"})
        query = select(func.count()).where(OutboxEvent.shop_id == shop.shop.id)
        assert (await s.execute(query)).scalar_one() == 0
        await flush_outbox(s)
        assert (await s.execute(query)).scalar_one() == 1
    assert await count(shop, EventType.DRAW_COMMITTED) == 1
