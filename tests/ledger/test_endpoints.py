from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from liveloop.kit.db import transaction
from liveloop.kit.time import utc_now
from liveloop.ledger import service as ledger
from liveloop.ledger.verify import verify
from liveloop.models import LedgerAccount
from tests.conftest import ShopCtx
from tests.factories import create_member, ok


async def _grant_points(shop: ShopCtx, member_id: str, amount: int, expires_in: timedelta) -> str:
    async with transaction(shop.app.state.sessions) as s:
        txn = await ledger.grant(s, shop.shop.id, member_id, ledger.POINTS, amount, expires_at=utc_now() + expires_in)
        return txn.id


async def _balance(shop: ShopCtx, member_id: str, asset: str = ledger.POINTS, bucket: str = ledger.AVAILABLE) -> int:
    async with transaction(shop.app.state.sessions) as s:
        return await ledger.balance(s, shop.shop.id, member_id, asset, bucket)


async def test_spending_takes_the_oldest_expiring_lot_first(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    await _grant_points(shop, member["id"], 100, timedelta(days=300))
    await _grant_points(shop, member["id"], 50, timedelta(days=10))
    ok(await shop.api.post("/v1/ledger/debits", json={"member_id": member["id"], "asset": "points", "amount": 70}), 201)
    lots = ok(await shop.api.get(f"/v1/members/{member['id']}/balances"))["point_lots"]
    assert [lot["remaining"] for lot in lots] == [80]  # the 50 expiring soonest went first, then 20 of the 100
    assert await _balance(shop, member["id"]) == 80


async def test_overspending_is_refused_and_changes_nothing(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    await _grant_points(shop, member["id"], 30, timedelta(days=30))
    r = await shop.api.post("/v1/ledger/debits", json={"member_id": member["id"], "asset": "points", "amount": 31})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "insufficient_balance"
    assert await _balance(shop, member["id"]) == 30
    async with transaction(shop.app.state.sessions) as s:
        assert (await verify(s)).ok


async def test_points_expire_exactly_at_their_expiry(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    await _grant_points(shop, member["id"], 40, timedelta(days=365))
    async with transaction(shop.app.state.sessions) as s:
        lot = (await ledger.live_lots(s, shop.shop.id, member["id"]))[0]
        expires = lot.expires_at
        assert await ledger.expire_due_lots(s, now=expires - timedelta(microseconds=1)) == 0
    assert await _balance(shop, member["id"]) == 40
    async with transaction(shop.app.state.sessions) as s:
        assert await ledger.expire_due_lots(s, now=expires) == 1
        assert await ledger.expire_due_lots(s, now=expires) == 0  # nothing twice
    assert await _balance(shop, member["id"]) == 0
    entries = ok(await shop.api.get(f"/v1/members/{member['id']}/ledger"))["items"]
    assert [e["kind"] for e in entries] == ["expire", "earn"]  # expired by an entry, not deleted
    async with transaction(shop.app.state.sessions) as s:
        assert (await verify(s)).ok


async def test_expiry_twelve_months_from_the_market_default(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    ok(
        await shop.api.post("/v1/ledger/credits", json={"member_id": member["id"], "asset": "points", "amount": 10}),
        201,
    )
    lot = ok(await shop.api.get(f"/v1/members/{member['id']}/balances"))["point_lots"][0]
    from datetime import datetime

    expires = datetime.fromisoformat(lot["expires_at"])
    assert timedelta(days=364) < expires - utc_now() < timedelta(days=367)


async def test_hold_release_and_reverse(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    held = ok(
        await shop.api.post(
            "/v1/ledger/credits", json={"member_id": member["id"], "asset": "credit:USD", "amount": 500, "hold": True}
        ),
        201,
    )
    assert await _balance(shop, member["id"], "credit:USD", "pending") == 500
    assert await _balance(shop, member["id"], "credit:USD") == 0
    ok(await shop.api.post(f"/v1/ledger/transactions/{held['id']}/release"))
    ok(await shop.api.post(f"/v1/ledger/transactions/{held['id']}/release"))  # twice: one effect
    assert await _balance(shop, member["id"], "credit:USD") == 500
    assert await _balance(shop, member["id"], "credit:USD", "pending") == 0
    rev = ok(await shop.api.post(f"/v1/ledger/transactions/{held['id']}/reverse", json={"reason": "fraud"}))
    again = ok(await shop.api.post(f"/v1/ledger/transactions/{held['id']}/reverse", json={"reason": "fraud"}))
    assert rev["id"] == again["id"]
    assert await _balance(shop, member["id"], "credit:USD") == 0
    async with transaction(shop.app.state.sessions) as s:
        assert (await verify(s)).ok


async def test_reversal_of_spent_points_takes_what_is_left(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    earned = await _grant_points(shop, member["id"], 100, timedelta(days=30))
    ok(await shop.api.post("/v1/ledger/debits", json={"member_id": member["id"], "asset": "points", "amount": 60}), 201)
    r = await shop.api.post(f"/v1/ledger/transactions/{earned}/reverse", json={"reason": "refund"})
    assert r.status_code == 409  # not without allow_partial
    rev = ok(
        await shop.api.post(
            f"/v1/ledger/transactions/{earned}/reverse", json={"reason": "refund", "allow_partial": True}
        )
    )
    assert rev["meta"]["recovered"] == 40
    assert rev["meta"]["shortfall"] == 60
    assert await _balance(shop, member["id"]) == 0
    async with transaction(shop.app.state.sessions) as s:
        assert (await verify(s)).ok


async def test_reversing_a_spend_restores_the_same_lots(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    await _grant_points(shop, member["id"], 10, timedelta(days=5))
    await _grant_points(shop, member["id"], 10, timedelta(days=50))
    spent = ok(
        await shop.api.post("/v1/ledger/debits", json={"member_id": member["id"], "asset": "points", "amount": 15}), 201
    )
    ok(await shop.api.post(f"/v1/ledger/transactions/{spent['id']}/reverse", json={"reason": "cancelled"}))
    lots = ok(await shop.api.get(f"/v1/members/{member['id']}/balances"))["point_lots"]
    assert [lot["remaining"] for lot in lots] == [10, 10]


async def test_credit_validation_errors(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    r = await shop.api.post("/v1/ledger/credits", json={"member_id": member["id"], "asset": "gold", "amount": 1})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_asset")
    for asset in ("credit:XYZ", "credit:usd", "credit:US", "credit:"):  # the ISO list of orders and coupons
        r = await shop.api.post("/v1/ledger/credits", json={"member_id": member["id"], "asset": asset, "amount": 1})
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_asset"), asset
    r = await shop.api.post("/v1/ledger/credits", json={"member_id": member["id"], "asset": "points", "amount": 0})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_request")
    async with transaction(shop.app.state.sessions) as s:
        assert (await s.execute(select(LedgerAccount))).first() is None


async def test_credit_with_idempotency_key_is_applied_once(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    body = {"member_id": member["id"], "asset": "points", "amount": 25}
    first = ok(await shop.api.post("/v1/ledger/credits", json=body, headers={"Idempotency-Key": "k1"}), 201)
    second = await shop.api.post("/v1/ledger/credits", json=body, headers={"Idempotency-Key": "k1"})
    assert second.status_code == 201
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.json()["id"] == first["id"]
    assert await _balance(shop, member["id"]) == 25
    other = await shop.api.post("/v1/ledger/credits", json={**body, "amount": 26}, headers={"Idempotency-Key": "k1"})
    assert (other.status_code, other.json()["error"]["code"]) == (422, "idempotency_key_reused")


async def test_store_credit_in_any_iso_currency(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    for currency in ("EUR", "JPY", "KWD"):
        body = {"member_id": member["id"], "asset": f"credit:{currency}", "amount": 100}
        ok(await shop.api.post("/v1/ledger/credits", json=body), 201)
        assert await _balance(shop, member["id"], f"credit:{currency}") == 100


async def test_balances_list_each_asset_and_the_live_point_lots(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    expires = utc_now() + timedelta(days=30)
    async with transaction(shop.app.state.sessions) as s:
        earned = await ledger.grant(s, shop.shop.id, member["id"], ledger.POINTS, 40, expires_at=expires)
        await ledger.grant(s, shop.shop.id, member["id"], "credit:EUR", 250, pending=True)
        lot = (await ledger.live_lots(s, shop.shop.id, member["id"]))[0]
    body = ok(await shop.api.get(f"/v1/members/{member['id']}/balances"))
    assert body == {
        "member_id": member["id"],
        "balances": [
            {"asset": "credit:EUR", "available": 0, "pending": 250},
            {"asset": "points", "available": 40, "pending": 0},
        ],
        # The lots' expiry is written with an explicit UTC offset, as this endpoint always has.
        "point_lots": [{"id": lot.id, "remaining": 40, "expires_at": expires.isoformat()}],
    }
    entries = ok(await shop.api.get(f"/v1/members/{member['id']}/ledger"))["items"]
    assert [(e["transaction_id"], e["kind"], e["bucket"], e["amount"]) for e in entries] == [
        (entries[0]["transaction_id"], "hold", "pending", 250),
        (earned.id, "earn", "available", 40),
    ]
