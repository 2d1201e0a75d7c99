from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update

from liveloop.kit.db import transaction
from liveloop.kit.time import utc_now
from liveloop.models import InviteClick, Reward
from liveloop.referral.service import release_due_rewards
from tests.conftest import ShopCtx
from tests.factories import click, create_campaign, create_group, create_member, invite, new_device, ok, send_order


async def rewards_of(shop: ShopCtx, member: dict[str, Any]) -> list[dict[str, Any]]:
    return ok(await shop.api.get(f"/v1/members/{member['id']}/rewards"))["items"]


async def balances(shop: ShopCtx, member: dict[str, Any]) -> dict[str, tuple[int, int]]:
    body = ok(await shop.api.get(f"/v1/members/{member['id']}/balances"))
    return {b["asset"]: (b["available"], b["pending"]) for b in body["balances"]}


async def pay(shop: ShopCtx, member: dict[str, Any], order_id: str, total: int = 5000, **kw: Any) -> dict:
    return ok(await send_order(shop.api, shop.slug, shop.secret, "paid", order_id, member["external_id"], total, **kw))


async def test_invite_links_for_every_channel_in_the_members_language(shop: ShopCtx) -> None:
    member = await create_member(shop.api, locale="th-TH")
    body = ok(await shop.api.get(f"/v1/members/{member['id']}/invite-links", params={"show_id": "s1", "host_id": "h1"}))
    channels = {link["channel"]: link for link in body["links"]}
    assert set(channels) == {
        "whatsapp",
        "facebook",
        "instagram",
        "tiktok",
        "x",
        "telegram",
        "line",
        "email",
        "copy",
        "qr",
    }
    assert body["locale"] == "th"
    assert "ช้อป" in channels["whatsapp"]["message"]
    assert channels["whatsapp"]["share_url"].startswith("https://wa.me/?text=")
    assert f"/r/{shop.slug}/{member['referral_code']}?ch=whatsapp&show=s1&host=h1" in channels["whatsapp"]["url"]
    assert channels["instagram"]["share_url"] is None
    png = await shop.api.get(f"/v1/members/{member['id']}/invite-links/qr.png")
    assert png.status_code == 200
    assert png.content.startswith(b"\x89PNG")
    svg = await shop.api.get(f"/v1/members/{member['id']}/invite-links/qr.svg")
    assert b"<svg" in svg.content
    arabic = ok(await shop.api.get(f"/v1/members/{member['id']}/invite-links", params={"locale": "ar"}))
    assert "انضم" in arabic["links"][0]["message"]


async def test_click_records_channel_show_host_and_redirects_with_attribution(shop: ShopCtx) -> None:
    inviter = await create_member(shop.api)
    r = await shop.api.get(
        f"/r/{shop.slug}/{inviter['referral_code']}", params={"ch": "tiktok", "show": "s9", "host": "h2"}
    )
    assert r.status_code == 302
    location = r.headers["location"]
    assert location.startswith("https://shop.test/welcome?")
    assert "ll_ch=tiktok" in location
    assert "ll_show=s9" in location
    assert "ll_host=h2" in location
    assert r.cookies.get("ll_did")
    missing = await shop.api.get(f"/r/{shop.slug}/NOSUCH1")
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "unknown_invite_code")


async def test_conversion_rewards_both_sides_instantly(shop: ShopCtx) -> None:
    await create_campaign(shop.api)
    inviter = await create_member(shop.api)
    invitee = await invite(shop.api, shop.slug, inviter, channel="line")
    assert invitee["referral"]["status"] == "pending"
    await pay(shop, invitee, "o1")
    assert (await balances(shop, inviter))["points"] == (500, 0)
    assert (await balances(shop, invitee))["credit:USD"] == (300, 0)
    referral = ok(await shop.api.get("/v1/referrals"))["items"][0]
    assert (referral["status"], referral["channel"]) == ("converted", "line")


async def test_first_touch_wins_within_the_window(shop: ShopCtx) -> None:
    await create_campaign(shop.api)
    first = await create_member(shop.api)
    second = await create_member(shop.api)
    api = shop.api
    api.cookies.clear()
    r1 = await api.get(f"/r/{shop.slug}/{first['referral_code']}", params={"ch": "whatsapp"})
    device = r1.cookies["ll_did"]
    api.cookies.set("ll_did", device)
    r2 = await api.get(f"/r/{shop.slug}/{second['referral_code']}", params={"ch": "facebook"})
    last_click = r2.headers["location"].split("ll_click=")[1].split("&")[0]
    api.cookies.clear()
    invitee = await create_member(api, device_id=device, referral={"click_id": last_click})
    assert invitee["referral"]["inviter_id"] == first["id"]


async def test_click_outside_the_window_gives_no_reward(shop: ShopCtx) -> None:
    await create_campaign(shop.api, attribution_window_days=7)
    inviter = await create_member(shop.api)
    click_id, device = await click(shop.api, shop.slug, inviter["referral_code"])
    async with transaction(shop.app.state.sessions) as s:
        await s.execute(update(InviteClick).values(created_at=utc_now() - timedelta(days=8)))
    invitee = await create_member(shop.api, device_id=device, referral={"click_id": click_id})
    assert invitee["referral"]["status"] == "rejected"
    assert "click_expired" in invitee["referral"]["reason_codes"]


async def test_one_inviter_per_invitee_and_existing_customers_are_not_new(shop: ShopCtx) -> None:
    await create_campaign(shop.api)
    inviter = await create_member(shop.api)
    old = await create_member(shop.api, existing_customer=False)
    await pay(shop, old, "old-1")  # bought before anyone invited them
    async with transaction(shop.app.state.sessions) as s:
        from liveloop.members.service import get_member
        from liveloop.referral.service import attribute_signup

        member = await get_member(s, shop.shop.id, old["id"])
        referral = await attribute_signup(s, shop.shop, member, code=inviter["referral_code"])
        assert referral is not None
        assert referral.status == "rejected"
        assert referral.reason_codes == ["existing_customer"]
    flagged = await create_member(shop.api, existing_customer=True, referral={"code": inviter["referral_code"]})
    assert flagged["referral"]["reason_codes"] == ["existing_customer"]


async def test_fraud_reasons(shop: ShopCtx) -> None:
    await create_campaign(shop.api, daily_cap_per_inviter=3, fraud_velocity_per_hour=2)
    maria = new_device(shop.app)
    inviter = await create_member(shop.api, email="maria.lopez@gmail.com", device_id=maria)

    async def signup(**kw: Any) -> dict[str, Any]:
        member = await create_member(shop.api, referral={"code": inviter["referral_code"]}, **kw)
        return member["referral"]

    assert "same_device" in (await signup(device_id=maria))["reason_codes"]
    gmail = await signup(email="Maria.Lopez+deals@googlemail.com")
    assert gmail["status"] == "held"
    assert "similar_email" in gmail["reason_codes"]
    near = await signup(email="maria.lopez1@gmail.com")
    assert "similar_email" in near["reason_codes"]
    disposable = await signup(email="x9@mailinator.com")
    assert disposable["status"] == "rejected"
    assert "disposable_email" in disposable["reason_codes"]
    ok_one = await signup(ip="192.0.2.10")
    assert ok_one["status"] == "pending"
    await signup(ip="192.0.2.10")
    third = await signup(ip="192.0.2.10")
    assert "ip_velocity" in third["reason_codes"] or "inviter_daily_cap" in third["reason_codes"]
    capped = await signup()
    assert "inviter_daily_cap" in capped["reason_codes"]
    assert capped["status"] == "rejected"


async def test_same_payment_fingerprint_is_held_then_approved(shop: ShopCtx) -> None:
    await create_campaign(shop.api)
    inviter = await create_member(shop.api)
    await pay(shop, inviter, "inv-own", fingerprint="card-4242")
    invitee = await invite(shop.api, shop.slug, inviter)
    await pay(shop, invitee, "inv-1", fingerprint="card-4242")
    assert await rewards_of(shop, invitee) == []
    reviews = ok(await shop.api.get("/v1/reviews"))["items"]
    assert len(reviews) == 1
    assert "same_payment" in reviews[0]["reason_codes"]
    ok(await shop.api.post(f"/v1/reviews/{reviews[0]['id']}/approve", json={"note": "family card"}))
    assert [r["role"] for r in await rewards_of(shop, invitee)] == ["invitee"]
    assert ok(await shop.api.get("/v1/reviews"))["items"] == []


async def test_rejected_review_reverses_nothing_granted_and_closes(shop: ShopCtx) -> None:
    await create_campaign(shop.api, conversion_event="signup")
    inviter = await create_member(shop.api, email="sam.k@example.com")
    held = await create_member(shop.api, email="sam.k2@example.com", referral={"code": inviter["referral_code"]})
    assert held["referral"]["status"] == "held"
    review = ok(await shop.api.get("/v1/reviews"))["items"][0]
    ok(await shop.api.post(f"/v1/reviews/{review['id']}/reject", json={}))
    referral = ok(await shop.api.get("/v1/referrals"))["items"][0]
    assert referral["status"] == "rejected"
    assert "fraud_confirmed" in referral["reason_codes"]
    r = await shop.api.post(f"/v1/reviews/{review['id']}/approve", json={})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "review_decided")


async def test_milestones_fire_on_crossing_and_are_recomputed_on_refund(shop: ShopCtx) -> None:
    await create_campaign(
        shop.api,
        milestones=[
            {"threshold": 1, "reward": {"type": "points", "amount": 100}},
            {"threshold": 3, "reward": {"type": "credit", "amount": 700, "currency": "USD"}},
            {"threshold": 5, "reward": {"type": "perk", "label": "Exclusive"}},
        ],
    )
    inviter = await create_member(shop.api)
    invitees = [await invite(shop.api, shop.slug, inviter) for _ in range(3)]
    for i, invitee in enumerate(invitees):
        await pay(shop, invitee, f"m{i}")
    milestones = sorted(r["milestone"] for r in await rewards_of(shop, inviter) if r["role"] == "milestone")
    assert milestones == [1, 3]
    assert (await balances(shop, inviter))["credit:USD"] == (700, 0)
    ok(await send_order(shop.api, shop.slug, shop.secret, "refunded", "m2", invitees[2]["external_id"], 5000))
    live = [r for r in await rewards_of(shop, inviter) if r["status"] != "reversed"]
    assert sorted(r["milestone"] for r in live if r["role"] == "milestone") == [1]
    assert (await balances(shop, inviter))["credit:USD"] == (0, 0)
    assert (await balances(shop, inviter))["points"] == (1100, 0)  # 2 x 500 + tier 1
    assert all(r["status"] == "reversed" for r in await rewards_of(shop, invitees[2]))
    # crossing tier 3 again grants it again
    again = await invite(shop.api, shop.slug, inviter)
    await pay(shop, again, "m3")
    live = [r for r in await rewards_of(shop, inviter) if r["status"] != "reversed" and r["role"] == "milestone"]
    assert sorted(r["milestone"] for r in live) == [1, 3]


async def test_refund_after_the_return_window_keeps_rewards(shop: ShopCtx) -> None:
    await create_campaign(shop.api)
    inviter = await create_member(shop.api)
    invitee = await invite(shop.api, shop.slug, inviter)
    ok(await send_order(shop.api, shop.slug, shop.secret, "paid", "late", invitee["external_id"], 5000))
    from liveloop.models import Order

    async with transaction(shop.app.state.sessions) as s:
        await s.execute(update(Order).values(paid_at=utc_now() - timedelta(days=30)))
    ok(await send_order(shop.api, shop.slug, shop.secret, "refunded", "late", invitee["external_id"], 5000))
    assert all(r["status"] == "available" for r in await rewards_of(shop, inviter))


async def test_held_rewards_are_pending_until_the_return_window_ends(shop: ShopCtx) -> None:
    await create_campaign(shop.api, reward_timing="after_return_window")
    inviter = await create_member(shop.api)
    invitee = await invite(shop.api, shop.slug, inviter)
    await pay(shop, invitee, "h1")
    assert (await balances(shop, inviter))["points"] == (0, 500)
    [reward] = await rewards_of(shop, inviter)
    assert reward["status"] == "pending"
    assert reward["release_at"]
    async with transaction(shop.app.state.sessions) as s:
        assert await release_due_rewards(s) == 0
        await s.execute(update(Reward).values(release_at=utc_now() - timedelta(seconds=1)))
    async with transaction(shop.app.state.sessions) as s:
        assert await release_due_rewards(s) == 2
    assert (await balances(shop, inviter))["points"] == (500, 0)
    assert (await balances(shop, invitee))["credit:USD"] == (300, 0)


async def test_refund_inside_the_window_reverses_held_rewards(shop: ShopCtx) -> None:
    await create_campaign(shop.api, reward_timing="after_return_window")
    inviter = await create_member(shop.api)
    invitee = await invite(shop.api, shop.slug, inviter)
    await pay(shop, invitee, "h2")
    ok(await send_order(shop.api, shop.slug, shop.secret, "refunded", "h2", invitee["external_id"], 5000))
    assert (await balances(shop, inviter))["points"] == (0, 0)
    assert {r["status"] for r in await rewards_of(shop, inviter)} == {"reversed"}


async def test_budget_exhausted_rejects_with_a_reason(shop: ShopCtx) -> None:
    await create_campaign(shop.api, budgets={"USD": 500})
    inviter = await create_member(shop.api)
    a = await invite(shop.api, shop.slug, inviter)
    b = await invite(shop.api, shop.slug, inviter)
    await pay(shop, a, "b1")
    await pay(shop, b, "b2")
    statuses = {
        r["invitee_id"]: (r["status"], r["reason_codes"]) for r in ok(await shop.api.get("/v1/referrals"))["items"]
    }
    assert statuses[a["id"]][0] == "converted"
    assert statuses[b["id"]] == ("rejected", ["budget_exhausted"])
    campaign = ok(await shop.api.get("/v1/campaigns"))["items"][0]
    assert campaign["budgets"] == [{"unit": "USD", "limit": 500, "spent": 300}]
    # The rejected conversion's grants were rolled back, and their events with them.
    granted = ok(await shop.api.get("/v1/events", params={"type": "reward.granted"}))["items"]
    assert sorted(e["data"]["member_id"] for e in granted) == sorted([inviter["id"], a["id"]])
    assert (await balances(shop, inviter))["points"] == (500, 0)


async def test_a_budget_added_later_applies_to_the_next_conversion(shop: ShopCtx) -> None:
    campaign = await create_campaign(shop.api, budgets={"USD": 10_000})
    inviter = await create_member(shop.api)
    a = await invite(shop.api, shop.slug, inviter)
    b = await invite(shop.api, shop.slug, inviter)
    await pay(shop, a, "p1")  # points are unlimited: the campaign has no points budget yet
    ok(await shop.api.patch(f"/v1/campaigns/{campaign['id']}", json={"budgets": {"points": 600}}))
    await pay(shop, b, "p2")  # 500 more points would pass 600 only if the first 500 had been counted
    statuses = {r["invitee_id"]: r["status"] for r in ok(await shop.api.get("/v1/referrals"))["items"]}
    assert statuses == {a["id"]: "converted", b["id"]: "converted"}
    budgets = {x["unit"]: x["spent"] for x in ok(await shop.api.get(f"/v1/campaigns/{campaign['id']}"))["budgets"]}
    assert budgets == {"USD": 600, "points": 500}


async def test_market_presets_and_per_market_rewards(shop: ShopCtx) -> None:
    await create_campaign(shop.api, inviter_reward=None, invitee_reward=None, use_market_presets=True)
    inviter = await create_member(shop.api, market="me")
    invitee = await invite(shop.api, shop.slug, inviter, market="eu")
    await pay(shop, invitee, "mk1", currency="EUR")
    assert (await balances(shop, inviter))["points"] == (1500, 0)  # Middle East preset: community points
    assert (await balances(shop, invitee))["points"] == (800, 0)  # Europe preset for invitees


async def test_a_market_preset_that_is_not_a_reward_is_refused_when_a_campaign_takes_it(shop: ShopCtx) -> None:
    broken = {"inviter": {"type": "points", "amount": "lots"}, "invitee": {"type": "voucher"}}
    ok(await shop.api.patch("/v1/markets/me", json={"reward_presets": broken}))
    body = {"name": "Presets", "use_market_presets": True, "markets": ["me"]}
    refused = await shop.api.post("/v1/campaigns", json=body)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "invalid_market_preset"
    assert "'me'" in error["message"]
    assert "PATCH /v1/markets/me" in error["message"]
    assert ok(await shop.api.get("/v1/campaigns"))["items"] == []  # nothing was written
    # Without the presets, and with rewards of its own, the campaign is made.
    own = {"inviter_reward": {"type": "points", "amount": 100}, "invitee_reward": {"type": "points", "amount": 50}}
    ok(await shop.api.post("/v1/campaigns", json={**body, **own, "use_market_presets": False}), 201)


async def test_first_view_campaign_converts_on_the_first_effective_view(shop: ShopCtx) -> None:
    await create_campaign(shop.api, conversion_event="first_view")
    inviter = await create_member(shop.api)
    invitee = await invite(shop.api, shop.slug, inviter)
    granted = ok(await shop.api.post(f"/v1/members/{invitee['id']}/effective-views", json={"show_id": "s1"}))
    assert {r["role"] for r in granted} == {"inviter", "invitee"}
    again = ok(await shop.api.post(f"/v1/members/{invitee['id']}/effective-views", json={"show_id": "s2"}))
    assert again == []


async def test_lottery_relay_and_a_verifiable_draw(shop: ShopCtx) -> None:
    campaign = await create_campaign(shop.api, lottery_enabled=True)
    inviters = [await create_member(shop.api) for _ in range(3)]
    for i, inviter in enumerate(inviters):
        invitee = await invite(shop.api, shop.slug, inviter)
        for j in range(i + 1):
            await pay(shop, invitee, f"lot-{i}-{j}")
    tickets = ok(await shop.api.get(f"/v1/members/{inviters[2]['id']}/tickets"))["items"]
    assert len(tickets) == 3
    assert (await balances(shop, inviters[2]))["ticket"] == (3, 0)
    draw = ok(
        await shop.api.post(
            f"/v1/campaigns/{campaign['id']}/draws",
            json={"prize_count": 2, "prize": {"type": "credit", "amount": 1000, "currency": "USD"}},
        ),
        201,
    )
    assert draw["seed"] is None
    assert len(draw["seed_hash"]) == 64
    public = ok(await shop.api.get(f"/v1/public/draws/{draw['id']}"))
    assert public["seed"] is None
    done = ok(await shop.api.post(f"/v1/draws/{draw['id']}/run"))
    assert len(done["ticket_ids"]) == 6
    assert len(done["winners"]) == 2
    proof = {
        "draw_id": done["id"],
        "seed": done["seed"],
        "seed_hash": draw["seed_hash"],
        "ticket_ids": list(reversed(done["ticket_ids"])),
        "prize_count": 2,
        "winners": [w["ticket_id"] for w in done["winners"]],
    }
    check = ok(await shop.api.post("/v1/public/draws/verify", json=proof))
    assert check["seed_matches_hash"]
    assert check["winners_match"]
    forged = ok(await shop.api.post("/v1/public/draws/verify", json={**proof, "seed": "0" * 64}))
    assert not forged["seed_matches_hash"]
    assert (await balances(shop, inviters[2]))["ticket"] == (0, 0)  # tickets used up by the draw
    rerun = ok(await shop.api.post(f"/v1/draws/{draw['id']}/run"))
    assert rerun["winners"] == done["winners"]


async def test_refunded_order_voids_its_ticket(shop: ShopCtx) -> None:
    await create_campaign(shop.api, lottery_enabled=True)
    inviter = await create_member(shop.api)
    invitee = await invite(shop.api, shop.slug, inviter)
    await pay(shop, invitee, "t1")
    await pay(shop, invitee, "t2")
    ok(await send_order(shop.api, shop.slug, shop.secret, "refunded", "t2", invitee["external_id"], 5000))
    tickets = ok(await shop.api.get(f"/v1/members/{inviter['id']}/tickets"))["items"]
    assert sorted(t["status"] for t in tickets) == ["active", "void"]
    assert (await balances(shop, inviter))["ticket"] == (1, 0)


async def test_vip_group_offer_and_weekly_target(shop: ShopCtx) -> None:
    group = await create_group(shop.api, weekly_target=2, extra_offer={"type": "points", "amount": 250})
    assert group["perk_level"] == 1
    assert group["code"].startswith("V")
    joined = []
    for _ in range(2):
        click_id, device = await click(shop.api, shop.slug, group["code"], "telegram")
        joined.append(await create_member(shop.api, device_id=device, referral={"click_id": click_id}))
    assert joined[0]["referral"]["inviter_id"] == group["owner_id"]
    roles = sorted(r["role"] for r in await rewards_of(shop, joined[0]))
    assert roles == ["invitee", "vip_offer"]
    status = ok(await shop.api.get(f"/v1/groups/{group['id']}"))
    assert status["invites_this_week"] == 2
    assert status["members"] == 3
    events = ok(await shop.api.get("/v1/events", params={"type": "group.target_reached"}))["items"]
    assert len(events) == 1
    assert events[0]["data"]["next_week_perk_level"] == 2
    board = ok(await shop.api.get(f"/v1/groups/{group['id']}/leaderboard"))
    assert board[0]["member_id"] == group["owner_id"]
    assert board[0]["converted"] == 2


async def test_leaderboard_orders_by_converted_invites(shop: ShopCtx) -> None:
    campaign = await create_campaign(shop.api, conversion_event="signup")
    a = await create_member(shop.api, name="A")
    b = await create_member(shop.api, name="B")
    for _ in range(2):
        await invite(shop.api, shop.slug, b)
    await invite(shop.api, shop.slug, a)
    board = ok(await shop.api.get(f"/v1/campaigns/{campaign['id']}/leaderboard"))
    assert [(row["name"], row["converted"], row["rank"]) for row in board] == [("B", 2, 1), ("A", 1, 2)]


async def test_concurrent_conversions_of_one_inviter_grant_each_milestone_once(shop: ShopCtx) -> None:
    await create_campaign(shop.api, milestones=[{"threshold": 2, "reward": {"type": "points", "amount": 50}}])
    inviter = await create_member(shop.api)
    invitees = [await invite(shop.api, shop.slug, inviter) for _ in range(6)]

    async def buy(i: int) -> None:
        async with shop.client() as api:
            r = await send_order(api, shop.slug, shop.secret, "paid", f"cc{i}", invitees[i]["external_id"])
            assert r.status_code == 200, r.text

    await asyncio.gather(*(buy(i) for i in range(6)))
    async with transaction(shop.app.state.sessions) as s:
        milestones = (await s.execute(select(Reward).where(Reward.role == "milestone"))).scalars().all()
    assert len(milestones) == 1  # granted, and only once
    assert ok(await shop.api.get("/v1/referrals", params={"status": "converted"}))["items"].__len__() == 6


async def test_a_member_cannot_invite_themself(shop: ShopCtx) -> None:
    await create_campaign(shop.api)
    member = await create_member(shop.api)
    async with transaction(shop.app.state.sessions) as s:
        from liveloop.members.service import get_member
        from liveloop.referral.service import attribute_signup

        me = await get_member(s, shop.shop.id, member["id"])
        referral = await attribute_signup(s, shop.shop, me, code=member["referral_code"])
        assert referral is not None
        assert (referral.status, referral.reason_codes) == ("rejected", ["self_referral"])
    assert [r["role"] for r in await rewards_of(shop, member)] == []


async def test_weekly_leaderboard_counts_only_this_weeks_conversions(shop: ShopCtx) -> None:
    campaign = await create_campaign(shop.api, conversion_event="signup")
    a = await create_member(shop.api, name="A")
    b = await create_member(shop.api, name="B")
    for _ in range(2):
        await invite(shop.api, shop.slug, a)
    await invite(shop.api, shop.slug, b)
    from liveloop.models import Referral

    async with transaction(shop.app.state.sessions) as s:  # A's conversions happened last week
        await s.execute(
            update(Referral).where(Referral.inviter_id == a["id"]).values(converted_at=utc_now() - timedelta(days=8))
        )
    week = ok(await shop.api.get(f"/v1/campaigns/{campaign['id']}/leaderboard", params={"period": "week"}))
    assert [(r["name"], r["converted"]) for r in week] == [("B", 1)]
    alltime = ok(await shop.api.get(f"/v1/campaigns/{campaign['id']}/leaderboard"))
    assert [(r["name"], r["converted"]) for r in alltime] == [("A", 2), ("B", 1)]
