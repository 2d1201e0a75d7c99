"""The orders' service and repository, called directly: lookups per shop, deliveries claimed once, statuses."""

from __future__ import annotations

import pytest

from liveloop.kit.db import transaction
from liveloop.kit.errors import NotFound
from liveloop.models import Order, OrderStatus, Shop
from liveloop.orders import service
from liveloop.orders.repository import OrderRepository
from liveloop.orders.schemas import CustomerIn
from liveloop.orders.service import OrderFacts
from tests.conftest import ShopCtx, make_shop


async def _apply(shop: ShopCtx, facts: OrderFacts) -> Order | None:
    async with transaction(shop.app.state.sessions) as s:
        row = await s.get(Shop, shop.shop.id)
        assert row is not None
        return await service.apply_order_facts(s, row, facts, source="api")


def _paid(external_id: str = "1001", total_minor: int = 5000, customer: str = "c-1") -> OrderFacts:
    return OrderFacts(
        external_id=external_id, currency="USD", total_minor=total_minor, customer=CustomerIn(id=customer), paid=True
    )


async def test_another_shops_order_is_not_found_by_either_id(shop: ShopCtx) -> None:
    other = await make_shop(shop.app, slug="rival")
    order = await _apply(shop, _paid())
    assert order is not None
    async with transaction(shop.app.state.sessions) as s:
        orders = OrderRepository(s)
        assert (await orders.by_reference_or_raise(shop.shop.id, order.id)).id == order.id
        assert (await orders.by_reference_or_raise(shop.shop.id, "1001")).id == order.id
        for reference in (order.id, "1001"):
            with pytest.raises(NotFound) as refused:
                await orders.by_reference_or_raise(other.shop.id, reference)
            assert (refused.value.code, refused.value.message) == ("order_not_found", "No such order in this shop.")
    await other.api.aclose()


async def test_a_delivery_is_claimed_once_per_shop_and_source(shop: ShopCtx) -> None:
    other = await make_shop(shop.app, slug="rival")
    async with transaction(shop.app.state.sessions) as s:
        claims = [
            await service.claim_event(s, shop.shop.id, "generic", "evt-1", "order.paid"),
            await service.claim_event(s, shop.shop.id, "generic", "evt-1", "order.paid"),
            await service.claim_event(s, shop.shop.id, "shopify", "evt-1", "shopify.order"),
            await service.claim_event(s, other.shop.id, "generic", "evt-1", "order.paid"),
        ]
    assert claims == [True, False, True, True]
    await other.api.aclose()


async def test_an_order_moves_forward_only_and_its_status_reads_back_as_the_enum(shop: ShopCtx) -> None:
    created = await _apply(
        shop, OrderFacts(external_id="1002", currency="USD", total_minor=4000, customer=CustomerIn(id="c-2"))
    )
    assert created is not None
    paid = await _apply(shop, _paid("1002", 4000, customer="c-2"))
    cancelled_late = await _apply(shop, OrderFacts(external_id="1002", cancelled=True))
    partly = await _apply(shop, OrderFacts(external_id="1002", refunded_minor=1000))
    older_figure = await _apply(shop, OrderFacts(external_id="1002", refunded_minor=500))
    statuses = [o.status if o else None for o in (created, paid, cancelled_late, partly, older_figure)]
    assert statuses == [
        OrderStatus.CREATED,
        OrderStatus.PAID,
        OrderStatus.PAID,  # a paid order is not cancelled
        OrderStatus.PARTIALLY_REFUNDED,
        OrderStatus.PARTIALLY_REFUNDED,  # a smaller, older refund figure changes nothing
    ]
    async with transaction(shop.app.state.sessions) as s:
        order = await OrderRepository(s).by_reference_or_raise(shop.shop.id, "1002")
        assert order.status is OrderStatus.PARTIALLY_REFUNDED
        assert order.refunded_minor == 1000
        assert service.order_payload(order) == {
            "order_id": order.id,
            "external_id": "1002",
            "member_id": order.member_id,
            "currency": "USD",
            "total_minor": 4000,
            "refunded_minor": 1000,
            "status": "partially_refunded",
        }


async def test_a_refund_of_an_order_never_seen_or_a_guest_order_records_nothing(shop: ShopCtx) -> None:
    assert await _apply(shop, OrderFacts(external_id="9999", refunded_minor=100)) is None
    assert await _apply(shop, OrderFacts(external_id="9998", currency="USD", total_minor=100, paid=True)) is None
    async with transaction(shop.app.state.sessions) as s:
        orders = OrderRepository(s)
        for reference in ("9999", "9998"):
            with pytest.raises(NotFound):
                await orders.by_reference_or_raise(shop.shop.id, reference)
