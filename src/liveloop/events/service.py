"""Events out: written to the outbox in the caller's transaction, delivered by the worker after commit.

Also the shop's webhook endpoints (registered, updated, paused, deleted, their secrets rotated) and their
deliveries (listed, re-sent).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any, TypedDict

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from liveloop.events.errors import EventsErrorCode
from liveloop.events.repository import (
    OutboxRepository,
    WebhookDeliveryRepository,
    WebhookEndpointRepository,
    write_events,
)
from liveloop.kit import netguard
from liveloop.kit.errors import ApiErrorCode, Conflict, NotFound, Unprocessable
from liveloop.kit.ids import new_id
from liveloop.kit.pagination import PageRequest
from liveloop.kit.time import utc_now
from liveloop.kit.txbuffer import TransactionBuffer
from liveloop.models import DeliveryStatus, EventType, OutboxEvent, WebhookDelivery, WebhookEndpoint

EVENT_TYPES: tuple[str, ...] = tuple(EventType)


class Envelope(TypedDict):
    """An event as webhooks receive it and the event log lists it."""

    id: str
    type: str
    created_at: str
    data: dict[str, Any]


class EndpointChanges(TypedDict, total=False):
    """What an update of a webhook endpoint changes (a key left out stays as it is)."""

    url: str
    event_types: list[str]
    description: str | None  # None clears it
    active: bool


OUTBOX = TransactionBuffer("outbox")


async def emit(session: AsyncSession, shop_id: str, event_type: EventType, data: dict[str, Any]) -> str:
    """Record an event in the current transaction. The worker fans it out to endpoints after commit.

    Events are buffered on the session and written in one INSERT just before the transaction commits;
    events emitted inside a savepoint that rolls back are dropped with it.
    """
    event_id = new_id("evt")
    OUTBOX.add(
        session,
        {"id": event_id, "shop_id": shop_id, "type": event_type.value, "payload": data, "created_at": utc_now()},
    )
    return event_id


async def flush_outbox(session: AsyncSession) -> None:
    """Write the buffered events now, for a caller that reads the outbox in the same transaction."""
    await session.run_sync(_write_pending)


def _write_pending(session: Session) -> None:
    rows = OUTBOX.take(session)
    if rows:
        write_events(session, rows)


def write_outbox(session: Session) -> None:
    """Before a commit: the events buffered in the transaction, in one INSERT (see ``liveloop.database``)."""
    if not session.in_nested_transaction():
        _write_pending(session)


async def fan_out(session: AsyncSession, *, limit: int = 500) -> int:
    """Queue one delivery per subscribed endpoint for events not yet fanned out. Returns events handled."""
    outbox = OutboxRepository(session)
    events = await outbox.pending(limit)
    if not events:
        return 0
    now = utc_now()
    shops = {e.shop_id for e in events}
    endpoints: dict[str, list[tuple[str, list[Any]]]] = {}
    # Paused endpoints get their deliveries too: held until the endpoint is resumed.
    for endpoint_id, shop_id, types in await WebhookEndpointRepository(session).subscriptions(shops):
        endpoints.setdefault(shop_id, []).append((endpoint_id, types))
    rows = [
        {
            "id": new_id("whd"),
            "shop_id": e.shop_id,
            "event_id": e.id,
            "endpoint_id": endpoint_id,
            "status": DeliveryStatus.PENDING,
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for e in events
        for endpoint_id, types in endpoints.get(e.shop_id, [])
        if "*" in types or e.type in types
    ]
    if rows:
        await WebhookDeliveryRepository(session).queue(rows)
    await outbox.mark_fanned_out([e.id for e in events], now)
    return len(events)


def backoff(attempt: int) -> timedelta:
    """2 s, 4 s, 8 s … capped at one hour."""
    return timedelta(seconds=min(2 ** max(attempt, 1), 3600))


def envelope(event: OutboxEvent) -> Envelope:
    return {"id": event.id, "type": event.type, "created_at": event.created_at.isoformat(), "data": event.payload}


async def list_events(
    session: AsyncSession, shop_id: str, page: PageRequest, *, event_type: str | None = None
) -> tuple[list[OutboxEvent], str | None]:
    """The shop's events, newest first (ids are time-ordered); of one type when ``event_type`` is given."""
    return await OutboxRepository(session).page_of(shop_id, page, event_type=event_type)


# Webhook endpoints

MAX_ENDPOINTS_PER_SHOP = 20
DEFAULT_SECRET_OVERLAP = timedelta(hours=24)


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def check_event_types(event_types: list[str]) -> list[str]:
    unknown = sorted(set(event_types) - set(EVENT_TYPES) - {"*"})
    if unknown:
        raise Unprocessable(
            f"Unknown event types {unknown}; use '*' or some of {list(EVENT_TYPES)}.",
            code=EventsErrorCode.UNKNOWN_EVENT_TYPE,
        )
    return list(dict.fromkeys(event_types)) or ["*"]


async def check_endpoint_url(url: str, *, allow_private: bool, checked: CheckedUrls | None = None) -> str:
    """The URL, if requests may go there: http(s), no credentials, a host that is (resolves to) public addresses.

    ``checked`` holds verdicts reached earlier in the request (see :func:`precheck_url`), so the name lookup is not
    made twice, and not while the request holds the database.
    """
    if checked is not None and url in checked:
        refusal = checked[url]
        if refusal is not None:
            raise refusal
        return url
    try:
        await netguard.check_url(url, allow_private=allow_private)
    except netguard.TargetRefused as refused:
        if refused.kind == "invalid":
            raise Unprocessable(refused.reason, code=ApiErrorCode.INVALID_URL) from None
        if refused.kind == "unresolvable":
            raise Unprocessable(
                f"{refused.reason} Check the spelling and the DNS record, then register it again.",
                code=EventsErrorCode.WEBHOOK_HOST_UNRESOLVABLE,
            ) from None
        raise Unprocessable(
            f"Webhooks are not sent there: {refused.reason} Give a URL on the public internet.",
            code=EventsErrorCode.FORBIDDEN_WEBHOOK_TARGET,
        ) from None
    return url


CheckedUrls = dict[str, Unprocessable | None]


async def precheck_url(url: str, *, allow_private: bool) -> CheckedUrls:
    """The verdict on ``url`` (None: allowed), reached before the request's transaction begins: resolving a name
    can take seconds, and on SQLite an open transaction holds the only connection for everyone."""
    try:
        await check_endpoint_url(url, allow_private=allow_private)
    except Unprocessable as refusal:
        return {url: refusal}
    return {url: None}


async def create_endpoint(
    session: AsyncSession,
    shop_id: str,
    *,
    url: str,
    event_types: list[str],
    description: str | None = None,
    allow_private: bool = False,
    checked: CheckedUrls | None = None,
) -> WebhookEndpoint:
    event_types = check_event_types(event_types)
    endpoints = WebhookEndpointRepository(session)
    if await endpoints.count(shop_id) >= MAX_ENDPOINTS_PER_SHOP:
        raise Conflict(
            f"A shop has at most {MAX_ENDPOINTS_PER_SHOP} webhook endpoints; delete one you no longer use, "
            "or subscribe an existing one to more event types.",
            code=EventsErrorCode.TOO_MANY_WEBHOOK_ENDPOINTS,
        )
    await check_endpoint_url(url, allow_private=allow_private, checked=checked)
    endpoint = WebhookEndpoint(
        id=new_id("whe"),
        shop_id=shop_id,
        url=url,
        description=description,
        secret=_new_secret(),
        event_types=event_types,
        active=True,
    )
    return await endpoints.add(endpoint)


async def list_endpoints(
    session: AsyncSession, shop_id: str, page: PageRequest
) -> tuple[list[WebhookEndpoint], str | None]:
    """The shop's webhook endpoints, oldest first."""
    return await WebhookEndpointRepository(session).page_of(shop_id, page)


async def get_endpoint(session: AsyncSession, shop_id: str, endpoint_id: str, *, lock: bool = False) -> WebhookEndpoint:
    """The shop's endpoint (locked for the change to come when ``lock``), or 404 ``webhook_endpoint_not_found``."""
    return await WebhookEndpointRepository(session).get_or_raise(shop_id, endpoint_id, lock=lock)


async def update_endpoint(
    session: AsyncSession,
    shop_id: str,
    endpoint_id: str,
    changes: EndpointChanges,
    *,
    allow_private: bool = False,
    checked: CheckedUrls | None = None,
) -> WebhookEndpoint:
    """Apply ``changes`` (any of url, event_types, description, active). A new URL is checked again."""
    endpoint = await get_endpoint(session, shop_id, endpoint_id, lock=True)
    if "event_types" in changes:
        endpoint.event_types = check_event_types(changes["event_types"])
    if "url" in changes and changes["url"] != endpoint.url:
        endpoint.url = await check_endpoint_url(changes["url"], allow_private=allow_private, checked=checked)
    if "description" in changes:
        endpoint.description = changes["description"]
    if "active" in changes:
        endpoint.active = changes["active"]
    await session.flush()
    return endpoint


async def delete_endpoint(session: AsyncSession, shop_id: str, endpoint_id: str) -> None:
    """Remove the endpoint; its queued deliveries are dropped with it and nothing more is sent there."""
    endpoint = await get_endpoint(session, shop_id, endpoint_id, lock=True)
    await WebhookEndpointRepository(session).delete(endpoint)


async def rotate_secret(
    session: AsyncSession, shop_id: str, endpoint_id: str, *, overlap: timedelta = DEFAULT_SECRET_OVERLAP
) -> tuple[WebhookEndpoint, str]:
    """A new signing secret (returned once). For ``overlap`` the old one signs deliveries beside it."""
    endpoint = await get_endpoint(session, shop_id, endpoint_id, lock=True)
    secret = _new_secret()
    if overlap > timedelta(0):
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_expires_at = utc_now() + overlap
    else:
        endpoint.previous_secret = None
        endpoint.previous_secret_expires_at = None
    endpoint.secret = secret
    await session.flush()
    return endpoint, secret


def signing_secrets(
    secret: str, previous_secret: str | None, previous_expires_at: datetime | None, now: datetime
) -> list[str]:
    """The secrets a delivery is signed with: the current one, and the previous one while it overlaps."""
    if previous_secret and previous_expires_at is not None and previous_expires_at > now:
        return [secret, previous_secret]
    return [secret]


async def list_deliveries(
    session: AsyncSession,
    shop_id: str,
    endpoint_id: str,
    page: PageRequest,
    *,
    status: DeliveryStatus | None = None,
) -> tuple[list[tuple[WebhookDelivery, str]], str | None]:
    """An endpoint's deliveries with their event types, newest first; and the cursor of the next page."""
    endpoint = await get_endpoint(session, shop_id, endpoint_id)
    return await WebhookDeliveryRepository(session).page_of(endpoint.id, page, status=status)


async def resend_delivery(
    session: AsyncSession, shop_id: str, endpoint_id: str, delivery_id: str
) -> tuple[WebhookDelivery, str]:
    """Queue a new attempt of a delivery now, whatever its status. Idempotent: while it is queued or under
    way, asking again changes nothing. Receivers dedupe by the event id, which stays the same."""
    endpoint = await get_endpoint(session, shop_id, endpoint_id)
    if not endpoint.active:
        raise Conflict(
            "This endpoint is paused, so nothing is sent to it; resume it (PATCH with active: true) and its "
            "queued deliveries go out.",
            code=EventsErrorCode.WEBHOOK_ENDPOINT_PAUSED,
        )
    deliveries = WebhookDeliveryRepository(session)
    await deliveries.requeue(endpoint.id, delivery_id, utc_now())
    found = await deliveries.with_event_type(endpoint.id, delivery_id)
    if found is None:
        raise NotFound(
            f"Endpoint {endpoint_id!r} has no delivery {delivery_id!r}; list them with "
            f"GET /v1/webhook-endpoints/{endpoint_id}/deliveries.",
            code=EventsErrorCode.WEBHOOK_DELIVERY_NOT_FOUND,
        )
    return found
