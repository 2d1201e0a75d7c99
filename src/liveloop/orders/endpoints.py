"""Incoming order webhooks: signature and timestamp first, then the body; one effect per event id."""

from __future__ import annotations

import time
from typing import Annotated

import orjson
from fastapi import APIRouter, Header, Path, Request
from pydantic import ValidationError

from liveloop.kit.errors import BadRequest, NotFound, Unauthorized, Unprocessable
from liveloop.kit.http import Session, UnitOfWorkRoute
from liveloop.kit.openapi import errors
from liveloop.kit.signing import constant_time_equal, hmac_b64, timestamped_signature
from liveloop.kit.time import utc_now
from liveloop.members import devices
from liveloop.models import Shop
from liveloop.orders import repository, schemas, service, shopify
from liveloop.shops.auth import Operator, requires
from liveloop.shops.service import shopify_secrets

router = APIRouter(route_class=UnitOfWorkRoute, tags=["orders"])


async def _shop(session: Session, slug: str | None) -> Shop:
    if not slug:
        raise BadRequest("Name the shop in the X-Liveloop-Shop header (its slug).", code="missing_shop")
    shop = await repository.shop_by_slug(session, slug)
    if shop is None:
        raise NotFound(f"No shop with the slug {slug!r}.", code="shop_not_found")
    return shop


def _verified_device(event: schemas.OrderEventIn, request: Request) -> schemas.OrderEventIn:
    """Keep the customer's device only when liveloop issued it (its bare id, as stored); drop any other value."""
    customer = event.order.customer
    if customer.device_id is not None:
        customer.device_id = devices.verify(request.app.state.settings.secret_key, customer.device_id)
    return event


def _parse(body: bytes) -> object:
    """The JSON value of a body (any JSON value: the caller checks its shape)."""
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


GENERIC_WEBHOOK_DESCRIPTION = """A generic order event, signed with the shop's webhook secret
(`liveloop shop create` prints it).

**Signature.** Compute HMAC-SHA256 with the webhook secret as key over the bytes
`"{X-Liveloop-Timestamp}.{raw request body}"` (the timestamp as sent, a dot, then the body exactly as sent),
hex-encode it and send `X-Liveloop-Signature: v1=<hex>`. Several comma-separated values may be sent (`v1=…,v1=…`);
one must match. The timestamp must be within `LIVELOOP_WEBHOOK_TOLERANCE_SECONDS` (300 s) of the server's clock,
so sign each delivery when sending it.

**Effect.** Deliveries with the same event `id` have one effect, however many arrive at once. Events of one order
may arrive in any order: it is paid once and a refund never goes back to paid; `refunded_minor` is the order's
refunded total so far (a smaller, older figure arriving late changes nothing). An event that gives a known order
another currency or another customer is refused with 409 `order_conflict` and changes nothing.
"""

SHOPIFY_WEBHOOK_DESCRIPTION = """Shopify order and refund webhooks. Subscribe this URL to `orders/create`,
`orders/paid`, `orders/updated`, `orders/cancelled` and `refunds/create` (JSON), and give liveloop the secret
Shopify signs them with (`PUT /v1/shop/shopify-secret` or `liveloop shop set-shopify-secret`).

**Signature.** `X-Shopify-Hmac-Sha256` is the base64 HMAC-SHA256 of the raw body with that secret. It covers the
body only, so nothing unsigned decides what a delivery means: not `X-Shopify-Topic`, not `X-Shopify-Webhook-Id`.
An order body is read from its `financial_status` (paid, partially_refunded, refunded pay the order),
`cancelled_at` and `refunds`; a refund body (`order_id` with `transactions`, no `financial_status`) from its
own `id` and successful refund transactions. Each Shopify refund id is counted once, whether it comes in
`refunds/create` or in an order's `refunds`, under any webhook id; the refunded amount is the sum over
distinct refunds, capped at the order's total.

**Attribution.** A new customer's first order carrying `ll_click` or `ll_ref` (cart attributes in
`note_attributes`, with or without a leading `_`, or the query of `landing_site`) attributes the member it
creates to the inviter, with the click's channel, show and host.
"""


@router.post(
    "/v1/webhooks/orders",
    response_model=schemas.WebhookResult,
    description=GENERIC_WEBHOOK_DESCRIPTION,
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
    x_liveloop_shop: str | None = Header(None, max_length=64, description="The shop's slug, e.g. `acme`."),
    x_liveloop_timestamp: str | None = Header(
        None, max_length=64, description="Unix time (seconds) the delivery was signed at; part of the signed message."
    ),
    x_liveloop_signature: str | None = Header(
        None,
        max_length=1000,
        description='`v1=<hex HMAC-SHA256 of "{timestamp}.{raw body}" with the shop\'s webhook secret>`; '
        "comma-separated values are allowed, one must match.",
    ),
) -> schemas.WebhookResult:
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
    order = await service.apply_order_event(session, shop, _verified_device(event, request), source="generic")
    return schemas.WebhookResult(order_id=order.id, status=order.status)


@router.post(
    "/v1/webhooks/shopify/{shop_slug}",
    response_model=schemas.WebhookResult,
    description=SHOPIFY_WEBHOOK_DESCRIPTION,
    responses=errors(400, 401),
    openapi_extra={"requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}}},
)
async def shopify_webhook(
    shop_slug: Annotated[str, Path(max_length=64)],
    request: Request,
    session: Session,
    x_shopify_hmac_sha256: str | None = Header(
        None, max_length=1000, description="Base64 HMAC-SHA256 of the raw body with the shop's Shopify secret."
    ),
    x_shopify_topic: str | None = Header(
        None,
        max_length=64,
        description="Informational only: it is not signed, so the body decides what the delivery means.",
    ),
    x_shopify_webhook_id: str | None = Header(
        None,
        max_length=255,
        description="Shopify's id of this delivery: a redelivery with the same id is acknowledged as a duplicate.",
    ),
) -> schemas.WebhookResult:
    shop = await _shop(session, shop_slug)
    secrets = shopify_secrets(shop, utc_now())
    if not secrets:
        raise NotFound(
            "This shop has no Shopify secret configured; set it with `liveloop shop set-shopify-secret` "
            "or PUT /v1/shop/shopify-secret.",
            code="shopify_not_configured",
        )
    body = await request.body()
    if not x_shopify_hmac_sha256 or not any(
        constant_time_equal(hmac_b64(secret, body), x_shopify_hmac_sha256) for secret in secrets
    ):
        raise Unauthorized(
            "X-Shopify-Hmac-Sha256 does not match the body; check the app's shared secret.", code="invalid_signature"
        )
    if not x_shopify_webhook_id:
        raise BadRequest(
            "X-Shopify-Webhook-Id is missing; it is how duplicate deliveries are recognised.", code="missing_webhook_id"
        )
    payload = _parse(body)
    if not isinstance(payload, dict):
        raise BadRequest("The body must be a JSON object.", code="malformed_json")
    try:
        kind, facts = shopify.read(payload)
    except ValidationError as exc:
        raise _validation_error(exc) from None
    if not await service.claim_event(session, shop.id, "shopify", x_shopify_webhook_id[:255], f"shopify.{kind}"):
        return schemas.WebhookResult(duplicate=True)
    # A guest checkout has no one to attribute or reward: acknowledged, because an error would make Shopify retry
    # it for two days and then remove the shop's webhook subscription.
    order = await service.apply_order_facts(session, shop, facts, source="shopify")
    if order is None:
        return schemas.WebhookResult(skipped="guest_order" if kind == "order" and facts.customer is None else None)
    return schemas.WebhookResult(order_id=order.id, status=order.status)


@router.get("/v1/orders/{order_id}", response_model=schemas.Order)
async def get_order(
    order_id: Annotated[str, Path(max_length=255, description="Ours or the shop's")],
    session: Session,
    op: Operator = requires("members:read"),
) -> schemas.Order:
    order = await repository.OrderRepository(session).by_reference_or_raise(op.shop_id, order_id)
    return schemas.Order.model_validate(order)


@router.post("/v1/orders/events", response_model=schemas.WebhookResult)
async def push_order_event(
    body: schemas.OrderEventIn, request: Request, session: Session, op: Operator = requires("orders:write")
) -> schemas.WebhookResult:
    """The same order events as the webhook, sent with an API key instead of a signature."""
    if not await service.claim_event(session, op.shop_id, "api", body.id, body.type):
        return schemas.WebhookResult(duplicate=True)
    order = await service.apply_order_event(session, op.shop, _verified_device(body, request), source="api")
    return schemas.WebhookResult(order_id=order.id, status=order.status)
