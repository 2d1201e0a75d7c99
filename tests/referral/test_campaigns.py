from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from liveloop.kit.db import transaction
from liveloop.kit.time import utc_now, week_start
from liveloop.models import VipGroupWeek
from tests.conftest import ShopCtx
from tests.factories import create_campaign, create_group, create_member, invite, ok


async def test_status_transitions(shop: ShopCtx) -> None:
    campaign = await create_campaign(shop.api, status="draft")
    path = f"/v1/campaigns/{campaign['id']}"
    assert ok(await shop.api.patch(path, json={"status": "active"}))["status"] == "active"
    assert ok(await shop.api.patch(path, json={"status": "paused"}))["status"] == "paused"
    assert ok(await shop.api.patch(path, json={"status": "ended"}))["status"] == "ended"
    r = await shop.api.patch(path, json={"status": "active"})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "invalid_transition")


async def test_only_running_campaigns_attribute(shop: ShopCtx) -> None:
    inviter = await create_member(shop.api)
    draft = await create_campaign(shop.api, status="draft")
    assert (await invite(shop.api, shop.slug, inviter)).get("referral") is None
    ok(await shop.api.patch(f"/v1/campaigns/{draft['id']}", json={"status": "active"}))
    ok(await shop.api.patch(f"/v1/campaigns/{draft['id']}", json={"status": "paused"}))
    assert (await invite(shop.api, shop.slug, inviter)).get("referral") is None
    later = await create_campaign(shop.api, starts_at=(utc_now() + timedelta(days=1)).isoformat())
    assert (await invite(shop.api, shop.slug, inviter)).get("referral") is None
    ok(await shop.api.patch(f"/v1/campaigns/{later['id']}", json={"status": "ended"}))
    over = await create_campaign(
        shop.api,
        starts_at=(utc_now() - timedelta(days=9)).isoformat(),
        ends_at=(utc_now() - timedelta(days=1)).isoformat(),
    )
    assert over["status"] == "active"
    assert (await invite(shop.api, shop.slug, inviter)).get("referral") is None
    running = await create_campaign(shop.api, starts_at=(utc_now() - timedelta(days=1)).isoformat())
    attributed = await invite(shop.api, shop.slug, inviter)
    assert attributed["referral"]["status"] == "pending"
    refs = ok(await shop.api.get("/v1/referrals"))["items"]
    assert [r["campaign_id"] for r in refs] == [running["id"]]


async def test_target_markets(shop: ShopCtx) -> None:
    await create_campaign(shop.api, markets=["eu"])
    inviter = await create_member(shop.api, market="eu")
    assert (await invite(shop.api, shop.slug, inviter, market="sea")).get("referral") is None
    assert (await invite(shop.api, shop.slug, inviter, market="eu"))["referral"]["status"] == "pending"
    r = await shop.api.post(
        "/v1/campaigns", json={"name": "x", "markets": ["mars"], "inviter_reward": {"type": "points", "amount": 1}}
    )
    assert (r.status_code, r.json()["error"]["code"]) == (422, "unknown_market")


async def test_a_campaign_needs_a_reward_and_sane_budgets(shop: ShopCtx) -> None:
    r = await shop.api.post("/v1/campaigns", json={"name": "empty"})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "no_rewards")
    r = await shop.api.post(
        "/v1/campaigns", json={"name": "x", "budgets": {"DOGE": 5}, "inviter_reward": {"type": "points", "amount": 1}}
    )
    assert r.status_code == 422
    campaign = await create_campaign(shop.api, budgets={"USD": 1000})
    r = await shop.api.patch(f"/v1/campaigns/{campaign['id']}", json={"budgets": {"USD": 5000, "points": 100}})
    assert sorted((b["unit"], b["limit"]) for b in ok(r)["budgets"]) == [("USD", 5000), ("points", 100)]


async def test_reward_currencies_are_iso_codes(shop: ShopCtx) -> None:
    for reward in (
        {"type": "credit", "amount": 300, "currency": "XYZ"},
        {"type": "credit", "amount": 300, "currency": "usd"},
        {"type": "gift", "sku": "TOTE", "value_minor": 900, "currency": "euro"},
    ):
        r = await shop.api.post("/v1/campaigns", json={"name": "x", "inviter_reward": reward})
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_request"), reward
    gift = {"type": "gift", "sku": "TOTE", "value_minor": 900, "currency": "EUR"}
    assert (await create_campaign(shop.api, inviter_reward=gift))["inviter_reward"]["currency"] == "EUR"


async def test_reaching_last_weeks_target_lifts_this_weeks_perk_level(shop: ShopCtx) -> None:
    group = await create_group(
        shop.api,
        name="Club",
        weekly_target=1,
        base_perk_level=2,
        extra_offer={"type": "perk", "label": "Members' price"},
    )
    assert group["perk_level"] == 2
    from tests.factories import click

    click_id, device = await click(shop.api, shop.slug, group["code"])
    await create_member(shop.api, device_id=device, referral={"click_id": click_id})
    # Move this week's record (target reached) back one week: it now lifts the current week.
    this_week = week_start(utc_now(), shop.shop.reporting_timezone)
    async with transaction(shop.app.state.sessions) as s:
        await s.execute(update(VipGroupWeek).values(week_start=this_week - timedelta(days=7)))
    lifted = ok(await shop.api.get(f"/v1/groups/{group['id']}"))
    assert lifted["perk_level"] == 3
    assert lifted["invites_this_week"] == 0
    members = ok(await shop.api.get(f"/v1/members/{group['owner_id']}/groups"))["items"]
    assert members[0]["perk_level"] == 3


async def test_a_milestone_coupon_of_no_batch_of_this_shop_is_refused_by_patch_as_by_post(shop: ShopCtx) -> None:
    campaign = await create_campaign(shop.api)
    path = f"/v1/campaigns/{campaign['id']}"
    milestone = {"threshold": 3, "reward": {"type": "coupon", "batch_id": "cpb_nosuchbatch"}}
    refused = await shop.api.patch(path, json={"milestones": [milestone], "name": "Renamed"})
    assert (refused.status_code, refused.json()["error"]["code"]) == (404, "coupon_batch_not_found")
    unchanged = ok(await shop.api.get(path))
    assert (unchanged["name"], unchanged["milestones"]) == (campaign["name"], campaign["milestones"])
    # Sign-ups through the campaign still work (a stored unknown batch made every one of them answer 404).
    inviter = await create_member(shop.api)
    assert (await invite(shop.api, shop.slug, inviter))["id"]
