"""Orders in: what a sender is told about a delivery it cannot make that way, and about unknown orders."""

from __future__ import annotations

import orjson

from tests.conftest import ShopCtx
from tests.orders import shopify_payloads as shopify


def error(response: object) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]  # type: ignore[attr-defined]


async def test_a_shopify_delivery_without_its_webhook_id_is_refused(shop: ShopCtx) -> None:
    body = orjson.dumps(shopify.order(4401, "25.00"))
    headers = shopify.headers("shpss_test", body, "orders/paid", "unused")
    del headers["X-Shopify-Webhook-Id"]
    r = await shop.api.post(f"/v1/webhooks/shopify/{shop.slug}", content=body, headers=headers)
    assert error(r) == (400, "missing_webhook_id")
    assert error(await shop.api.get("/v1/orders/4401")) == (404, "order_not_found")  # nothing was recorded
