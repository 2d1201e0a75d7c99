"""Events and webhook endpoints through the service and repository, called directly: the outbox buffer (events
are written with the transaction that emitted them, and only with it), the fan-out, lookups per shop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.events import service
from liveloop.events.service import emit, fan_out, flush_outbox
from liveloop.kit.db import transaction
from liveloop.kit.errors import NotFound
from liveloop.kit.pagination import PageRequest
from liveloop.models import DeliveryStatus, EventType, OutboxEvent
from tests.conftest import ShopCtx, make_shop


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


def _page(limit: int = 50) -> PageRequest:
    return PageRequest(limit=limit, cursor=None, scope="test", secret="test-secret")


async def _endpoint(shop: ShopCtx, event_types: list[str]) -> str:
    async with transaction(shop.app.state.sessions) as s:
        endpoint = await service.create_endpoint(
            s, shop.shop.id, url="http://127.0.0.1:9/hooks", event_types=event_types, allow_private=True
        )
    return endpoint.id


async def test_another_shops_endpoint_and_delivery_are_not_found(shop: ShopCtx) -> None:
    other = await make_shop(shop.app, slug="rival")
    theirs = await _endpoint(other, ["*"])
    mine = await _endpoint(shop, ["*"])
    async with transaction(shop.app.state.sessions) as s:
        await emit(s, other.shop.id, EventType.MEMBER_CREATED, {"n": 1})
    async with transaction(shop.app.state.sessions) as s:
        assert await fan_out(s) == 1
        [(delivery, event_type)], _ = await service.list_deliveries(s, other.shop.id, theirs, _page())
    assert (delivery.status, event_type) == (DeliveryStatus.PENDING, EventType.MEMBER_CREATED)
    lookups: list[Callable[[AsyncSession], Awaitable[object]]] = [
        lambda s: service.get_endpoint(s, shop.shop.id, theirs),
        lambda s: service.rotate_secret(s, shop.shop.id, theirs),
        lambda s: service.delete_endpoint(s, shop.shop.id, theirs),
        lambda s: service.list_deliveries(s, shop.shop.id, theirs, _page()),
    ]
    for lookup in lookups:
        async with transaction(shop.app.state.sessions) as s:
            with pytest.raises(NotFound) as refused:
                await lookup(s)
        assert refused.value.code == "webhook_endpoint_not_found"
        assert theirs in refused.value.message
    async with transaction(shop.app.state.sessions) as s:  # their delivery through my endpoint: not mine either
        with pytest.raises(NotFound) as refused:
            await service.resend_delivery(s, shop.shop.id, mine, delivery.id)
        assert (await service.get_endpoint(s, other.shop.id, theirs, lock=True)).secret.startswith("whsec_")
    assert refused.value.code == "webhook_delivery_not_found"
    await other.api.aclose()


async def test_events_fan_out_to_the_endpoints_subscribed_to_their_type(shop: ShopCtx) -> None:
    everything = await _endpoint(shop, ["*"])
    members_only = await _endpoint(shop, ["member.created"])
    async with transaction(shop.app.state.sessions) as s:
        await emit(s, shop.shop.id, EventType.MEMBER_CREATED, {})
        await emit(s, shop.shop.id, EventType.ORDER_PAID, {})
    async with transaction(shop.app.state.sessions) as s:
        assert await fan_out(s) == 2
        assert await fan_out(s) == 0  # each event once
        to_all, _ = await service.list_deliveries(s, shop.shop.id, everything, _page())
        to_members, _ = await service.list_deliveries(s, shop.shop.id, members_only, _page())
        paid, _ = await service.list_deliveries(s, shop.shop.id, everything, _page(), status=DeliveryStatus.DELIVERED)
    assert sorted(t for _, t in to_all) == ["member.created", "order.paid"]
    assert [t for _, t in to_members] == ["member.created"]
    assert paid == []


async def test_the_event_log_filters_by_type_and_an_unknown_type_lists_nothing(shop: ShopCtx) -> None:
    async with transaction(shop.app.state.sessions) as s:
        await emit(s, shop.shop.id, EventType.MEMBER_CREATED, {"n": 1})
        await emit(s, shop.shop.id, EventType.DRAW_COMMITTED, {"n": 2})
    async with transaction(shop.app.state.sessions) as s:
        drawn, _ = await service.list_events(s, shop.shop.id, _page(), event_type="draw.committed")
        unknown, cursor = await service.list_events(s, shop.shop.id, _page(), event_type="draw.comitted")
        every, _ = await service.list_events(s, shop.shop.id, _page())
    assert [e.type for e in drawn] == [EventType.DRAW_COMMITTED]
    assert (unknown, cursor) == ([], None)
    assert sorted(service.envelope(e)["type"] for e in every) == ["draw.committed", "member.created"]
    assert [e.id for e in every] == sorted((e.id for e in every), reverse=True)  # newest first
