"""Orders arriving from the shop: applied once per event, in any order, with their referral effects."""

from __future__ import annotations

from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.events.service import emit
from liveloop.kit.errors import Conflict
from liveloop.kit.ids import new_id
from liveloop.kit.time import utc_now
from liveloop.members import service as members
from liveloop.models import InboundEvent, Member, Order, Shop
from liveloop.orders.schemas import CustomerIn, OrderEventIn
from liveloop.referral import service as referral

_RANK = {"created": 0, "paid": 1, "partially_refunded": 2, "refunded": 3, "cancelled": 3}


async def claim_event(session: AsyncSession, shop_id: str, source: str, event_id: str, event_type: str) -> bool:
    """Record the delivery; False when this event was handled already (or is being handled right now).

    The unique constraint on (shop, source, event id) makes concurrent deliveries of one event wait for
    the first and then find it, so only one of them has any effect.
    """
    try:
        session.add(
            InboundEvent(
                id=new_id("inb"),
                shop_id=shop_id,
                source=source,
                event_id=event_id,
                event_type=event_type,
                result={},
                created_at=utc_now(),
            )
        )
        await session.flush()
    except IntegrityError:
        await session.rollback()
        return False
    return True


async def _member_for(session: AsyncSession, shop: Shop, customer: CustomerIn) -> Member:
    member = await members.find_by_external_id(session, shop.id, customer.id)
    if member is not None:
        if customer.device_id:
            await members.add_device(session, shop.id, member.id, customer.device_id)
        return member
    try:
        return await members.create_member(
            session,
            shop,
            external_id=customer.id,
            email=customer.email,
            phone=customer.phone,
            name=customer.name,
            locale=customer.locale or "en",
            market=customer.market,
            timezone=customer.timezone,
            device_id=customer.device_id,
        )
    except Conflict:
        found = await members.find_by_external_id(session, shop.id, customer.id)
        assert found is not None
        return found


_BY_EXTERNAL_ID = select(Order).where(
    Order.shop_id == bindparam("shop_id"), Order.external_id == bindparam("external_id")
)
_FIRST_PAID = (
    update(Member)
    .where(Member.id == bindparam("member"), Member.first_paid_order_at.is_(None))
    .values(first_paid_order_at=bindparam("at"))
    .execution_options(synchronize_session=False)
)


async def apply_order_event(session: AsyncSession, shop: Shop, event: OrderEventIn, *, source: str) -> Order:
    data = event.order
    member = await _member_for(session, shop, data.customer)
    now = utc_now()
    order = (await session.execute(_BY_EXTERNAL_ID, {"shop_id": shop.id, "external_id": data.id})).scalar_one_or_none()
    if order is None:
        order = Order(
            id=new_id("ord"),
            shop_id=shop.id,
            external_id=data.id,
            source=source,
            member_id=member.id,
            currency=data.currency,
            total_minor=data.total_minor,
            refunded_minor=0,
            status="created",
            payment_fingerprint=data.payment_fingerprint,
            created_at=now,
        )
        session.add(order)  # inserted by the next flush, already in the state this event gives it
    elif data.payment_fingerprint and not order.payment_fingerprint:
        order.payment_fingerprint = data.payment_fingerprint
    kind = event.type.removeprefix("order.")
    occurred = event.occurred_at or now

    if kind == "paid" and _RANK[order.status] < _RANK["paid"]:
        order.status = "paid"
        order.paid_at = occurred
        order.total_minor = data.total_minor
        order.updated_at = now
        await session.flush()
        first = await session.execute(_FIRST_PAID, {"member": member.id, "at": occurred})
        await emit(session, shop.id, "order.paid", order_payload(order))
        await referral.on_order_paid(session, shop, order, member, first_paid=first.rowcount == 1)  # type: ignore[attr-defined]
    elif kind in ("refunded", "partially_refunded"):
        # A full refund without an amount refunds what was paid.
        refunded = order.total_minor if kind == "refunded" and not data.refunded_minor else data.refunded_minor
        refunded = min(max(refunded, order.refunded_minor), order.total_minor)
        new_status = "refunded" if refunded >= order.total_minor else "partially_refunded"
        if refunded != order.refunded_minor or _RANK[new_status] > _RANK[order.status]:
            order.refunded_minor = refunded
            order.status = new_status
            order.refunded_at = occurred
            order.updated_at = now
            await session.flush()
            await emit(session, shop.id, "order.refunded", order_payload(order))
            await referral.on_order_refunded(session, shop, order)
    elif kind == "cancelled" and order.status == "created":
        order.status = "cancelled"
        order.updated_at = now
    await session.flush()
    return order


def order_payload(order: Order) -> dict[str, Any]:
    return {
        "order_id": order.id,
        "external_id": order.external_id,
        "member_id": order.member_id,
        "currency": order.currency,
        "total_minor": order.total_minor,
        "refunded_minor": order.refunded_minor,
        "status": order.status,
    }
