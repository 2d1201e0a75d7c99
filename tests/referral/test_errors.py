"""Referral: what an operator is told about campaign changes, attributions and draws that cannot be made."""

from __future__ import annotations

import asyncio

from tests.conftest import ShopCtx, is_postgres
from tests.factories import create_campaign, create_member, invite, ok, send_order


def error(response: object) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["code"]  # type: ignore[attr-defined]


async def test_campaign_changes_keep_milestones_distinct_and_budgets_above_what_is_spent(shop: ShopCtx) -> None:
    campaign = await create_campaign(shop.api, budgets={"USD": 10_000})
    inviter = await create_member(shop.api)
    invitee = await invite(shop.api, shop.slug, inviter)
    ok(await send_order(shop.api, shop.slug, shop.secret, "paid", "b-1", invitee["external_id"], 5000))
    url = f"/v1/campaigns/{campaign['id']}"
    r = await shop.api.patch(url, json={"budgets": {"USD": 100}})
    assert error(r) == (422, "budget_too_low")
    assert "300" in r.json()["error"]["message"]  # what is spent: the invitee's USD 3.00
    gift = {"type": "points", "amount": 100}
    r = await shop.api.patch(
        url, json={"milestones": [{"threshold": 3, "reward": gift}, {"threshold": 3, "reward": gift}]}
    )
    assert error(r) == (422, "invalid_milestones")
    after = ok(await shop.api.get(url))
    assert after["budgets"] == [{"unit": "USD", "limit": 10_000, "spent": 300}]
    assert after["milestones"] == []


async def test_unknown_clicks_groups_and_reviews(shop: ShopCtx) -> None:
    await create_campaign(shop.api, conversion_event="signup")
    r = await shop.api.post(
        "/v1/members", json={"external_id": "friend", "email": "friend@example.com", "referral": {"click_id": "clk_x"}}
    )
    assert error(r) == (422, "unknown_click")
    assert error(await shop.api.get("/v1/groups/grp_nope")) == (404, "group_not_found")
    r = await shop.api.post("/v1/reviews/rev_nope/approve", json={"note": "looks fine"})
    assert error(r) == (404, "review_not_found")


async def test_a_draw_run_twice_at_once_is_run_once(shop: ShopCtx, database_url: str) -> None:
    campaign = await create_campaign(shop.api, lottery_enabled=True)
    inviter = await create_member(shop.api)
    invitee = await invite(shop.api, shop.slug, inviter)
    for n in range(3):
        ok(await send_order(shop.api, shop.slug, shop.secret, "paid", f"d-{n}", invitee["external_id"], 5000))
    prize = {"type": "points", "amount": 100}

    async def run(draw_id: str) -> tuple[int, dict]:
        async with shop.client() as api:
            r = await api.post(f"/v1/draws/{draw_id}/run")
            return r.status_code, r.json()

    for _ in range(5):  # racing requests overlap almost always; try again in the rare run where they did not
        draw = ok(await shop.api.post(f"/v1/campaigns/{campaign['id']}/draws", json={"prize_count": 1, "prize": prize}))
        results = await asyncio.gather(*(run(draw["id"]) for _ in range(6)))
        done = [body for status, body in results if status == 200]
        refused = [body["error"]["code"] for status, body in results if status == 409]
        assert len(done) + len(refused) == 6
        assert set(refused) <= {"draw_in_progress"}
        assert len({str(body["winners"]) for body in done}) <= 1  # one draw, one set of winners
        final = ok(await shop.api.post(f"/v1/draws/{draw['id']}/run"))
        assert all(body["winners"] == final["winners"] for body in done)
        if refused or not is_postgres(database_url):
            break  # SQLite runs one write at a time, so its requests never overlap
    if is_postgres(database_url):
        assert refused == ["draw_in_progress"] * len(refused)
        assert refused
