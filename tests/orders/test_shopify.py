"""Shopify webhooks end to end: only the signed body decides, refunds count once, buyers are attributed."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from sqlalchemy import func, select

from liveloop.kit.db import transaction
from liveloop.models import InboundEvent, Member, Order, OrderRefund, Referral, Reward
from tests.conftest import ShopCtx
from tests.factories import click, create_campaign, create_member, ok
from tests.orders import shopify_payloads as shopify
from tests.orders.shopify_payloads import deliver


async def count(app: Any, model: Any) -> int:
    async with transaction(app.state.sessions) as session:
        return int((await session.execute(select(func.count()).select_from(model))).scalar_one())


async def order_of(shop: ShopCtx, order_id: int) -> dict[str, Any]:
    return ok(await shop.api.get(f"/v1/orders/{order_id}"))


async def balances(shop: ShopCtx, member_id: str) -> dict[str, tuple[int, int]]:
    body = ok(await shop.api.get(f"/v1/members/{member_id}/balances"))
    return {b["asset"]: (b["available"], b["pending"]) for b in body["balances"]}


async def events(shop: ShopCtx, event_type: str) -> list[dict[str, Any]]:
    return ok(await shop.api.get("/v1/events", params={"type": event_type}))["items"]


async def member_by_customer(shop: ShopCtx, customer_id: int) -> Member:
    async with transaction(shop.app.state.sessions) as session:
        return (await session.execute(select(Member).where(Member.external_id == str(customer_id)))).scalar_one()


async def paid_order(shop: ShopCtx, order_id: int, total: str = "100.00", **kw: Any) -> dict[str, Any]:
    return ok(await deliver(shop.api, shop.slug, shopify.order(order_id, total, **kw), "orders/paid"))


# --- only the signed body decides ------------------------------------------------------------------------


async def test_a_pending_order_replayed_under_the_paid_topic_is_not_paid(shop: ShopCtx) -> None:
    await create_campaign(shop.api)
    inviter = await create_member(shop.api)
    click_id, _ = await click(shop.api, shop.slug, inviter["referral_code"], "whatsapp")
    pending = orjson.dumps(
        shopify.order(
            5101, "45.00", financial_status="pending", note_attributes=[{"name": "_ll_click", "value": click_id}]
        )
    )
    assert ok(await deliver(shop.api, shop.slug, pending, "orders/create"))["status"] == "created"
    # The captured, correctly signed body, sent again under the topic orders/paid and new webhook ids.
    for _ in range(3):
        replay = ok(await deliver(shop.api, shop.slug, pending, "orders/paid"))
        assert replay["status"] == "created"
    assert (await order_of(shop, 5101))["status"] == "created"
    assert await events(shop, "order.paid") == []
    assert (await balances(shop, inviter["id"])).get("points", (0, 0)) == (0, 0)
    # Shopify's own orders/paid body (financial_status paid) pays it, and the inviter is rewarded once.
    ok(await deliver(shop.api, shop.slug, shopify.order(5101, "45.00", financial_status="paid"), "orders/paid"))
    assert (await order_of(shop, 5101))["status"] == "paid"
    assert (await balances(shop, inviter["id"]))["points"] == (500, 0)


async def test_the_topic_header_does_not_decide_a_paid_order_is_paid_under_any_topic(shop: ShopCtx) -> None:
    body = shopify.order(5102, "19.99", financial_status="paid")
    assert ok(await deliver(shop.api, shop.slug, body, "orders/updated"))["status"] == "paid"
    assert (await order_of(shop, 5102))["total_minor"] == 1999


async def test_an_authorized_order_is_not_paid_until_captured(shop: ShopCtx) -> None:
    authorized = shopify.order(5103, "30.00", financial_status="authorized")
    assert ok(await deliver(shop.api, shop.slug, authorized, "orders/paid"))["status"] == "created"
    captured = shopify.order(5103, "30.00", financial_status="paid")
    assert ok(await deliver(shop.api, shop.slug, captured, "orders/updated"))["status"] == "paid"


async def test_a_cancelled_unpaid_order_is_cancelled(shop: ShopCtx) -> None:
    ok(await deliver(shop.api, shop.slug, shopify.order(5104, "30.00", financial_status="pending"), "orders/create"))
    cancelled = shopify.order(5104, "30.00", financial_status="voided", cancelled_at="2026-11-25T11:00:00-05:00")
    assert ok(await deliver(shop.api, shop.slug, cancelled, "orders/cancelled"))["status"] == "cancelled"


async def test_a_body_that_is_neither_an_order_nor_a_refund_is_refused(shop: ShopCtx) -> None:
    product = {"id": 632910392, "title": "Serum 30 ml", "vendor": "Acme", "variants": [{"id": 1, "price": "9.00"}]}
    response = await deliver(shop.api, shop.slug, product, "orders/paid")
    assert (response.status_code, response.json()["error"]["code"]) == (422, "unsupported_payload")
    assert await count(shop.app, InboundEvent) == 0


async def test_odd_shapes_in_a_signed_body_are_a_4xx_never_a_500(shop: ShopCtx) -> None:
    good = shopify.order(5108, "10.00")
    odd = [
        {**good, "id": [5108]},
        {**good, "id": "9" * 300},
        {**good, "currency": "Dollars"},
        {**good, "total_price": "ten"},
        {**good, "total_price": "1" * 40},
        {**good, "customer": {**good["customer"], "id": {"nested": 1}}},
        {**good, "customer": {**good["customer"], "first_name": ["Ana"]}},
        {**good, "customer": {**good["customer"], "last_name": 7}},
        {"id": 1, "order_id": [1], "transactions": []},
        {"id": None, "order_id": 5108, "transactions": [{"kind": "refund", "amount": "1.00"}]},
    ]
    for body in odd:
        response = await deliver(shop.api, shop.slug, body, "orders/paid")
        assert 400 <= response.status_code < 500, (body, response.text)
    # Fields that are not lists where lists belong read as empty; the order itself is fine.
    lenient = {**good, "refunds": 5, "note_attributes": "x", "customer": good["customer"], "payment_details": []}
    assert ok(await deliver(shop.api, shop.slug, lenient, "orders/paid"))["status"] == "paid"
    assert await count(shop.app, Order) == 1


async def test_a_bad_hmac_is_refused_and_writes_nothing(shop: ShopCtx) -> None:
    response = await deliver(shop.api, shop.slug, shopify.order(5105, "10.00"), "orders/paid", secret="wrong-secret")
    assert (response.status_code, response.json()["error"]["code"]) == (401, "invalid_signature")
    assert await count(shop.app, InboundEvent) == 0
    assert await count(shop.app, Order) == 0


async def test_a_guest_order_is_acknowledged_without_effect_so_shopify_does_not_retry_it(shop: ShopCtx) -> None:
    body = ok(await deliver(shop.api, shop.slug, shopify.order(5106, "10.00", customer_id=None), "orders/paid"))
    assert (body["skipped"], body["order_id"]) == ("guest_order", None)
    assert await count(shop.app, Order) == 0
    assert await count(shop.app, Member) == 0


async def test_a_redelivery_with_the_same_webhook_id_is_acknowledged_as_a_duplicate(shop: ShopCtx) -> None:
    body = shopify.order(5107, "10.00")
    first = ok(await deliver(shop.api, shop.slug, body, "orders/paid", webhook_id="wh-same"))
    again = ok(await deliver(shop.api, shop.slug, body, "orders/paid", webhook_id="wh-same"))
    assert (first["duplicate"], again["duplicate"]) == (False, True)


# --- refunds counted once, by Shopify's refund id -----------------------------------------------------------


async def test_one_refund_replayed_under_new_webhook_ids_and_topics_is_counted_once(shop: ShopCtx) -> None:
    await paid_order(shop, 6001, "100.00")
    first = shopify.refund(6001, "30.00", refund_id=900001)
    assert ok(await deliver(shop.api, shop.slug, first, "refunds/create"))["status"] == "partially_refunded"
    for topic in ("refunds/create", "refunds/create", "orders/paid", "orders/updated"):
        ok(await deliver(shop.api, shop.slug, first, topic))  # a new X-Shopify-Webhook-Id each time
    # The order's own orders/updated body lists the same refund: still one refund.
    updated = shopify.order(6001, "100.00", financial_status="partially_refunded", refunds=[first])
    ok(await deliver(shop.api, shop.slug, updated, "orders/updated"))
    order = await order_of(shop, 6001)
    assert (order["status"], order["refunded_minor"]) == ("partially_refunded", 3000)
    assert len(await events(shop, "order.refunded")) == 1
    second = shopify.refund(6001, "70.00", refund_id=900002)
    ok(await deliver(shop.api, shop.slug, second, "refunds/create"))
    order = await order_of(shop, 6001)
    assert (order["status"], order["refunded_minor"]) == ("refunded", 10000)
    assert await count(shop.app, OrderRefund) == 2


async def test_refunds_first_seen_in_an_order_body_are_not_counted_again_by_refunds_create(shop: ShopCtx) -> None:
    await paid_order(shop, 6002, "50.00")
    r1, r2 = shopify.refund(6002, "20.00"), shopify.refund(6002, "10.00")
    updated = shopify.order(6002, "50.00", financial_status="partially_refunded", refunds=[r1, r2])
    ok(await deliver(shop.api, shop.slug, updated, "orders/updated"))
    ok(await deliver(shop.api, shop.slug, r2, "refunds/create"))
    ok(await deliver(shop.api, shop.slug, r1, "refunds/create"))
    assert (await order_of(shop, 6002))["refunded_minor"] == 3000


async def test_distinct_refunds_add_up_and_are_capped_at_the_total(shop: ShopCtx) -> None:
    await paid_order(shop, 6003, "100.00")
    ok(await deliver(shop.api, shop.slug, shopify.refund(6003, "80.00"), "refunds/create"))
    ok(await deliver(shop.api, shop.slug, shopify.refund(6003, "80.00"), "refunds/create"))
    order = await order_of(shop, 6003)
    assert (order["status"], order["refunded_minor"]) == ("refunded", 10000)


async def test_a_refund_without_money_or_with_a_failed_transaction_changes_nothing(shop: ShopCtx) -> None:
    await paid_order(shop, 6004, "40.00")
    ok(await deliver(shop.api, shop.slug, shopify.refund(6004, ""), "refunds/create"))  # items restocked only
    ok(await deliver(shop.api, shop.slug, shopify.refund(6004, "40.00", status="failure"), "refunds/create"))
    order = await order_of(shop, 6004)
    assert (order["status"], order["refunded_minor"]) == ("paid", 0)


async def test_a_refunded_order_body_refunds_the_whole_order(shop: ShopCtx) -> None:
    await paid_order(shop, 6005, "40.00")
    refunded = shopify.order(6005, "40.00", financial_status="refunded", refunds=[shopify.refund(6005, "40.00")])
    assert ok(await deliver(shop.api, shop.slug, refunded, "orders/updated"))["status"] == "refunded"
    late_paid = shopify.order(6005, "40.00", financial_status="paid")  # an older body arriving late
    assert ok(await deliver(shop.api, shop.slug, late_paid, "orders/paid"))["status"] == "refunded"


async def test_a_refund_of_an_order_never_seen_is_acknowledged_and_changes_nothing(shop: ShopCtx) -> None:
    response = ok(await deliver(shop.api, shop.slug, shopify.refund(6999, "5.00"), "refunds/create"))
    assert (response["order_id"], response["status"]) == (None, None)
    assert await count(shop.app, Order) == 0


async def test_a_refund_in_the_buyers_currency_counts_in_the_orders_currency(shop: ShopCtx) -> None:
    # A USD shop selling to Thailand: the buyer paid THB 2,100.00 for USD 59.90; refunds are made in THB.
    await paid_order(shop, 6006, "59.90", presentment=("2100.00", "THB"))
    items = [shopify.refund_line_item(("19.97", "700.00"), ("0.00", "0.00"), "USD", "THB")]
    ok(
        await deliver(
            shop.api, shop.slug, shopify.refund(6006, "700.00", currency="THB", line_items=items), "refunds/create"
        )
    )
    assert (await order_of(shop, 6006))["refunded_minor"] == 1997
    # A refund without line items (an amount only) in an order body: the order's own two totals give the rate.
    amount_only = shopify.refund(6006, "350.00", currency="THB")
    updated = shopify.order(
        6006, "59.90", financial_status="partially_refunded", presentment=("2100.00", "THB"), refunds=[amount_only]
    )
    ok(await deliver(shop.api, shop.slug, updated, "orders/updated"))
    assert (await order_of(shop, 6006))["refunded_minor"] == 1997 + 998  # 59.90 × 350 / 2100 = 9.983…


async def test_concurrent_deliveries_of_distinct_refunds_all_count(shop: ShopCtx) -> None:
    await paid_order(shop, 6007, "100.00")
    refunds = [shopify.refund(6007, "10.00") for _ in range(6)]

    async def send(body: dict[str, Any]) -> int:
        async with shop.client() as api:  # each delivery on its own connection
            return (await deliver(api, shop.slug, body, "refunds/create")).status_code

    statuses = await asyncio.gather(*(send(r) for r in refunds + refunds))
    assert statuses == [200] * 12
    order = await order_of(shop, 6007)
    assert (order["status"], order["refunded_minor"]) == ("partially_refunded", 6000)


# --- a second event that contradicts a known order ------------------------------------------------------------


async def test_a_shopify_order_body_with_another_currency_or_customer_is_refused(shop: ShopCtx) -> None:
    await paid_order(shop, 7001, "25.00")
    before = await count(shop.app, InboundEvent)
    euro = shopify.order(7001, "25.00", currency="EUR", financial_status="refunded")
    response = await deliver(shop.api, shop.slug, euro, "orders/updated")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "order_conflict")
    stranger = shopify.order(7001, "25.00", customer_id=999000111, financial_status="refunded")
    response = await deliver(shop.api, shop.slug, stranger, "orders/updated")
    assert (response.status_code, response.json()["error"]["code"]) == (409, "order_conflict")
    order = await order_of(shop, 7001)
    assert (order["status"], order["currency"], order["refunded_minor"]) == ("paid", "USD", 0)
    assert await count(shop.app, InboundEvent) == before
    assert await count(shop.app, Member) == 1


# --- attribution of buyers who only check out in Shopify --------------------------------------------------


async def test_invite_click_then_shopify_checkout_rewards_the_inviter(shop: ShopCtx) -> None:
    await create_campaign(shop.api)
    inviter = await create_member(shop.api)
    click_id, _ = await click(
        shop.api, shop.slug, inviter["referral_code"], "tiktok", show="shw_launch", host="hst_mia"
    )
    # The theme carried the click id from the landing URL into the cart; it arrives as a note attribute.
    body = shopify.order(
        8001,
        "59.90",
        customer_id=7390213,
        email="lan.nguyen@mail.example.com",
        landing_site="/collections/serums",
        note_attributes=[{"name": "gift_wrap", "value": "no"}, {"name": "_ll_click", "value": click_id}],
    )
    ok(await deliver(shop.api, shop.slug, body, "orders/paid"))
    assert (await balances(shop, inviter["id"]))["points"] == (500, 0)
    buyer = await member_by_customer(shop, 7390213)
    assert (await balances(shop, buyer.id))["credit:USD"] == (300, 0)
    referrals = ok(await shop.api.get("/v1/referrals", params={"member_id": inviter["id"]}))["items"]
    assert len(referrals) == 1
    referral = referrals[0]
    assert (referral["invitee_id"], referral["status"]) == (buyer.id, "converted")
    assert (referral["channel"], referral["show_id"], referral["host_id"]) == ("tiktok", "shw_launch", "hst_mia")
    # Shopify's later deliveries of the same order (any topic, new webhook ids) reward nobody again.
    ok(await deliver(shop.api, shop.slug, body, "orders/updated"))
    assert await count(shop.app, Reward) == 2


async def test_a_code_in_the_landing_site_attributes_a_new_customer(shop: ShopCtx) -> None:
    await create_campaign(shop.api)
    inviter = await create_member(shop.api)
    landing = f"/products/serum-30?utm_source=wa&ll_ref={inviter['referral_code']}&ll_ch=whatsapp"
    ok(await deliver(shop.api, shop.slug, shopify.order(8002, "30.00", landing_site=landing), "orders/paid"))
    referral = ok(await shop.api.get("/v1/referrals", params={"member_id": inviter["id"]}))["items"][0]
    assert (referral["channel"], referral["status"]) == ("whatsapp", "converted")


async def test_attribute_names_with_and_without_underscore_and_an_unknown_click(shop: ShopCtx) -> None:
    await create_campaign(shop.api)
    inviter = await create_member(shop.api)
    attributes = [
        {"name": "ll_click", "value": "clk_01JD0000000000000000000000"},  # edited by hand: unknown here
        {"name": "ll_ref", "value": inviter["referral_code"]},
        {"name": "_ll_ch", "value": "line"},
    ]
    ok(await deliver(shop.api, shop.slug, shopify.order(8003, "30.00", note_attributes=attributes), "orders/paid"))
    referral = ok(await shop.api.get("/v1/referrals", params={"member_id": inviter["id"]}))["items"][0]
    assert (referral["channel"], referral["status"]) == ("line", "converted")


async def test_unknown_attribution_never_blocks_the_order(shop: ShopCtx) -> None:
    await create_campaign(shop.api)
    attributes = [{"name": "_ll_click", "value": "clk_forged"}, {"name": "_ll_ref", "value": "NOSUCH9"}]
    body = shopify.order(8004, "30.00", note_attributes=attributes)
    assert ok(await deliver(shop.api, shop.slug, body, "orders/paid"))["status"] == "paid"
    assert await count(shop.app, Referral) == 0


async def test_an_existing_customer_is_not_attributed(shop: ShopCtx) -> None:
    await create_campaign(shop.api)
    inviter = await create_member(shop.api)
    known = await create_member(shop.api, external_id="207119551")  # a member before this order
    click_id, _ = await click(shop.api, shop.slug, inviter["referral_code"])
    attributes = [{"name": "_ll_click", "value": click_id}]
    ok(await deliver(shop.api, shop.slug, shopify.order(8005, "30.00", note_attributes=attributes), "orders/paid"))
    assert ok(await shop.api.get("/v1/referrals", params={"member_id": known["id"]}))["items"] == []
    assert (await balances(shop, inviter["id"])).get("points", (0, 0)) == (0, 0)
    # A buyer new to liveloop whom Shopify knows from earlier orders is an existing customer too.
    returning = shopify.order(8006, "30.00", customer_id=55501, orders_count=4, note_attributes=attributes)
    ok(await deliver(shop.api, shop.slug, returning, "orders/paid"))
    referral = ok(await shop.api.get("/v1/referrals", params={"member_id": inviter["id"]}))["items"][0]
    assert referral["status"] == "rejected"
    assert "existing_customer" in referral["reason_codes"]
    assert (await balances(shop, inviter["id"])).get("points", (0, 0)) == (0, 0)
