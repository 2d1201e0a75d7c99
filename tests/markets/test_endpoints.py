"""The markets' endpoints, and the one rule for a market named by its code: in a path, an unknown code is
404 ``market_not_found``; in a body, 422 ``unknown_market``."""

from __future__ import annotations

from typing import Any

import pytest

from liveloop.markets.presets import PRESETS
from tests.conftest import ShopCtx, make_shop
from tests.factories import create_member, ok


def error(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]


async def test_market_edits_are_per_shop(shop: ShopCtx, app: Any) -> None:
    other = await make_shop(app, slug="initech")
    ok(await shop.api.patch("/v1/markets/sea", json={"currency": "THB", "points_expiry_months": 6}))
    mine = {m["code"]: m for m in ok(await shop.api.get("/v1/markets"))}
    theirs = {m["code"]: m for m in ok(await other.api.get("/v1/markets"))}
    assert set(mine) == {"sea", "na", "eu", "me"}
    assert (mine["sea"]["currency"], mine["sea"]["points_expiry_months"]) == ("THB", 6)
    assert theirs["sea"]["currency"] == "USD"
    r = await shop.api.patch("/v1/markets/sea", json={"timezone": "Mars/Olympus"})
    assert r.json()["error"]["code"] == "invalid_timezone"
    await other.api.aclose()


async def test_markets_answer_with_their_documented_fields(shop: ShopCtx) -> None:
    listed = ok(await shop.api.get("/v1/markets"))
    assert [m["code"] for m in listed] == sorted(PRESETS)
    fields = {
        "code",
        "name",
        "currency",
        "timezone",
        "locales",
        "consent_regime",
        "points_expiry_months",
        "return_window_days",
        "reward_presets",
    }
    assert all(set(m) == fields for m in listed)
    assert {m["code"]: m["consent_regime"] for m in listed} == {"eu": "gdpr", "me": "none", "na": "ccpa", "sea": "none"}
    changed = ok(await shop.api.patch("/v1/markets/me", json={"consent_regime": "gdpr", "name": None}))
    assert (changed["consent_regime"], changed["name"]) == ("gdpr", "Middle East")  # null leaves a field as it is
    bad = await shop.api.patch("/v1/markets/me", json={"consent_regime": "lgpd"})
    assert error(bad) == (422, "invalid_request")


@pytest.mark.parametrize("code", ["moon", "SEA", "xx"])
async def test_a_market_named_in_the_path_that_the_shop_lacks_is_not_found(shop: ShopCtx, code: str) -> None:
    r = await shop.api.patch(f"/v1/markets/{code}", json={"currency": "USD"})
    assert error(r) == (404, "market_not_found")
    assert code in r.json()["error"]["message"]


async def test_a_market_named_in_a_body_that_the_shop_lacks_is_unprocessable(shop: ShopCtx) -> None:
    r = await shop.api.post("/v1/members", json={"external_id": "cust-moon", "market": "moon"})
    assert error(r) == (422, "unknown_market")
    member = await create_member(shop.api, market="sea")
    r = await shop.api.patch(f"/v1/members/{member['id']}", json={"market": "moon"})
    assert error(r) == (422, "unknown_market")
    assert ok(await shop.api.get(f"/v1/members/{member['id']}"))["market"] == "sea"  # nothing changed
    r = await shop.api.post("/v1/campaigns", json={"name": "Moon", "markets": ["moon"]})
    assert error(r) == (422, "unknown_market")
