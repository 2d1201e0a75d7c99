"""Events out: written to the outbox in the caller's transaction, delivered by the worker after commit."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from liveloop.kit.ids import new_id
from liveloop.kit.pagination import PageRequest, paginate
from liveloop.kit.sql import for_update, insert_ignoring_conflicts, table
from liveloop.kit.time import utc_now
from liveloop.kit.txbuffer import TransactionBuffer
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
    "show.scheduled",
    "show.started",
    "show.ended",
    "show.high_point",
    "show.video_event",
    "live.interaction_launched",
    "live.interaction_settled",
)


_OUTBOX = TransactionBuffer("outbox")


async def emit(session: AsyncSession, shop_id: str, event_type: str, data: dict[str, Any]) -> str:
    """Record an event in the current transaction. The worker fans it out to endpoints after commit.

    Events are buffered on the session and written in one INSERT just before the transaction commits;
    events emitted inside a savepoint that rolls back are dropped with it.
    """
    event_id = new_id("evt")
    _OUTBOX.add(
        session, {"id": event_id, "shop_id": shop_id, "type": event_type, "payload": data, "created_at": utc_now()}
    )
    return event_id


async def flush_outbox(session: AsyncSession) -> None:
    """Write the buffered events now, for a caller that reads the outbox in the same transaction."""
    await session.run_sync(_write_pending)


def _write_pending(session: Session) -> None:
    rows = _OUTBOX.take(session)
    if rows:
        session.execute(table(OutboxEvent).insert(), rows)


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    if not session.in_nested_transaction():
        _write_pending(session)


async def fan_out(session: AsyncSession, *, limit: int = 500) -> int:
    """Queue one delivery per subscribed endpoint for events not yet fanned out. Returns events handled."""
    query = (
        select(OutboxEvent.id, OutboxEvent.shop_id, OutboxEvent.type)
        .where(OutboxEvent.fanned_out_at.is_(None))
        .order_by(OutboxEvent.created_at)
        .limit(limit)
    )
    if for_update(session):
        query = query.with_for_update(skip_locked=True)
    events = (await session.execute(query)).all()
    if not events:
        return 0
    now = utc_now()
    shops = {e.shop_id for e in events}
    endpoints: dict[str, list[tuple[str, list[Any]]]] = {}
    for endpoint_id, shop_id, types in (
        await session.execute(
            select(WebhookEndpoint.id, WebhookEndpoint.shop_id, WebhookEndpoint.event_types).where(
                WebhookEndpoint.shop_id.in_(shops), WebhookEndpoint.active.is_(True)
            )
        )
    ).all():
        endpoints.setdefault(shop_id, []).append((endpoint_id, types))
    rows = [
        {
            "id": new_id("whd"),
            "shop_id": e.shop_id,
            "event_id": e.id,
            "endpoint_id": endpoint_id,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for e in events
        for endpoint_id, types in endpoints.get(e.shop_id, [])
        if "*" in types or e.type in types
    ]
    if rows:
        await session.execute(insert_ignoring_conflicts(session, table(WebhookDelivery), rows))
    await session.execute(
        update(OutboxEvent).where(OutboxEvent.id.in_([e.id for e in events])).values(fanned_out_at=now)
    )
    return len(events)


def backoff(attempt: int) -> timedelta:
    """2 s, 4 s, 8 s … capped at one hour."""
    return timedelta(seconds=min(2 ** max(attempt, 1), 3600))


def envelope(event: OutboxEvent) -> dict[str, Any]:
    return {"id": event.id, "type": event.type, "created_at": event.created_at.isoformat(), "data": event.payload}


async def list_events(
    session: AsyncSession, shop_id: str, page: PageRequest, *, event_type: str | None = None
) -> tuple[list[OutboxEvent], str | None]:
    """The shop's events, newest first (ids are time-ordered)."""
    query = select(OutboxEvent).where(OutboxEvent.shop_id == shop_id)
    if event_type:
        query = query.where(OutboxEvent.type == event_type)
    return await paginate(session, query, page, [OutboxEvent.id], descending=True)
