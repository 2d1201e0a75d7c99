"""Webhook endpoints (register, update, pause, delete, rotate the secret), their deliveries, and the event log."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Request

from liveloop.events import schemas, service
from liveloop.kit.http import Session, UnitOfWorkRoute
from liveloop.kit.pagination import Page, Pagination
from liveloop.kit.schemas import PathId, QueryText
from liveloop.models import ApiKeyScope, DeliveryStatus, WebhookDelivery, WebhookEndpoint
from liveloop.shops.auth import Operator, requires

router = APIRouter(prefix="/v1", route_class=UnitOfWorkRoute, tags=["webhooks"])


def _allow_private(request: Request) -> bool:
    return bool(request.app.state.settings.webhook_allow_private_targets)


async def _url_checked_first(request: Request) -> None:
    """Check the body's URL (a DNS lookup) before the request's transaction begins (route dependencies run before
    the API-key lookup opens it). Only for requests that carry a key; the service checks any URL it did not see."""
    request.state.checked_urls = {}
    if not request.headers.get("authorization", "").startswith("Bearer ll_"):
        return
    try:
        body = orjson.loads(await request.body())
    except orjson.JSONDecodeError:
        return
    url = body.get("url") if isinstance(body, dict) else None
    if isinstance(url, str) and len(url) <= schemas.MAX_URL_LENGTH:
        request.state.checked_urls = await service.precheck_url(url, allow_private=_allow_private(request))


def _delivery(delivery: WebhookDelivery, event_type: str) -> schemas.WebhookDelivery:
    pending = delivery.status == DeliveryStatus.PENDING
    return schemas.WebhookDelivery(
        id=delivery.id,
        endpoint_id=delivery.endpoint_id,
        event_id=delivery.event_id,
        event_type=event_type,
        status=delivery.status,
        attempts=delivery.attempts,
        last_status_code=delivery.last_status_code,
        last_error=delivery.last_error,
        last_attempt_at=delivery.last_attempt_at,
        next_attempt_at=delivery.next_attempt_at if pending else None,
        delivered_at=delivery.delivered_at,
        created_at=delivery.created_at,
    )


@router.get("/webhook-endpoints", response_model=Page[schemas.WebhookEndpoint])
async def list_endpoints(
    session: Session, page: Pagination, op: Operator = requires(ApiKeyScope.ADMIN)
) -> Page[schemas.WebhookEndpoint]:
    """The shop's webhook endpoints, oldest first (never their secrets)."""
    items, cursor = await service.list_endpoints(session, op.shop_id, page)
    return Page[schemas.WebhookEndpoint](
        items=[schemas.WebhookEndpoint.model_validate(e) for e in items], next_cursor=cursor
    )


@router.post(
    "/webhook-endpoints",
    response_model=schemas.WebhookEndpointWithSecret,
    status_code=201,
    dependencies=[Depends(_url_checked_first)],
)
async def create_endpoint(
    body: schemas.WebhookEndpointCreate,
    request: Request,
    session: Session,
    op: Operator = requires(ApiKeyScope.ADMIN),
) -> schemas.WebhookEndpointWithSecret:
    """Register an endpoint. Its signing secret is in this response only."""
    endpoint = await service.create_endpoint(
        session,
        op.shop_id,
        url=body.url,
        event_types=body.event_types,
        description=body.description,
        allow_private=_allow_private(request),
        checked=request.state.checked_urls,
    )
    return _with_secret(endpoint, endpoint.secret)


def _with_secret(endpoint: WebhookEndpoint, secret: str) -> schemas.WebhookEndpointWithSecret:
    return schemas.WebhookEndpointWithSecret(
        **schemas.WebhookEndpoint.model_validate(endpoint).model_dump(), secret=secret
    )


@router.get("/webhook-endpoints/{endpoint_id}", response_model=schemas.WebhookEndpoint)
async def get_endpoint(
    endpoint_id: PathId, session: Session, op: Operator = requires(ApiKeyScope.ADMIN)
) -> schemas.WebhookEndpoint:
    return schemas.WebhookEndpoint.model_validate(await service.get_endpoint(session, op.shop_id, endpoint_id))


@router.patch(
    "/webhook-endpoints/{endpoint_id}",
    response_model=schemas.WebhookEndpoint,
    dependencies=[Depends(_url_checked_first)],
)
async def update_endpoint(
    endpoint_id: PathId,
    body: schemas.WebhookEndpointUpdate,
    request: Request,
    session: Session,
    op: Operator = requires(ApiKeyScope.ADMIN),
) -> schemas.WebhookEndpoint:
    """Change the URL (checked again), event types, description, or pause (`active: false`) and resume."""
    # null means "leave it", except for the description, which it clears
    changes: service.EndpointChanges = {}
    if body.url is not None:
        changes["url"] = body.url
    if body.event_types is not None:
        changes["event_types"] = body.event_types
    if "description" in body.model_fields_set:
        changes["description"] = body.description
    if body.active is not None:
        changes["active"] = body.active
    endpoint = await service.update_endpoint(
        session,
        op.shop_id,
        endpoint_id,
        changes,
        allow_private=_allow_private(request),
        checked=request.state.checked_urls,
    )
    return schemas.WebhookEndpoint.model_validate(endpoint)


@router.delete("/webhook-endpoints/{endpoint_id}", response_model=schemas.WebhookEndpointDeleted)
async def delete_endpoint(
    endpoint_id: PathId, session: Session, op: Operator = requires(ApiKeyScope.ADMIN)
) -> schemas.WebhookEndpointDeleted:
    """Delete the endpoint: nothing more is sent to it, and its queued deliveries are dropped."""
    await service.delete_endpoint(session, op.shop_id, endpoint_id)
    return schemas.WebhookEndpointDeleted(id=endpoint_id, deleted=True)


@router.post("/webhook-endpoints/{endpoint_id}/rotate-secret", response_model=schemas.WebhookEndpointWithSecret)
async def rotate_secret(
    endpoint_id: PathId,
    session: Session,
    body: schemas.SecretRotation | None = None,
    op: Operator = requires(ApiKeyScope.ADMIN),
) -> schemas.WebhookEndpointWithSecret:
    """A new signing secret, in this response only. Until `previous_secret_expires_at` every delivery carries
    both signatures (`X-Liveloop-Signature: v1=<new>,v1=<old>`), so receivers can switch without a gap."""
    overlap = timedelta(seconds=(body or schemas.SecretRotation()).previous_secret_valid_seconds)
    endpoint, secret = await service.rotate_secret(session, op.shop_id, endpoint_id, overlap=overlap)
    return _with_secret(endpoint, secret)


@router.get("/webhook-endpoints/{endpoint_id}/deliveries", response_model=Page[schemas.WebhookDelivery])
async def list_deliveries(
    endpoint_id: PathId,
    session: Session,
    page: Pagination,
    status: DeliveryStatus | None = None,
    op: Operator = requires(ApiKeyScope.ADMIN),
) -> Page[schemas.WebhookDelivery]:
    """The endpoint's deliveries, newest first: status, attempts, last status code and error, next retry."""
    rows, next_cursor = await service.list_deliveries(session, op.shop_id, endpoint_id, page, status=status)
    return Page[schemas.WebhookDelivery](items=[_delivery(d, t) for d, t in rows], next_cursor=next_cursor)


@router.post(
    "/webhook-endpoints/{endpoint_id}/deliveries/{delivery_id}/resend",
    response_model=schemas.WebhookDelivery,
    status_code=202,
)
async def resend_delivery(
    endpoint_id: PathId, delivery_id: PathId, session: Session, op: Operator = requires(ApiKeyScope.ADMIN)
) -> schemas.WebhookDelivery:
    """Send the delivery again now (same event id, so receivers dedupe it). Asking twice queues one attempt."""
    delivery, event_type = await service.resend_delivery(session, op.shop_id, endpoint_id, delivery_id)
    return _delivery(delivery, event_type)


@router.get("/events", response_model=Page[schemas.Event], tags=["events"])
async def list_events(
    session: Session,
    page: Pagination,
    type: Annotated[str | None, QueryText(64, "Only events of this type, such as reward.granted")] = None,
    op: Operator = requires(ApiKeyScope.ADMIN),
) -> Page[schemas.Event]:
    """The shop's events (what its webhooks receive), newest first, whether or not an endpoint subscribes to them."""
    found, cursor = await service.list_events(session, op.shop_id, page, event_type=type)
    return Page[schemas.Event](items=[schemas.Event(**service.envelope(e)) for e in found], next_cursor=cursor)
