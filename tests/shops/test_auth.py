from __future__ import annotations

import asyncio
from typing import Any

from liveloop.kit.db import transaction
from liveloop.shops.service import create_api_key
from tests.conftest import ShopCtx, make_shop
from tests.factories import create_campaign, create_member, ok


async def test_requests_without_a_valid_key_are_refused(shop: ShopCtx) -> None:
    async with shop.client(key="") as anonymous:
        r = await anonymous.get("/v1/campaigns")
    assert (r.status_code, r.json()["error"]["code"]) == (401, "missing_api_key")
    async with shop.client(key="ll_000000000000_forged") as forged:
        r = await forged.get("/v1/campaigns")
    assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_api_key")


async def test_a_real_prefix_with_a_wrong_secret_is_refused(shop: ShopCtx) -> None:
    ll, hex_part, secret = shop.key.split("_", 2)  # ll_<lookup prefix>_<secret>
    prefix = f"{ll}_{hex_part}"
    for forged in (f"{prefix}_{'x' * len(secret)}", f"{prefix}_", f"{prefix}_{secret[:-1]}"):
        async with shop.client(key=forged) as client:
            r = await client.get("/v1/campaigns")
        assert (r.status_code, r.json()["error"]["code"]) == (401, "invalid_api_key"), forged
    async with shop.client() as genuine:
        assert (await genuine.get("/v1/campaigns")).status_code == 200


async def test_a_key_of_another_shop_sees_nothing_of_this_one(shop: ShopCtx, app: Any) -> None:
    other = await make_shop(app, slug="globex")
    member = await create_member(shop.api)
    campaign = await create_campaign(shop.api)
    for path in (
        f"/v1/members/{member['id']}",
        f"/v1/members/{member['id']}/rewards",
        f"/v1/members/{member['id']}/balances",
        f"/v1/campaigns/{campaign['id']}",
        f"/v1/members/{member['id']}/invite-links",
    ):
        r = await other.api.get(path)
        assert r.status_code == 404, path
    r = await other.api.post("/v1/ledger/credits", json={"member_id": member["id"], "asset": "points", "amount": 5})
    assert r.status_code == 404
    assert ok(await other.api.get("/v1/members"))["items"] == []
    assert ok(await other.api.get("/v1/campaigns"))["items"] == []
    await other.api.aclose()


async def test_scopes_limit_what_a_key_may_do(shop: ShopCtx) -> None:
    async with transaction(shop.app.state.sessions) as s:
        _, key = await create_api_key(s, shop.shop, name="reader", scopes=["members:read"])
    async with shop.client(key) as reader:
        assert (await reader.get("/v1/members")).status_code == 200
        r = await reader.post("/v1/members", json={"external_id": "x"})
        assert (r.status_code, r.json()["error"]["code"]) == (403, "missing_scope")
        assert "members:write" in r.json()["error"]["message"]


async def test_revoked_keys_stop_working(shop: ShopCtx) -> None:
    created = ok(await shop.api.post("/v1/api-keys", json={"name": "temp", "scopes": ["campaigns:read"]}), 201)
    async with shop.client(created["key"]) as temp:
        assert (await temp.get("/v1/campaigns")).status_code == 200
        ok(await shop.api.delete(f"/v1/api-keys/{created['id']}"))
        assert (await temp.get("/v1/campaigns")).status_code == 401
    listed = ok(await shop.api.get("/v1/api-keys"))["items"]
    assert all("key" not in k for k in listed)  # only ever shown once


async def test_unknown_scope_is_a_clear_error(shop: ShopCtx) -> None:
    r = await shop.api.post("/v1/api-keys", json={"name": "x", "scopes": ["everything"]})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_scopes")


async def test_idempotent_member_creation_under_concurrency(shop: ShopCtx) -> None:
    body = {"external_id": "same-person", "email": "same@example.com"}

    async def create() -> tuple[int, str]:
        async with shop.client() as api:
            r = await api.post("/v1/members", json=body, headers={"Idempotency-Key": "create-1"})
            return r.status_code, r.json().get("id", r.json().get("error", {}).get("code"))

    results = await asyncio.gather(*(create() for _ in range(10)))
    ids = {rid for status, rid in results if status == 201}
    assert len(ids) == 1, results
    assert all(status in (201, 409) for status, _ in results), results
    assert len(ok(await shop.api.get("/v1/members"))["items"]) == 1


async def test_malformed_body_is_422_with_fields(shop: ShopCtx) -> None:
    r = await shop.api.post("/v1/campaigns", json={"name": "", "inviter_reward": {"type": "points", "amount": -1}})
    assert r.status_code == 422
    body = r.json()["error"]
    assert body["code"] == "invalid_request"
    assert any(p["field"] == "name" for p in body["details"]["problems"])
    assert ok(await shop.api.get("/v1/campaigns"))["items"] == []
