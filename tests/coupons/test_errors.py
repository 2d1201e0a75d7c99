"""Coupons: what an operator is told about a batch, a coupon or a redemption that does not qualify."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from liveloop.kit.time import utc_now
from tests.conftest import ShopCtx
from tests.factories import create_campaign, create_member, invite, ok, send_order


def error(response: object) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]  # type: ignore[attr-defined]


def rows(body: Any) -> list[Any]:
    """The rows of a list answer: the list itself, or the items of one page of it."""
    return list(body["items"] if isinstance(body, dict) else body)


async def batch(shop: ShopCtx, **overrides: Any) -> dict[str, Any]:
    body = {"name": "Five off", "kind": "fixed", "amount_minor": 500, "currency": "USD", "count": 1, **overrides}
    return ok(await shop.api.post("/v1/coupon-batches", json=body), 201)


async def test_batches_windows_and_redemptions_that_do_not_exist(shop: ShopCtx) -> None:
    start = utc_now() + timedelta(days=1)
    body = {"name": "Never", "kind": "fixed", "amount_minor": 500, "currency": "USD", "count": 1}
    r = await shop.api.post(
        "/v1/coupon-batches", json={**body, "starts_at": start.isoformat(), "ends_at": start.isoformat()}
    )
    assert error(r) == (422, "invalid_window")
    assert error(await shop.api.get("/v1/coupon-batches/cpb_nope")) == (404, "coupon_batch_not_found")
    assert error(await shop.api.post("/v1/redemptions/red_nope/rollback")) == (404, "redemption_not_found")

    early = await batch(shop, starts_at=start.isoformat())
    member = await create_member(shop.api)
    r = await shop.api.post(
        f"/v1/coupons/{early['coupons'][0]['code']}/validate",
        json={"member_id": member["id"], "order_total_minor": 5000, "currency": "USD"},
    )
    assert error(r) == (422, "coupon_not_started")


async def test_a_coupon_reward_clawed_back_by_a_refund_is_void(shop: ShopCtx) -> None:
    welcome = await batch(shop, count=0)
    await create_campaign(shop.api, invitee_reward={"type": "coupon", "batch_id": welcome["id"]})
    inviter = await create_member(shop.api)
    invitee = await invite(shop.api, shop.slug, inviter)
    ok(await send_order(shop.api, shop.slug, shop.secret, "paid", "w1", invitee["external_id"], 5000))
    (coupon,) = [
        c
        for c in rows(ok(await shop.api.get("/v1/coupons", params={"batch_id": welcome["id"]})))
        if c["member_id"] == invitee["id"]
    ]
    check = {"member_id": invitee["id"], "order_total_minor": 5000, "currency": "USD"}
    ok(await shop.api.post(f"/v1/coupons/{coupon['code']}/validate", json=check))
    ok(await send_order(shop.api, shop.slug, shop.secret, "refunded", "w1", invitee["external_id"], 5000))
    r = await shop.api.post(f"/v1/coupons/{coupon['code']}/validate", json=check)
    assert error(r) == (422, "coupon_void")
