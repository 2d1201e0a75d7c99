"""Events out: written to the outbox in the caller's transaction, delivered by the worker after commit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.kit.ids import new_id
from liveloop.kit.time import utc_now
from liveloop.models import OutboxEvent, WebhookDelivery, WebhookEndpoint

EVENT_TYPES = (
    "member.created",
    "order.paid",
    "order.refunded",
    "referral.created",
    "referral.held",
    "referral.rejected",
    "referral.converted",
    "referral.reversed",
    "reward.granted",
    "reward.released",
    "reward.reversed",
    "milestone.reached",
    "coupon.redeemed",
    "coupon.rolled_back",
    "draw.committed",
    "draw.completed",
    "group.target_reached",
    "points.expired",
)


async def emit(session: AsyncSession, shop_id: str, event_type: str, data: dict[str, Any]) -> OutboxEvent:
    """Record an event and queue one delivery per subscribed endpoint, all inside the current transaction."""
    now = utc_now()
    event = OutboxEvent(id=new_id("evt"), shop_id=shop_id, type=event_type, payload=data, created_at=now)
    session.add(event)
    endpoints = (
        await session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.event_types).where(
                WebhookEndpoint.shop_id == shop_id, WebhookEndpoint.active.is_(True)
            )
        )
    ).all()
    targets = [eid for eid, types in endpoints if "*" in types or event_type in types]
    await session.flush()
    if targets:
        await session.execute(
            WebhookDelivery.__table__.insert(),
            [
                {
                    "id": new_id("whd"),
                    "shop_id": shop_id,
                    "event_id": event.id,
                    "endpoint_id": endpoint_id,
                    "status": "pending",
                    "attempts": 0,
                    "next_attempt_at": now,
                    "created_at": now,
                }
                for endpoint_id in targets
            ],
        )
    return event


def backoff(attempt: int) -> timedelta:
    """2 s, 4 s, 8 s … capped at one hour."""
    return timedelta(seconds=min(2 ** max(attempt, 1), 3600))


def envelope(event: OutboxEvent) -> dict[str, Any]:
    return {"id": event.id, "type": event.type, "created_at": event.created_at.isoformat(), "data": event.payload}


async def list_events(
    session: AsyncSession, shop_id: str, *, limit: int = 50, event_type: str | None = None
) -> list[OutboxEvent]:
    query = select(OutboxEvent).where(OutboxEvent.shop_id == shop_id).order_by(OutboxEvent.id.desc()).limit(limit)
    if event_type:
        query = query.where(OutboxEvent.type == event_type)
    return list((await session.execute(query)).scalars())
