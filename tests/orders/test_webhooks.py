from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from typing import Any

import orjson
from sqlalchemy import func, select

from liveloop.client import order_event, signed_order_headers
from liveloop.kit.db import transaction
from liveloop.models import InboundEvent, Member, Order, Referral, Reward
from tests.conftest import ShopCtx
from tests.factories import create_campaign, create_member, invite, ok, send_order


async def count(app: Any, model: Any) -> int:
    async with transaction(app.state.sessions) as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def test_paid_order_creates_member_and_order(shop: ShopCtx) -> None:
    response = await send_order(
        shop.api, shop.slug, shop.secret, "paid", "1001", "cust-1", 2599, email="Ana@Example.com"
    )
    body = ok(response)
    assert body["status"] == "paid"
    order = ok(await shop.api.get("/v1/orders/1001"))
    assert (order["total_minor"], order["currency"], order["status"]) == (2599, "USD", "paid")


async def test_bad_signature_is_refused_and_writes_nothing(shop: ShopCtx) -> None:
    body = order_event("evt-x", "paid", "1", "c1", 100)
    headers = signed_order_headers(shop.slug, "whsec_wrong", body)
    response = await shop.api.post("/v1/webhooks/orders", content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_signature"
    assert await count(shop.app, Order) == 0
    assert await count(shop.app, InboundEvent) == 0


async def test_stale_timestamp_is_refused(shop: ShopCtx) -> None:
    body = order_event("evt-x", "paid", "1", "c1", 100)
    headers = signed_order_headers(shop.slug, shop.secret, body, timestamp=int(time.time()) - 3600)
    response = await shop.api.post("/v1/webhooks/orders", content=body, headers=headers)
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "stale_timestamp"
    assert await count(shop.app, Order) == 0


async def test_malformed_json_is_a_clear_400(shop: ShopCtx) -> None:
    body = b'{"id": "evt", "type": '
    response = await shop.api.post(
        "/v1/webhooks/orders", content=body, headers=signed_order_headers(shop.slug, shop.secret, body)
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "malformed_json"
    assert "JSON" in response.json()["error"]["message"]
    assert await count(shop.app, InboundEvent) == 0


async def test_invalid_payload_is_a_422_naming_the_field(shop: ShopCtx) -> None:
    body = orjson.dumps(
        {
            "id": "e1",
            "type": "order.paid",
            "order": {"id": "1", "currency": "US Dollars", "total_minor": -5, "customer": {"id": "c"}},
        }
    )
    response = await shop.api.post(
        "/v1/webhooks/orders", content=body, headers=signed_order_headers(shop.slug, shop.secret, body)
    )
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "invalid_payload"
    assert {p["field"] for p in error["details"]["problems"]} >= {"order.currency", "order.total_minor"}
    assert await count(shop.app, Order) == 0


async def test_unknown_shop_and_missing_headers(shop: ShopCtx) -> None:
    body = order_event("e", "paid", "1", "c", 1)
    response = await shop.api.post(
        "/v1/webhooks/orders", content=body, headers=signed_order_headers("nope", shop.secret, body)
    )
    assert response.status_code == 404
    response = await shop.api.post("/v1/webhooks/orders", content=body, headers={"X-Liveloop-Shop": shop.slug})
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "missing_timestamp"


async def test_fifty_concurrent_deliveries_have_one_effect(shop: ShopCtx) -> None:
    await create_campaign(shop.api)
    inviter = await create_member(shop.api, existing_customer=True)
    invitee = await invite(shop.api, shop.slug, inviter)
    body = order_event("evt-race", "paid", "race-1", invitee["external_id"], 5000)

    async def deliver() -> int:
        async with shop.client() as api:  # each delivery on its own connection
            r = await api.post(
                "/v1/webhooks/orders", content=body, headers=signed_order_headers(shop.slug, shop.secret, body)
            )
            return r.status_code

    statuses = await asyncio.gather(*(deliver() for _ in range(50)))
    assert statuses == [200] * 50
    async with transaction(shop.app.state.sessions) as session:
        rewards = (await session.execute(select(Reward.role, func.count()).group_by(Reward.role))).all()
        referral = (await session.execute(select(Referral))).scalar_one()
    assert dict(rewards) == {"inviter": 1, "invitee": 1}
    assert referral.status == "converted"
    assert await count(shop.app, InboundEvent) == 1
    assert await count(shop.app, Order) == 1


async def test_replayed_event_is_acknowledged_as_duplicate(shop: ShopCtx) -> None:
    first = ok(await send_order(shop.api, shop.slug, shop.secret, "paid", "7", "c7", event_id="evt-same"))
    again = ok(await send_order(shop.api, shop.slug, shop.secret, "paid", "7", "c7", event_id="evt-same"))
    assert first["duplicate"] is False and again["duplicate"] is True


async def test_events_out_of_order_do_not_undo_a_refund(shop: ShopCtx) -> None:
    ok(await send_order(shop.api, shop.slug, shop.secret, "paid", "9", "c9", 4000))
    ok(await send_order(shop.api, shop.slug, shop.secret, "refunded", "9", "c9", 4000))
    ok(await send_order(shop.api, shop.slug, shop.secret, "paid", "9", "c9", 4000))  # late, different event id
    order = ok(await shop.api.get("/v1/orders/9"))
    assert order["status"] == "refunded"
    assert order["refunded_minor"] == 4000


async def test_partial_refunds_accumulate_and_never_exceed_the_total(shop: ShopCtx) -> None:
    ok(await send_order(shop.api, shop.slug, shop.secret, "paid", "p", "cp", 10000))
    ok(await send_order(shop.api, shop.slug, shop.secret, "partially_refunded", "p", "cp", 10000, refunded_minor=2500))
    order = ok(await shop.api.get("/v1/orders/p"))
    assert (order["status"], order["refunded_minor"]) == ("partially_refunded", 2500)
    ok(
        await send_order(shop.api, shop.slug, shop.secret, "partially_refunded", "p", "cp", 10000, refunded_minor=1000)
    )  # an older, smaller figure arriving late
    assert ok(await shop.api.get("/v1/orders/p"))["refunded_minor"] == 2500


def shopify_headers(secret: str, body: bytes, topic: str, webhook_id: str) -> dict[str, str]:
    digest = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()
    return {
        "X-Shopify-Hmac-Sha256": digest,
        "X-Shopify-Topic": topic,
        "X-Shopify-Webhook-Id": webhook_id,
        "Content-Type": "application/json",
    }


async def test_shopify_paid_then_refund(shop: ShopCtx) -> None:
    paid = orjson.dumps(
        {
            "id": 450789469,
            "currency": "USD",
            "total_price": "59.90",
            "financial_status": "paid",
            "customer": {"id": 207119551, "email": "bob@example.com", "first_name": "Bob"},
        }
    )
    r = await shop.api.post(
        f"/v1/webhooks/shopify/{shop.slug}",
        content=paid,
        headers=shopify_headers("shpss_test", paid, "orders/paid", "wh-1"),
    )
    assert ok(r)["status"] == "paid"
    order = ok(await shop.api.get("/v1/orders/450789469"))
    assert order["total_minor"] == 5990
    refund = orjson.dumps(
        {"order_id": 450789469, "transactions": [{"kind": "refund", "amount": "59.90", "status": "success"}]}
    )
    r = await shop.api.post(
        f"/v1/webhooks/shopify/{shop.slug}",
        content=refund,
        headers=shopify_headers("shpss_test", refund, "refunds/create", "wh-2"),
    )
    assert ok(r)["status"] == "refunded"
    r = await shop.api.post(
        f"/v1/webhooks/shopify/{shop.slug}",
        content=refund,
        headers=shopify_headers("shpss_test", refund, "refunds/create", "wh-2"),
    )
    assert ok(r)["duplicate"] is True
    async with transaction(shop.app.state.sessions) as session:
        member = (await session.execute(select(Member))).scalar_one()
    assert member.external_id == "207119551"


async def test_shopify_bad_hmac(shop: ShopCtx) -> None:
    body = b'{"id": 1}'
    headers = shopify_headers("wrong", body, "orders/paid", "wh-9")
    r = await shop.api.post(f"/v1/webhooks/shopify/{shop.slug}", content=body, headers=headers)
    assert r.status_code == 401
    assert await count(shop.app, InboundEvent) == 0
