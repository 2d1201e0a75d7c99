"""Orders arriving from the shop: applied once per event, in any order, with their referral effects.

Every source (the generic signed webhook, the API push, Shopify) is read into one ``OrderFacts``: what the
event says about an order. Applying facts is idempotent: an order is paid once, never goes back from
refunded to paid, and a refund named by the platform (Shopify's refund id) is counted once however often
and under whichever webhook it arrives. An event that contradicts what is known about an order (another
currency or another customer) is refused with 409 ``order_conflict`` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.events.service import emit
from liveloop.kit.errors import Conflict, Unprocessable
from liveloop.kit.ids import new_id
from liveloop.kit.time import utc_now
from liveloop.members import service as members
from liveloop.models import EventType, Member, Order, OrderStatus, Shop
from liveloop.orders import repository
from liveloop.orders.repository import OrderRepository, RefundRow
from liveloop.orders.schemas import CustomerIn, OrderEventData, OrderEventIn
from liveloop.referral import service as referral

# How far along an order is: it never moves to a status of a lower rank.
_RANK = {
    OrderStatus.CREATED: 0,
    OrderStatus.PAID: 1,
    OrderStatus.PARTIALLY_REFUNDED: 2,
    OrderStatus.REFUNDED: 3,
    OrderStatus.CANCELLED: 3,
}


class RefundFacts(Protocol):
    """One refund as the platform identifies it."""

    @property
    def external_id(self) -> str: ...

    @property
    def refunded_at(self) -> datetime | None: ...

    def amount_minor(self, currency: str) -> int:
        """The money this refund returned, in minor units of ``currency`` (the order's)."""
        ...


@dataclass(frozen=True)
class ReferralHint:
    """The attribution an order carries from the storefront (a click id or an invite code)."""

    click_id: str | None = None
    code: str | None = None
    channel: str | None = None
    show_id: str | None = None
    host_id: str | None = None
    existing_customer: bool = False


@dataclass(frozen=True)
class OrderFacts:
    """What one event says about one order. ``None`` and empty fields say nothing."""

    external_id: str
    currency: str | None = None
    total_minor: int | None = None
    customer: CustomerIn | None = None
    payment_fingerprint: str | None = None
    paid: bool = False
    cancelled: bool = False
    refunded_minor: int | None = None  # the order's refunded total as the sender counts it
    fully_refunded: bool = False
    refunds: Sequence[RefundFacts] = ()
    referral: ReferralHint | None = None
    occurred_at: datetime | None = None


async def claim_event(session: AsyncSession, shop_id: str, source: str, event_id: str, event_type: str) -> bool:
    """Record the delivery; False when this event was handled already (or is being handled right now).

    The unique constraint on (shop, source, event id) makes concurrent deliveries of one event wait for
    the first and then find it, so only one of them has any effect. A duplicate changes nothing else in
    the transaction (its idempotency record, for one, stays), so it is answered like any other request.
    """
    return await repository.claim_inbound_event(session, shop_id, source, event_id, event_type)


def facts_of_event(event: OrderEventIn) -> OrderFacts:
    """A generic order event (webhook or API push): its ``type`` is signed or authenticated, so it decides."""
    data = event.order
    # "order.<status>": each event type names the status it reports.
    kind = OrderStatus(event.type.removeprefix("order."))
    refunded: int | None = None
    if kind in (OrderStatus.REFUNDED, OrderStatus.PARTIALLY_REFUNDED):
        refunded = data.refunded_minor
    return OrderFacts(
        external_id=data.id,
        currency=data.currency,
        total_minor=data.total_minor,
        customer=data.customer,
        payment_fingerprint=data.payment_fingerprint,
        paid=kind is OrderStatus.PAID,
        cancelled=kind is OrderStatus.CANCELLED,
        refunded_minor=refunded,
        # A full refund without an amount refunds what was paid.
        fully_refunded=kind is OrderStatus.REFUNDED and not data.refunded_minor,
        occurred_at=event.occurred_at,
    )


async def apply_order_event(session: AsyncSession, shop: Shop, event: OrderEventIn, *, source: str) -> Order:
    order = await apply_order_facts(session, shop, facts_of_event(event), source=source)
    assert order is not None  # generic events always name their customer
    return order


async def apply_order_facts(session: AsyncSession, shop: Shop, facts: OrderFacts, *, source: str) -> Order | None:
    """Apply what an event says; None when it is about an order never seen and cannot create it (a refund, or a
    guest checkout: there is no member to attribute it to)."""
    now = utc_now()
    # Events of one order run one at a time (PostgreSQL), so refunds counted by two of them add up.
    order = await repository.by_external_id(session, shop.id, facts.external_id)
    if order is None:
        if facts.currency is None or facts.total_minor is None:
            return None  # a refund of an order never seen: nothing to take back
        if facts.customer is None:
            return None
        member, created = await _member_for(session, shop, facts.customer)
        order = Order(
            id=new_id("ord"),
            shop_id=shop.id,
            external_id=facts.external_id,
            source=source,
            member_id=member.id,
            currency=facts.currency,
            total_minor=facts.total_minor,
            refunded_minor=0,
            status=OrderStatus.CREATED,
            payment_fingerprint=facts.payment_fingerprint,
            created_at=now,
        )
        # Inserted by the next flush, already in the state this event gives it.
        await OrderRepository(session).add(order, flush=False)
        if created and facts.referral is not None:
            await _attribute(session, shop, member, facts.referral)
    else:
        member = await _known_member(session, shop, order, facts)
        if facts.payment_fingerprint and not order.payment_fingerprint:
            order.payment_fingerprint = facts.payment_fingerprint
    occurred = facts.occurred_at or now

    if facts.paid and _RANK[order.status] < _RANK[OrderStatus.PAID]:
        order.status = OrderStatus.PAID
        order.paid_at = occurred
        if facts.total_minor is not None:
            order.total_minor = facts.total_minor
        order.updated_at = now
        await session.flush()
        first_paid = await repository.mark_first_paid(session, member.id, occurred)
        await emit(session, shop.id, EventType.ORDER_PAID, dict(order_payload(order)))
        await referral.on_order_paid(session, shop, order, member, first_paid=first_paid)
    if facts.refunds or facts.refunded_minor is not None or facts.fully_refunded:
        await _apply_refunds(session, shop, order, facts, now)
    if facts.cancelled and order.status == OrderStatus.CREATED:
        order.status = OrderStatus.CANCELLED
        order.updated_at = now
    await session.flush()
    return order


async def _apply_refunds(session: AsyncSession, shop: Shop, order: Order, facts: OrderFacts, now: datetime) -> None:
    refunded = order.refunded_minor
    latest: datetime | None = None
    if facts.refunds:
        orders = OrderRepository(session)
        await orders.flush()  # the order row exists before its refunds point at it
        rows: list[RefundRow] = [
            {
                "id": new_id("rfd"),
                "shop_id": shop.id,
                "order_id": order.id,
                "external_id": r.external_id,
                "amount_minor": max(r.amount_minor(order.currency), 0),
                "refunded_at": r.refunded_at,
                "created_at": now,
            }
            for r in facts.refunds
        ]
        await orders.insert_refunds(rows)
        refunded = max(refunded, await repository.refunded_total(session, order.id))
        latest = max((r.refunded_at for r in facts.refunds if r.refunded_at), default=None)
    if facts.refunded_minor is not None:
        refunded = max(refunded, facts.refunded_minor)
    if facts.fully_refunded:
        refunded = order.total_minor
    refunded = min(refunded, order.total_minor)
    if refunded >= order.total_minor:
        new_status = OrderStatus.REFUNDED
    elif refunded > 0:
        new_status = OrderStatus.PARTIALLY_REFUNDED
    else:
        return  # a refund that returned no money (e.g. items restocked only)
    if refunded == order.refunded_minor and _RANK[new_status] <= _RANK[order.status]:
        return
    order.refunded_minor = refunded
    order.status = new_status
    order.refunded_at = latest or facts.occurred_at or now
    order.updated_at = now
    await session.flush()
    await emit(session, shop.id, EventType.ORDER_REFUNDED, dict(order_payload(order)))
    await referral.on_order_refunded(session, shop, order)


async def _member_for(session: AsyncSession, shop: Shop, customer: CustomerIn) -> tuple[Member, bool]:
    """The member behind a new order's customer, and whether this order created it."""
    member = await members.find_by_external_id(session, shop.id, customer.id)
    if member is not None:
        if customer.device_id:
            await members.add_device(session, shop.id, member.id, customer.device_id)
        return member, False
    try:
        created = await members.create_member(
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
        return found, False
    return created, True


async def _known_member(session: AsyncSession, shop: Shop, order: Order, facts: OrderFacts) -> Member:
    """The order's member; an event naming another currency or customer for the order is refused."""
    if facts.currency is not None and facts.currency != order.currency:
        raise Conflict(
            f"Order {order.external_id!r} is known in {order.currency}; this event says {facts.currency}. "
            "An order keeps its currency: send the order's own currency, or a new order id for another order.",
            code="order_conflict",
            field="currency",
            known=order.currency,
            sent=facts.currency,
        )
    member = await OrderRepository(session).member_of(order)
    if facts.customer is not None:
        if member.external_id != facts.customer.id:
            raise Conflict(
                f"Order {order.external_id!r} belongs to another customer than {facts.customer.id!r}. "
                "An order keeps its customer: send the order's own customer id, or a new order id for another order.",
                code="order_conflict",
                field="customer.id",
            )
        if facts.customer.device_id:
            await members.add_device(session, shop.id, member.id, facts.customer.device_id)
    return member


_NOT_FOUND_CODES = frozenset({"unknown_click", "unknown_invite_code"})


async def _attribute(session: AsyncSession, shop: Shop, member: Member, hint: ReferralHint) -> None:
    """Attribute a member created by an order to whoever invited them: the click when it is known, else the code.

    A click id or code that this shop does not know is ignored (it came from a URL anyone can edit), so the
    order itself is always recorded.
    """
    tries: list[tuple[str | None, str | None]] = [(hint.click_id, hint.code)] if hint.click_id else []
    tries.append((None, hint.code))
    for click_id, code in tries:
        if not (click_id or code):
            continue
        try:
            await referral.attribute_signup(
                session,
                shop,
                member,
                click_id=click_id,
                code=code,
                channel=hint.channel,
                show_id=hint.show_id,
                host_id=hint.host_id,
                existing_customer=hint.existing_customer,
            )
            return
        except Unprocessable as exc:
            if exc.code not in _NOT_FOUND_CODES:
                raise


def order_payload(order: Order) -> OrderEventData:
    """The data of an ``order.paid`` or ``order.refunded`` event."""
    return {
        "order_id": order.id,
        "external_id": order.external_id,
        "member_id": order.member_id,
        "currency": order.currency,
        "total_minor": order.total_minor,
        "refunded_minor": order.refunded_minor,
        "status": order.status,
    }
