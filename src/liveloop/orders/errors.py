"""Error codes of incoming orders: the generic webhook, Shopify's and pushed events."""

from __future__ import annotations

from liveloop.kit.errors import ErrorCode


class OrderErrorCode(ErrorCode):
    """Orders in: signed webhooks (generic and Shopify) and events pushed with an API key."""

    MISSING_SHOP = (
        "missing_shop",
        400,
        "The generic order webhook was sent without the `X-Liveloop-Shop` header.",
        "Name the shop by its slug in `X-Liveloop-Shop`.",
    )
    MISSING_TIMESTAMP = (
        "missing_timestamp",
        400,
        "The generic order webhook has no `X-Liveloop-Timestamp`, or it is not a whole number.",
        "Send the Unix time in seconds at which the delivery was signed.",
    )
    STALE_TIMESTAMP = (
        "stale_timestamp",
        400,
        "`X-Liveloop-Timestamp` is further from the server's clock than the tolerance "
        "(`LIVELOOP_WEBHOOK_TOLERANCE_SECONDS`, 300 by default).",
        "Check the sender's clock, and sign each delivery when sending it (a retry is signed again).",
    )
    MALFORMED_JSON = (
        "malformed_json",
        400,
        "The webhook body is not JSON, or not a JSON object.",
        "Send the event as one UTF-8 JSON object.",
    )
    MISSING_WEBHOOK_ID = (
        "missing_webhook_id",
        400,
        "A Shopify delivery came without `X-Shopify-Webhook-Id`, which is how redeliveries are recognised.",
        "Send Shopify's webhooks as Shopify sends them, headers included.",
    )
    SHOPIFY_NOT_CONFIGURED = (
        "shopify_not_configured",
        404,
        "The shop has no Shopify secret, so its Shopify webhooks cannot be verified.",
        "Set it with `liveloop shop set-shopify-secret` or `PUT /v1/shop/shopify-secret`.",
    )
    INVALID_PAYLOAD = (
        "invalid_payload",
        422,
        "The order event does not have the expected fields or values (a missing id, a bad amount or currency).",
        "Fix the fields named in the message (and in `details.problems`) against the event schema in /docs.",
    )
    UNSUPPORTED_PAYLOAD = (
        "unsupported_payload",
        422,
        "The Shopify delivery is neither an order nor a refund.",
        "Subscribe the webhook URL only to the topics listed in the message.",
    )
    ORDER_CONFLICT = (
        "order_conflict",
        409,
        "The event gives a known order another currency or another customer than it has.",
        "Send the order's own currency and customer id, or, for another order, another order id; fix the event "
        "and send it again under the same event id.",
    )
    ORDER_NOT_FOUND = (
        "order_not_found",
        404,
        "The shop has no order with this id.",
        "Check the id; orders are created by their first event.",
    )
