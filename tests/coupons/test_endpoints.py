from __future__ import annotations

import asyncio
import re
from datetime import timedelta

from liveloop.kit.ids import UNAMBIGUOUS
from liveloop.kit.time import utc_now
from tests.conftest import ShopCtx
from tests.factories import all_items, create_member, ok


async def make_batch(shop: ShopCtx, **overrides: object) -> dict:
    body = {"name": "Ten off", "kind": "fixed", "amount_minor": 1000, "currency": "USD", "count": 5, **overrides}
    return ok(await shop.api.post("/v1/coupon-batches", json=body), 201)


async def test_bulk_generation_uses_the_pattern_and_an_unambiguous_alphabet(shop: ShopCtx) -> None:
    batch = await make_batch(shop, count=500, pattern="BF-####-####")
    codes = [c["code"] for c in await all_items(shop.api, "/v1/coupons", batch_id=batch["id"], limit=200)]
    assert len(codes) == len(set(codes)) == 500
    allowed = re.compile(f"^BF-[{UNAMBIGUOUS}]{{4}}-[{UNAMBIGUOUS}]{{4}}$")
    assert all(allowed.match(c) for c in codes)
    assert not set("01ILOU") & set("".join(c[3:] for c in codes))
    assert ok(await shop.api.get(f"/v1/coupon-batches/{batch['id']}"))["issued"] == 500


async def test_a_pattern_too_small_for_the_count_is_refused(shop: ShopCtx) -> None:
    r = await shop.api.post(
        "/v1/coupon-batches",
        json={"name": "x", "kind": "fixed", "amount_minor": 1, "currency": "USD", "count": 10_000, "pattern": "A-####"},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (422, "pattern_too_small")


async def test_twenty_racing_redemptions_of_a_single_use_coupon_succeed_once(shop: ShopCtx) -> None:
    batch = await make_batch(shop, count=1)
    code = batch["coupons"][0]["code"]
    members = [await create_member(shop.api) for _ in range(20)]

    async def redeem(i: int) -> int:
        async with shop.client() as api:
            r = await api.post(
                f"/v1/coupons/{code}/redeem",
                json={"member_id": members[i]["id"], "order_total_minor": 5000, "currency": "USD"},
                headers={"Idempotency-Key": f"race-{i}"},
            )
            return r.status_code

    statuses = await asyncio.gather(*(redeem(i) for i in range(20)))
    assert statuses.count(201) == 1
    assert all(s == 422 for s in statuses if s != 201)
    coupon = ok(await shop.api.get(f"/v1/coupons/{code}"))
    assert coupon["uses"] == 1


async def test_redeem_is_idempotent_and_rollback_gives_the_use_back(shop: ShopCtx) -> None:
    batch = await make_batch(shop, count=1, kind="percent", percent_bp=1500, amount_minor=None)
    code = batch["coupons"][0]["code"]
    member = await create_member(shop.api)
    body = {"member_id": member["id"], "order_total_minor": 3333, "currency": "USD", "order_ref": "o-1"}
    first = ok(await shop.api.post(f"/v1/coupons/{code}/redeem", json=body), 201)
    again = ok(await shop.api.post(f"/v1/coupons/{code}/redeem", json=body), 201)
    assert first["id"] == again["id"]
    assert first["discount_minor"] == 500  # 15 % of 33.33, rounded half up, integers only
    rolled = ok(await shop.api.post(f"/v1/redemptions/{first['id']}/rollback"))
    assert rolled["status"] == "rolled_back"
    ok(await shop.api.post(f"/v1/redemptions/{first['id']}/rollback"))
    assert ok(await shop.api.get(f"/v1/coupons/{code}"))["uses"] == 0
    again = await shop.api.post(f"/v1/coupons/{code}/redeem", json={**body, "order_ref": "o-2"})
    assert again.status_code == 201


async def test_validation_reasons(shop: ShopCtx) -> None:
    alice = await create_member(shop.api)
    bob = await create_member(shop.api)
    batch = await make_batch(
        shop,
        count=0,
        member_ids=[alice["id"]],
        min_spend_minor=2000,
        ends_at=(utc_now() + timedelta(days=1)).isoformat(),
    )
    code = batch["coupons"][0]["code"]

    async def check(member: dict, total: int, currency: str = "USD") -> str:
        r = await shop.api.post(
            f"/v1/coupons/{code}/validate",
            json={"member_id": member["id"], "order_total_minor": total, "currency": currency},
        )
        return "ok" if r.status_code == 200 else r.json()["error"]["code"]

    assert await check(bob, 5000) == "coupon_bound_to_other"
    assert await check(alice, 1000) == "min_spend_not_met"
    assert await check(alice, 5000, "EUR") == "currency_mismatch"
    assert await check(alice, 5000) == "ok"
    r = await shop.api.post(
        "/v1/coupons/NOPE-NOPE/validate", json={"member_id": alice["id"], "order_total_minor": 1, "currency": "USD"}
    )
    assert (r.status_code, r.json()["error"]["code"]) == (404, "coupon_not_found")
    expired = await make_batch(
        shop,
        count=1,
        starts_at=(utc_now() - timedelta(days=3)).isoformat(),
        ends_at=(utc_now() - timedelta(days=1)).isoformat(),
    )
    r = await shop.api.post(
        f"/v1/coupons/{expired['coupons'][0]['code']}/validate",
        json={"member_id": alice["id"], "order_total_minor": 5000, "currency": "USD"},
    )
    assert r.json()["error"]["code"] == "coupon_expired"


async def test_per_member_limit_across_codes_of_one_batch(shop: ShopCtx) -> None:
    batch = await make_batch(shop, count=2, max_uses_per_member=1)
    member = await create_member(shop.api)
    first, second = (c["code"] for c in batch["coupons"])
    body = {"member_id": member["id"], "order_total_minor": 5000, "currency": "USD"}
    ok(await shop.api.post(f"/v1/coupons/{first}/redeem", json={**body, "order_ref": "a"}), 201)
    r = await shop.api.post(f"/v1/coupons/{second}/redeem", json={**body, "order_ref": "b"})
    assert r.json()["error"]["code"] == "member_limit_reached"


async def test_stacking_rules(shop: ShopCtx) -> None:
    solo = await make_batch(shop, count=1, stackable=False)
    stack = await make_batch(shop, count=1, stackable=True)
    member = await create_member(shop.api)
    body = {"member_id": member["id"], "order_total_minor": 5000, "currency": "USD", "order_ref": "cart-1"}
    ok(await shop.api.post(f"/v1/coupons/{solo['coupons'][0]['code']}/redeem", json=body), 201)
    r = await shop.api.post(f"/v1/coupons/{stack['coupons'][0]['code']}/redeem", json=body)
    assert r.json()["error"]["code"] == "coupon_not_stackable"


async def test_redeem_without_any_idempotency_handle_is_refused(shop: ShopCtx) -> None:
    batch = await make_batch(shop, count=1)
    member = await create_member(shop.api)
    r = await shop.api.post(
        f"/v1/coupons/{batch['coupons'][0]['code']}/redeem",
        json={"member_id": member["id"], "order_total_minor": 5000, "currency": "USD"},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (422, "idempotency_key_required")


async def _redeem_all(shop: ShopCtx, member: dict, codes: list[str], order_ref: str) -> list[tuple[int, dict]]:
    """Redeem every code on one order at the same time, each from its own client."""

    async def one(code: str) -> tuple[int, dict]:
        async with shop.client() as api:
            r = await api.post(
                f"/v1/coupons/{code}/redeem",
                json={"member_id": member["id"], "order_total_minor": 5000, "currency": "USD", "order_ref": order_ref},
            )
            return r.status_code, r.json()

    return list(await asyncio.gather(*(one(c) for c in codes)))


async def test_twenty_non_stackable_coupons_racing_on_one_order_leave_exactly_one(shop: ShopCtx) -> None:
    batch = await make_batch(shop, count=20, stackable=False, max_uses_per_member=20)
    codes = [c["code"] for c in batch["coupons"]]
    member = await create_member(shop.api)
    results = await _redeem_all(shop, member, codes, "cart-race")
    assert [status for status, _ in results].count(201) == 1
    assert {(status, body["error"]["code"]) for status, body in results if status != 201} == {
        (409, "coupon_not_stackable")
    }
    uses = [ok(await shop.api.get(f"/v1/coupons/{code}"))["uses"] for code in codes]
    assert sorted(uses) == [0] * 19 + [1]
    # Once that redemption is rolled back, the order takes another non-stackable coupon (once).
    [winner] = [body for status, body in results if status == 201]
    ok(await shop.api.post(f"/v1/redemptions/{winner['id']}/rollback"))
    again = await _redeem_all(shop, member, [c for c, u in zip(codes, uses, strict=True) if not u][:5], "cart-race")
    assert [status for status, _ in again].count(201) == 1


async def test_stackable_and_non_stackable_racing_on_one_order_never_mix(shop: ShopCtx) -> None:
    solo = await make_batch(shop, count=1, stackable=False)
    stack = await make_batch(shop, count=10, stackable=True, max_uses_per_member=10)
    member = await create_member(shop.api)
    codes = [solo["coupons"][0]["code"], *(c["code"] for c in stack["coupons"])]
    results = dict(zip(codes, await _redeem_all(shop, member, codes, "cart-mixed"), strict=True))
    won = {code for code, (status, _) in results.items() if status == 201}
    assert won in ({codes[0]}, set(codes[1:])), won
    assert {body["error"]["code"] for status, body in results.values() if status != 201} <= {"coupon_not_stackable"}


async def test_a_coupon_applies_only_to_orders_in_its_currency_unless_currency_free(shop: ShopCtx) -> None:
    member = await create_member(shop.api)

    async def check(batch: dict, currency: str) -> str:
        r = await shop.api.post(
            f"/v1/coupons/{batch['coupons'][0]['code']}/validate",
            json={"member_id": member["id"], "order_total_minor": 5000, "currency": currency},
        )
        return "ok" if r.status_code == 200 else f"{r.status_code} {r.json()['error']['code']}"

    percent = {"kind": "percent", "percent_bp": 1000, "amount_minor": None, "currency": None, "count": 1}
    thb = await make_batch(shop, **{**percent, "currency": "THB"})
    anywhere = await make_batch(shop, **{**percent, "currency_free": True})
    gift = await make_batch(shop, kind="gift", gift_sku="TOTE", amount_minor=None, currency="EUR", count=1)
    fixed = await make_batch(shop, count=1)
    assert (await check(thb, "THB"), await check(thb, "USD")) == ("ok", "422 currency_mismatch")
    assert (await check(anywhere, "THB"), await check(anywhere, "JPY")) == ("ok", "ok")
    assert (await check(gift, "EUR"), await check(gift, "USD")) == ("ok", "422 currency_mismatch")
    assert (await check(fixed, "USD"), await check(fixed, "SGD")) == ("ok", "422 currency_mismatch")
    assert anywhere["currency_free"]
    assert not thb["currency_free"]


async def test_coupon_currencies_are_iso_codes_and_only_percent_coupons_go_without(shop: ShopCtx) -> None:
    async def create(**fields: object) -> tuple[int, str]:
        body = {"name": "x", "count": 1, **fields}
        r = await shop.api.post("/v1/coupon-batches", json=body)
        return r.status_code, r.json()["error"]["code"] if r.status_code >= 400 else ""

    percent = {"kind": "percent", "percent_bp": 500}
    assert await create(**percent) == (422, "invalid_coupon")  # neither a currency nor currency_free
    assert await create(**percent, currency_free=True, currency="USD") == (422, "invalid_coupon")
    assert await create(**percent, currency_free=True, min_spend_minor=1000) == (422, "invalid_coupon")
    assert await create(kind="fixed", amount_minor=100, currency="USD", currency_free=True) == (422, "invalid_coupon")
    assert await create(kind="gift", gift_sku="TOTE", min_spend_minor=1000) == (422, "invalid_coupon")
    for bad in ("usd", "XYZ", "US", "DOLLARS"):
        assert await create(kind="fixed", amount_minor=100, currency=bad) == (422, "invalid_request"), bad
    assert await create(**percent, currency_free=True) == (201, "")
    assert await create(kind="gift", gift_sku="TOTE") == (201, "")  # a free gift, no spend: valid anywhere
    batch = await make_batch(shop, count=1)
    member = await create_member(shop.api)
    r = await shop.api.post(
        f"/v1/coupons/{batch['coupons'][0]['code']}/validate",
        json={"member_id": member["id"], "order_total_minor": 5000, "currency": "usd"},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_request")


async def test_a_redemption_retried_while_the_first_is_under_way_answers_the_first(shop: ShopCtx) -> None:
    batch = await make_batch(shop, count=1, stackable=False)
    member = await create_member(shop.api)
    code = batch["coupons"][0]["code"]
    results = await _redeem_all(shop, member, [code] * 5, "cart-retry")  # the same request, five times at once
    assert {status for status, _ in results} == {201}
    assert len({body["id"] for _, body in results}) == 1
    assert ok(await shop.api.get(f"/v1/coupons/{code}"))["uses"] == 1
