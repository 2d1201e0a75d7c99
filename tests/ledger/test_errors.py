"""The ledger: what an operator is told about a credit, release or reversal that cannot be made."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from liveloop.kit.time import utc_now
from tests.conftest import ShopCtx
from tests.factories import create_member, ok


def error(response: object) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]  # type: ignore[attr-defined]


async def credit(shop: ShopCtx, member: dict[str, Any], amount: int, **extra: Any) -> dict[str, Any]:
    body = {"member_id": member["id"], "asset": "points", "amount": amount, **extra}
    return ok(await shop.api.post("/v1/ledger/credits", json=body), 201)


async def available(shop: ShopCtx, member: dict[str, Any]) -> int:
    body = ok(await shop.api.get(f"/v1/members/{member['id']}/balances"))
    return next((b["available"] for b in body["balances"] if b["asset"] == "points"), 0)


async def test_credits_expire_in_the_future_and_only_holds_are_released(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    past = (utc_now() - timedelta(days=1)).isoformat()
    r = await shop.api.post(
        "/v1/ledger/credits", json={"member_id": member["id"], "asset": "points", "amount": 5, "expires_at": past}
    )
    assert error(r) == (422, "invalid_expiry")
    granted = await credit(shop, member, 50)
    assert error(await shop.api.post(f"/v1/ledger/transactions/{granted['id']}/release")) == (422, "not_pending")
    held = await credit(shop, member, 20, hold=True)
    ok(await shop.api.post(f"/v1/ledger/transactions/{held['id']}/reverse", json={"reason": "order cancelled"}))
    assert error(await shop.api.post(f"/v1/ledger/transactions/{held['id']}/release")) == (409, "already_reversed")
    assert await available(shop, member) == 50


async def test_reversals_take_back_once_and_only_what_is_left(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    r = await shop.api.post("/v1/ledger/transactions/txn_nope/reverse", json={"reason": "typo"})
    assert error(r) == (404, "transaction_not_found")
    granted = await credit(shop, member, 30)
    reversal = ok(await shop.api.post(f"/v1/ledger/transactions/{granted['id']}/reverse", json={"reason": "fraud"}))
    r = await shop.api.post(f"/v1/ledger/transactions/{reversal['id']}/reverse", json={"reason": "undo"})
    assert error(r) == (422, "not_reversible")

    spent = await credit(shop, member, 40)
    ok(
        await shop.api.post("/v1/ledger/debits", json={"member_id": member["id"], "asset": "points", "amount": 40}),
        201,
    )
    r = await shop.api.post(
        f"/v1/ledger/transactions/{spent['id']}/reverse", json={"reason": "refund", "allow_partial": True}
    )
    assert error(r) == (422, "nothing_to_reverse")
    assert r.json()["error"]["details"]["shortfall"] == 40
    assert await available(shop, member) == 0
