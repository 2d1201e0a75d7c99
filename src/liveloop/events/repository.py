"""Every statement about the outbox, webhook endpoints and their deliveries (the API's and the worker's)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, String, delete, func, or_, select, type_coerce, update
from sqlalchemy.orm import Session

from liveloop.events.errors import EventsErrorCode
from liveloop.kit.errors import NotFound
from liveloop.kit.pagination import PageRequest
from liveloop.kit.repository import Repository
from liveloop.kit.sql import insert_ignoring_conflicts, table
from liveloop.models import DeliveryStatus, EventType, OutboxEvent, WebhookDelivery, WebhookEndpoint


def write_events(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert buffered outbox rows in one statement (an executemany), on the synchronous session of a flush."""
    session.execute(table(OutboxEvent).insert(), rows)


class OutboxRepository(Repository[OutboxEvent]):
    model = OutboxEvent

    async def pending(self, limit: int) -> Sequence[Row[str, str, EventType]]:
        """(id, shop id, type) of the oldest events not yet fanned out, locked (skipping rows another worker
        holds) on PostgreSQL."""
        query = (
            select(OutboxEvent.id, OutboxEvent.shop_id, OutboxEvent.type)
            .where(OutboxEvent.fanned_out_at.is_(None))
            .order_by(OutboxEvent.created_at)
            .limit(limit)
        )
        return (await self.session.execute(self.locked(query, skip_locked=True))).all()

    async def mark_fanned_out(self, event_ids: list[str], now: datetime) -> None:
        await self.session.execute(update(OutboxEvent).where(OutboxEvent.id.in_(event_ids)).values(fanned_out_at=now))

    async def page_of(
        self, shop_id: str, page: PageRequest, *, event_type: str | None = None
    ) -> tuple[list[OutboxEvent], str | None]:
        """A page of the shop's events, newest first (ids are time-ordered), of one type when given."""
        query = self.scoped(shop_id)
        if event_type:
            # Compared as text: a type liveloop does not know matches nothing (it is not refused).
            query = query.where(type_coerce(OutboxEvent.type, String(64)) == event_type)
        return await self.paginate(query, page, [OutboxEvent.id], descending=True)


class WebhookEndpointRepository(Repository[WebhookEndpoint]):
    model = WebhookEndpoint
    not_found = (
        EventsErrorCode.WEBHOOK_ENDPOINT_NOT_FOUND.code,
        "This shop has no such webhook endpoint; list them with GET /v1/webhook-endpoints.",
    )

    async def get_or_raise(self, shop_id: str, id_: str, *, lock: bool = False) -> WebhookEndpoint:
        """The shop's endpoint with this id (``FOR UPDATE`` on PostgreSQL when ``lock``), or 404 naming the id."""
        endpoint = await self.get(shop_id, id_, lock=lock)
        if endpoint is None:
            raise NotFound(
                f"This shop has no webhook endpoint {id_!r}; list them with GET /v1/webhook-endpoints.",
                code=EventsErrorCode.WEBHOOK_ENDPOINT_NOT_FOUND,
            )
        return endpoint

    async def count(self, shop_id: str) -> int:
        return (await self.session.execute(select(func.count()).where(WebhookEndpoint.shop_id == shop_id))).scalar_one()

    async def page_of(self, shop_id: str, page: PageRequest) -> tuple[list[WebhookEndpoint], str | None]:
        """A page of the shop's endpoints, oldest first."""
        return await self.paginate(self.scoped(shop_id), page, [WebhookEndpoint.created_at, WebhookEndpoint.id])

    async def subscriptions(self, shop_ids: Iterable[str]) -> Sequence[Row[str, str, list[Any]]]:
        """(id, shop id, event types) of every endpoint of these shops, paused ones included."""
        query = select(WebhookEndpoint.id, WebhookEndpoint.shop_id, WebhookEndpoint.event_types).where(
            WebhookEndpoint.shop_id.in_(shop_ids)
        )
        return (await self.session.execute(query)).all()

    async def delete(self, endpoint: WebhookEndpoint) -> None:
        """Remove the endpoint and its deliveries (queued ones are dropped)."""
        await self.session.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint.id))
        await self.session.delete(endpoint)
        await self.session.flush()


class WebhookDeliveryRepository(Repository[WebhookDelivery]):
    model = WebhookDelivery

    async def queue(self, rows: list[dict[str, Any]]) -> None:
        """Insert deliveries, skipping any that exist already (one per event and endpoint)."""
        await self.session.execute(insert_ignoring_conflicts(self.session, table(WebhookDelivery), rows))

    async def by_id(self, delivery_id: str) -> WebhookDelivery | None:
        return await self.session.get(WebhookDelivery, delivery_id)

    async def page_of(
        self, endpoint_id: str, page: PageRequest, *, status: DeliveryStatus | None = None
    ) -> tuple[list[tuple[WebhookDelivery, str]], str | None]:
        """A page of an endpoint's deliveries with their event types, newest first."""
        query = (
            select(WebhookDelivery, OutboxEvent.type)
            .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
            .where(WebhookDelivery.endpoint_id == endpoint_id)
        )
        if status is not None:
            query = query.where(WebhookDelivery.status == status)
        rows, cursor = await self.paginate(
            query, page, [WebhookDelivery.id], descending=True, row_key=lambda row: [row[0].id]
        )
        return [(row[0], row[1]) for row in rows], cursor

    async def requeue(self, endpoint_id: str, delivery_id: str, now: datetime) -> None:
        """Make the delivery due now, unless an attempt holds its lease (then it is under way already)."""
        await self.session.execute(
            update(WebhookDelivery)
            .where(
                WebhookDelivery.id == delivery_id,
                WebhookDelivery.endpoint_id == endpoint_id,
                or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now),
            )
            .values(status=DeliveryStatus.PENDING, next_attempt_at=now, locked_until=None)
            .execution_options(synchronize_session=False)
        )

    async def with_event_type(self, endpoint_id: str, delivery_id: str) -> tuple[WebhookDelivery, str] | None:
        """The endpoint's delivery with this id, read again from the database, and its event's type."""
        row = (
            await self.session.execute(
                select(WebhookDelivery, OutboxEvent.type)
                .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
                .where(WebhookDelivery.id == delivery_id, WebhookDelivery.endpoint_id == endpoint_id)
                .execution_options(populate_existing=True)
            )
        ).one_or_none()
        return None if row is None else (row[0], row[1])

    # -- the worker's claim: a short transaction that leases due deliveries ---------------------------------

    @staticmethod
    def _due(now: datetime) -> tuple[Any, ...]:
        return (
            WebhookDelivery.status == DeliveryStatus.PENDING,
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now),
        )

    async def due_by_turn(
        self, now: datetime, *, per_endpoint: int, limit: int, skip_endpoints: list[str]
    ) -> Sequence[Row[Any, Any]]:
        """(delivery id, endpoint id) of due deliveries of active endpoints: each endpoint's oldest
        ``per_endpoint`` first, the endpoints taking turns; none of ``skip_endpoints``."""
        ranked = (
            select(
                WebhookDelivery.id,
                WebhookDelivery.endpoint_id,
                WebhookDelivery.next_attempt_at,
                func.row_number()
                .over(
                    partition_by=WebhookDelivery.endpoint_id,
                    order_by=(WebhookDelivery.next_attempt_at, WebhookDelivery.id),
                )
                .label("turn"),
            )
            .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
            .where(*self._due(now), WebhookEndpoint.active.is_(True))
        )
        if skip_endpoints:
            ranked = ranked.where(WebhookDelivery.endpoint_id.not_in(skip_endpoints))
        sub = ranked.subquery()
        return (
            await self.session.execute(
                select(sub.c.id, sub.c.endpoint_id)
                .where(sub.c.turn <= per_endpoint)
                .order_by(sub.c.turn, sub.c.next_attempt_at)
                .limit(limit)
            )
        ).all()

    async def lock_still_due(self, delivery_ids: list[str], now: datetime) -> list[str]:
        """Those of the deliveries still due (another worker may have leased some meanwhile), locked on
        PostgreSQL (skipping rows another transaction holds)."""
        query = select(WebhookDelivery.id).where(WebhookDelivery.id.in_(delivery_ids), *self._due(now))
        return list((await self.session.execute(self.locked(query, skip_locked=True))).scalars())

    async def lease(self, delivery_ids: list[str], now: datetime, until: datetime) -> None:
        """Lease the deliveries until ``until`` and count the attempt about to be made."""
        await self.session.execute(
            update(WebhookDelivery)
            .where(WebhookDelivery.id.in_(delivery_ids))
            .values(locked_until=until, attempts=WebhookDelivery.attempts + 1, last_attempt_at=now)
        )

    async def to_send(
        self, delivery_ids: list[str]
    ) -> Sequence[Row[str, str, str, str, str | None, datetime | None, OutboxEvent]]:
        """What sending the deliveries takes: (delivery id, endpoint id, url, secret, previous secret, its
        expiry, the event)."""
        return (
            await self.session.execute(
                select(
                    WebhookDelivery.id,
                    WebhookEndpoint.id,
                    WebhookEndpoint.url,
                    WebhookEndpoint.secret,
                    WebhookEndpoint.previous_secret,
                    WebhookEndpoint.previous_secret_expires_at,
                    OutboxEvent,
                )
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
                .join(OutboxEvent, OutboxEvent.id == WebhookDelivery.event_id)
                .where(WebhookDelivery.id.in_(delivery_ids))
            )
        ).all()
