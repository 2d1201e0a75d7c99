from __future__ import annotations

import asyncio
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
    assert first["duplicate"] is False
    assert again["duplicate"] is True


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


async def test_a_generic_event_that_gives_a_known_order_another_currency_is_refused(shop: ShopCtx) -> None:
    ok(await send_order(shop.api, shop.slug, shop.secret, "paid", "c-1", "cust-a", 4000))
    before = await count(shop.app, InboundEvent)
    response = await send_order(
        shop.api, shop.slug, shop.secret, "refunded", "c-1", "cust-a", 4000, currency="EUR", event_id="evt-eur"
    )
    assert response.status_code == 409
    error = response.json()["error"]
    assert error["code"] == "order_conflict"
    assert error["details"] == {"field": "currency", "known": "USD", "sent": "EUR"}
    order = ok(await shop.api.get("/v1/orders/c-1"))
    assert (order["status"], order["currency"], order["refunded_minor"]) == ("paid", "USD", 0)
    assert await count(shop.app, InboundEvent) == before  # the refused delivery left nothing behind
    # The same event id, sent again with the order's own currency, is applied: nothing was claimed by the refusal.
    fixed = ok(
        await send_order(shop.api, shop.slug, shop.secret, "refunded", "c-1", "cust-a", 4000, event_id="evt-eur")
    )
    assert (fixed["duplicate"], fixed["status"]) == (False, "refunded")


async def test_a_generic_event_that_gives_a_known_order_another_customer_is_refused(shop: ShopCtx) -> None:
    ok(await send_order(shop.api, shop.slug, shop.secret, "created", "c-2", "cust-a", 4000))
    members_before = await count(shop.app, Member)
    response = await send_order(shop.api, shop.slug, shop.secret, "paid", "c-2", "cust-b", 4000)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "order_conflict"
    assert response.json()["error"]["details"]["field"] == "customer.id"
    assert ok(await shop.api.get("/v1/orders/c-2"))["status"] == "created"
    assert await count(shop.app, Member) == members_before  # no member was made for the other customer


async def test_an_api_push_that_contradicts_a_known_order_is_refused(shop: ShopCtx) -> None:
    first = orjson.loads(order_event("api-1", "paid", "c-3", "cust-a", 2500))
    ok(await shop.api.post("/v1/orders/events", json=first))
    other_currency = orjson.loads(order_event("api-2", "paid", "c-3", "cust-a", 2500, currency="SGD"))
    response = await shop.api.post("/v1/orders/events", json=other_currency)
    assert (response.status_code, response.json()["error"]["code"]) == (409, "order_conflict")
    other_customer = orjson.loads(order_event("api-3", "refunded", "c-3", "cust-z", 2500))
    response = await shop.api.post("/v1/orders/events", json=other_customer)
    assert (response.status_code, response.json()["error"]["code"]) == (409, "order_conflict")
    order = ok(await shop.api.get("/v1/orders/c-3"))
    assert (order["status"], order["currency"], order["refunded_minor"]) == ("paid", "USD", 0)


async def test_the_generic_webhook_headers_and_signature_are_in_the_openapi_document(shop: ShopCtx) -> None:
    spec = ok(await shop.api.get("/openapi.json"))
    generic = spec["paths"]["/v1/webhooks/orders"]["post"]
    params = {p["name"]: p for p in generic["parameters"]}
    assert {"x-liveloop-shop", "x-liveloop-timestamp", "x-liveloop-signature"} <= set(params)
    assert all(params[n]["in"] == "header" and params[n]["description"] for n in params)
    assert '"{X-Liveloop-Timestamp}.{raw request body}"' in generic["description"]
    assert "HMAC-SHA256" in generic["description"]
    assert "v1=<hex>" in generic["description"]
    shopify = spec["paths"]["/v1/webhooks/shopify/{shop_slug}"]["post"]
    headers = {p["name"]: p for p in shopify["parameters"] if p["in"] == "header"}
    assert {"x-shopify-hmac-sha256", "x-shopify-topic", "x-shopify-webhook-id"} <= set(headers)
    assert "not signed" in headers["x-shopify-topic"]["description"]
    assert "It covers the body only" in " ".join(shopify["description"].split())


async def test_an_api_push_of_a_known_event_under_a_new_idempotency_key_is_a_duplicate(shop: ShopCtx) -> None:
    """The duplicate is answered as such, and its own Idempotency-Key replays that answer."""
    event = orjson.loads(order_event("api-dup", "paid", "c-4", "cust-a", 2500))
    first = ok(await shop.api.post("/v1/orders/events", json=event, headers={"Idempotency-Key": "push-1"}))
    assert first["duplicate"] is False
    again = await shop.api.post("/v1/orders/events", json=event, headers={"Idempotency-Key": "push-2"})
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    replay = await shop.api.post("/v1/orders/events", json=event, headers={"Idempotency-Key": "push-2"})
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json() == again.json()
    assert ok(await shop.api.get("/v1/orders/c-4"))["status"] == "paid"
