"""Every statement about orders: the orders and refunds themselves, the deliveries that brought them, and the
member's first paid order.

The order-paid path runs on every conversion, so its statements are prepared once, at import
(``_BY_EXTERNAL_ID``, ``_BY_EXTERNAL_ID_LOCKED``, ``_FIRST_PAID``, ``_REFUNDED_SUM``), and reached through
module-level functions that need no repository object.
"""

from __future__ import annotations

from datetime import datetime
from typing import TypedDict

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.kit.ids import new_id
from liveloop.kit.repository import Repository, changed, locks
from liveloop.kit.sql import insert_ignoring_conflicts, table
from liveloop.kit.time import utc_now
from liveloop.models import InboundEvent, Member, Order, OrderRefund, Shop


class RefundRow(TypedDict):
    """One refund of an order, as inserted."""

    id: str
    shop_id: str
    order_id: str
    external_id: str
    amount_minor: int
    refunded_at: datetime | None
    created_at: datetime


_BY_EXTERNAL_ID = select(Order).where(
    Order.shop_id == bindparam("shop_id"), Order.external_id == bindparam("external_id")
)
_BY_EXTERNAL_ID_LOCKED = _BY_EXTERNAL_ID.with_for_update()
_FIRST_PAID = (
    update(Member)
    .where(Member.id == bindparam("member"), Member.first_paid_order_at.is_(None))
    .values(first_paid_order_at=bindparam("at"))
    .execution_options(synchronize_session=False)
)
_REFUNDED_SUM = select(func.coalesce(func.sum(OrderRefund.amount_minor), 0)).where(
    OrderRefund.order_id == bindparam("order_id")
)


async def claim_inbound_event(session: AsyncSession, shop_id: str, source: str, event_id: str, event_type: str) -> bool:
    """Record a delivery under its unique (shop, source, event id); False when it was recorded already."""
    claimed = await changed(
        session,
        insert_ignoring_conflicts(
            session,
            table(InboundEvent),
            {
                "id": new_id("inb"),
                "shop_id": shop_id,
                "source": source,
                "event_id": event_id,
                "event_type": event_type,
                "result": {},
                "created_at": utc_now(),
            },
        ),
    )
    return claimed == 1


async def by_external_id(session: AsyncSession, shop_id: str, external_id: str) -> Order | None:
    """The shop's order with the platform's id, locked on PostgreSQL: events of one order run one at a time."""
    lookup = _BY_EXTERNAL_ID_LOCKED if locks(session) else _BY_EXTERNAL_ID
    return (await session.execute(lookup, {"shop_id": shop_id, "external_id": external_id})).scalar_one_or_none()


async def mark_first_paid(session: AsyncSession, member_id: str, at: datetime) -> bool:
    """Note when the member's first order was paid; False when an earlier one was."""
    return await changed(session, _FIRST_PAID, {"member": member_id, "at": at}) == 1


async def refunded_total(session: AsyncSession, order_id: str) -> int:
    """The sum of the order's distinct refunds."""
    return int((await session.execute(_REFUNDED_SUM, {"order_id": order_id})).scalar_one())


async def shop_by_slug(session: AsyncSession, slug: str) -> Shop | None:
    """The shop a webhook names by its slug."""
    return (await session.execute(select(Shop).where(Shop.slug == slug))).scalar_one_or_none()


class OrderRepository(Repository[Order]):
    model = Order
    not_found = ("order_not_found", "No such order in this shop.")

    async def by_reference_or_raise(self, shop_id: str, reference: str) -> Order:
        """The shop's order with this id, ours or the shop platform's, or 404 ``order_not_found``."""
        query = self.scoped(shop_id).where((Order.id == reference) | (Order.external_id == reference))
        order = (await self.session.execute(query)).scalars().first()
        if order is None:
            raise self.missing()
        return order

    async def member_of(self, order: Order) -> Member:
        member = await self.session.get(Member, order.member_id)
        assert member is not None
        return member

    async def insert_refunds(self, rows: list[RefundRow]) -> None:
        """Insert refunds not recorded yet (a refund id already counted for the order is skipped)."""
        values = [dict(row) for row in rows]
        await self.session.execute(insert_ignoring_conflicts(self.session, table(OrderRefund), values))

    async def flush(self) -> None:
        await self.session.flush()
