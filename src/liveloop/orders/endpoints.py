"""Incoming order webhooks: signature and timestamp first, then the body; one effect per event id."""

from __future__ import annotations

import time
from typing import Any

import orjson
from fastapi import APIRouter, Header, Request
from pydantic import ValidationError
from sqlalchemy import select

from liveloop.kit.errors import BadRequest, NotFound, Unauthorized, Unprocessable
from liveloop.kit.http import Session, UnitOfWorkRoute
from liveloop.kit.openapi import errors
from liveloop.kit.signing import constant_time_equal, hmac_b64, timestamped_signature
from liveloop.models import Member, Order, Shop
from liveloop.orders import schemas, service, shopify
from liveloop.shops.auth import Operator, requires

router = APIRouter(route_class=UnitOfWorkRoute, tags=["orders"])


async def _shop(session: Session, slug: str | None) -> Shop:
    if not slug:
        raise BadRequest("Name the shop in the X-Liveloop-Shop header (its slug).", code="missing_shop")
    shop = (await session.execute(select(Shop).where(Shop.slug == slug))).scalar_one_or_none()
    if shop is None:
        raise NotFound(f"No shop with the slug {slug!r}.", code="shop_not_found")
    return shop


def _parse(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(
            f"The body is not valid JSON ({exc}); send the event as UTF-8 JSON.", code="malformed_json"
        ) from None


def _validation_error(exc: ValidationError) -> Unprocessable:
    first = exc.errors()[0]
    where = ".".join(str(p) for p in first["loc"])
    return Unprocessable(
        f"The order event is not valid: {where}: {first['msg']}.",
        code="invalid_payload",
        problems=[{"field": ".".join(str(p) for p in e["loc"]), "problem": e["msg"]} for e in exc.errors()],
    )


@router.post(
    "/v1/webhooks/orders",
    response_model=schemas.WebhookResult,
    responses=errors(400, 401, 404),
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": schemas.OrderEventIn.model_json_schema(ref_template="#/components/schemas/{model}")
                }
            }
        }
    },
)
async def order_webhook(
    request: Request,
    session: Session,
    x_liveloop_shop: str | None = Header(None),
    x_liveloop_timestamp: str | None = Header(None),
    x_liveloop_signature: str | None = Header(None),
) -> Any:
    """A generic order event. Sign `"{timestamp}.{raw body}"` with the shop's webhook secret (HMAC-SHA256):
    `X-Liveloop-Timestamp: <unix seconds>`, `X-Liveloop-Signature: v1=<hex>`."""
    shop = await _shop(session, x_liveloop_shop)
    body = await request.body()
    tolerance = request.app.state.settings.webhook_tolerance_seconds
    if not x_liveloop_timestamp or not x_liveloop_timestamp.isdigit():
        raise BadRequest(
            "Send X-Liveloop-Timestamp with the Unix time (seconds) the event was signed at.", code="missing_timestamp"
        )
    if abs(time.time() - int(x_liveloop_timestamp)) > tolerance:
        raise BadRequest(
            f"The timestamp is more than {tolerance} s away from now; check the sender's clock "
            "and sign each delivery when sending it.",
            code="stale_timestamp",
        )
    expected = timestamped_signature(shop.webhook_secret, int(x_liveloop_timestamp), body)
    candidates = [s.strip() for s in (x_liveloop_signature or "").split(",")]
    if not any(constant_time_equal(expected, c) for c in candidates):
        raise Unauthorized(
            "The signature does not match; sign '{timestamp}.{raw body}' with HMAC-SHA256 and the "
            "shop's webhook secret, and send it as 'v1=<hex>'.",
            code="invalid_signature",
        )
    try:
        event = schemas.OrderEventIn.model_validate(_parse(body))
    except ValidationError as exc:
        raise _validation_error(exc) from None
    if not await service.claim_event(session, shop.id, "generic", event.id, event.type):
        return schemas.WebhookResult(duplicate=True)
    order = await service.apply_order_event(session, shop, event, source="generic")
    return schemas.WebhookResult(order_id=order.id, status=order.status)


@router.post("/v1/webhooks/shopify/{shop_slug}", response_model=schemas.WebhookResult, responses=errors(400, 401))
async def shopify_webhook(
    shop_slug: str,
    request: Request,
    session: Session,
    x_shopify_hmac_sha256: str | None = Header(None),
    x_shopify_topic: str | None = Header(None),
    x_shopify_webhook_id: str | None = Header(None),
) -> Any:
    """Shopify order webhooks (orders/create, orders/paid, orders/updated, orders/cancelled, refunds/create)."""
    shop = await _shop(session, shop_slug)
    if not shop.shopify_secret:
        raise NotFound(
            "This shop has no Shopify secret configured; set it with `liveloop shop create "
            "--shopify-secret` or the API.",
            code="shopify_not_configured",
        )
    body = await request.body()
    if not x_shopify_hmac_sha256 or not constant_time_equal(hmac_b64(shop.shopify_secret, body), x_shopify_hmac_sha256):
        raise Unauthorized(
            "X-Shopify-Hmac-Sha256 does not match the body; check the app's shared secret.", code="invalid_signature"
        )
    if x_shopify_topic not in shopify.TOPICS:
        raise BadRequest(
            f"Unsupported topic {x_shopify_topic!r}; subscribe to {list(shopify.TOPICS)}.", code="unsupported_topic"
        )
    if not x_shopify_webhook_id:
        raise BadRequest(
            "X-Shopify-Webhook-Id is missing; it is how duplicate deliveries are recognised.", code="missing_webhook_id"
        )
    payload = _parse(body)
    if not isinstance(payload, dict):
        raise BadRequest("The body must be a JSON object.", code="malformed_json")
    known: dict[str, Any] = {}
    if x_shopify_topic == "refunds/create":
        row = (
            await session.execute(
                select(Order, Member)
                .join(Member, Member.id == Order.member_id)
                .where(Order.shop_id == shop.id, Order.external_id == str(payload.get("order_id")))
            )
        ).one_or_none()
        if row is not None:
            known = {
                "known_total": row.Order.total_minor,
                "known_currency": row.Order.currency,
                "known_customer": {"id": row.Member.external_id or row.Member.id},
                "previous_refunded": row.Order.refunded_minor,
            }
    try:
        previous = known.pop("previous_refunded", 0)
        event = shopify.to_event(x_shopify_topic, x_shopify_webhook_id, payload, **known)
        if event is not None and x_shopify_topic == "refunds/create":
            refunded = min(previous + event.order.refunded_minor, event.order.total_minor)
            event.order.refunded_minor = refunded
            event.type = "order.refunded" if refunded >= event.order.total_minor else "order.partially_refunded"
    except (ValidationError, KeyError) as exc:
        if isinstance(exc, ValidationError):
            raise _validation_error(exc) from None
        raise Unprocessable(f"The Shopify payload lacks {exc}.", code="invalid_payload") from None
    if not await service.claim_event(session, shop.id, "shopify", x_shopify_webhook_id, x_shopify_topic):
        return schemas.WebhookResult(duplicate=True)
    if event is None:
        return schemas.WebhookResult()
    order = await service.apply_order_event(session, shop, event, source="shopify")
    return schemas.WebhookResult(order_id=order.id, status=order.status)


@router.get("/v1/orders/{order_id}", response_model=schemas.Order)
async def get_order(order_id: str, session: Session, op: Operator = requires("members:read")) -> Any:
    order = (
        (
            await session.execute(
                select(Order).where(
                    Order.shop_id == op.shop_id, (Order.id == order_id) | (Order.external_id == order_id)
                )
            )
        )
        .scalars()
        .first()
    )
    if order is None:
        raise NotFound("No such order in this shop.", code="order_not_found")
    return order


@router.post("/v1/orders/events", response_model=schemas.WebhookResult)
async def push_order_event(
    body: schemas.OrderEventIn, session: Session, op: Operator = requires("orders:write")
) -> Any:
    """The same order events as the webhook, sent with an API key instead of a signature."""
    if not await service.claim_event(session, op.shop_id, "api", body.id, body.type):
        return schemas.WebhookResult(duplicate=True)
    order = await service.apply_order_event(session, op.shop, body, source="api")
    return schemas.WebhookResult(order_id=order.id, status=order.status)
