"""Attribution keys on the verified device, a sign-up from the inviter's network is held, public draws name no one.

Each attack is scripted as an attacker would run it, through the public invite link and the shop's API.
"""

from __future__ import annotations

import asyncio
import secrets
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from liveloop.kit.db import transaction
from liveloop.kit.time import utc_now
from liveloop.members import devices
from liveloop.models import InviteClick, Member
from tests.conftest import ShopCtx
from tests.factories import create_campaign, create_member, invite, new_device, ok, send_order
from tests.live.conftest import live_show

OTHER_KEY = "another-secret-key-that-is-long-enough-too"


def browser(shop: ShopCtx, address: str = "127.0.0.1", cookie: str | None = None) -> httpx.AsyncClient:
    """A browser of its own (its own cookie jar) at an address of its own."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=shop.app, client=(address, 40000)),
        base_url="http://testserver",
        cookies={"ll_did": cookie} if cookie else None,
    )


async def _click_with(shop: ShopCtx, code: str, cookie: str | None, address: str = "127.0.0.1") -> tuple[str, str]:
    """Tap an invite link; return (click id, device stored with the click)."""
    async with browser(shop, address, cookie) as api:
        r = await api.get(f"/r/{shop.slug}/{code}", params={"ch": "whatsapp"})
    assert r.status_code == 302, r.text
    click_id = r.headers["location"].split("ll_click=")[1].split("&")[0]
    async with transaction(shop.app.state.sessions) as s:
        stored = await s.get(InviteClick, click_id)
    assert stored is not None
    assert stored.device_id
    return click_id, stored.device_id


async def test_an_attacker_choosing_the_victims_device_is_not_credited_for_the_victim(shop: ShopCtx) -> None:
    await create_campaign(shop.api)
    attacker = await create_member(shop.api)
    friend = await create_member(shop.api)  # the member who really invites the victim
    show = await live_show(shop)
    # The victim watches a show: the server issues the victim's browser a signed device.
    async with browser(shop) as victim:
        joined = await victim.post(f"/v1/public/shows/{show['id']}/join")
    victim_cookie = joined.cookies["ll_did"]
    victim_device = ok(joined)["viewer_key"].removeprefix("d:")  # the bare id, as the room has shown it
    assert devices.verify(shop.app.state.settings.secret_key, victim_cookie) == victim_device

    # The attacker taps their own invite link "as" the victim, with every value they can make up.
    chosen = {
        "the victim's bare id": victim_device,
        "an arbitrary string": "victim-device-0001",
        "a forged signature": f"{victim_device}.{'A' * 22}",
        "a truncated value": victim_cookie[:-5],
        "signed with another key": devices.sign(OTHER_KEY, victim_device),
    }
    for what, value in chosen.items():
        _, stored = await _click_with(shop, attacker["referral_code"], value)
        assert stored not in (victim_device, value), what  # a fresh device, never the value sent

    # Later the victim follows the friend's link and signs up; the shop passes the victim's own cookie.
    friend_click, _ = await _click_with(shop, friend["referral_code"], victim_cookie)
    victim_member = await create_member(shop.api, device_id=victim_cookie, referral={"click_id": friend_click})
    assert victim_member["referral"]["inviter_id"] == friend["id"]
    ok(await send_order(shop.api, shop.slug, shop.secret, "paid", "victim-o1", victim_member["external_id"]))
    assert ok(await shop.api.get(f"/v1/members/{attacker['id']}/rewards"))["items"] == []
    assert ok(await shop.api.get(f"/v1/members/{friend['id']}/rewards"))["items"] != []
    referrals = ok(await shop.api.get("/v1/referrals", params={"member_id": attacker["id"]}))["items"]
    assert referrals == []


async def test_a_sign_up_on_the_victims_device_alone_is_not_attributed_to_the_attacker(shop: ShopCtx) -> None:
    await create_campaign(shop.api, conversion_event="signup")
    attacker = await create_member(shop.api)
    victim_cookie = new_device(shop.app)
    victim_device = devices.verify(shop.app.state.settings.secret_key, victim_cookie)
    await _click_with(shop, attacker["referral_code"], victim_device)
    await _click_with(shop, attacker["referral_code"], "A" * 22)
    victim_member = await create_member(shop.api, device_id=victim_cookie)
    assert victim_member["referral"] is None
    # The victim's own click on the attacker's link is the victim's choice: that one does count.
    _, stored = await _click_with(shop, attacker["referral_code"], victim_cookie)
    assert stored == victim_device


# --- same network ------------------------------------------------------------------------------------------


async def test_an_invitee_signing_up_from_the_inviters_network_is_held_for_review(shop: ShopCtx) -> None:
    await create_campaign(shop.api, attribution_window_days=7)
    inviter = await create_member(shop.api, ip="192.0.2.77")
    same = await invite(shop.api, shop.slug, inviter, ip="192.0.2.77")
    assert same["referral"]["status"] == "held"
    assert "same_network" in same["referral"]["reason_codes"]
    reviews = ok(await shop.api.get("/v1/reviews"))["items"]
    assert [r["referral_id"] for r in reviews] == [same["referral"]["id"]]
    assert "same_network" in reviews[0]["reason_codes"]
    elsewhere = await invite(shop.api, shop.slug, inviter, ip="198.51.100.20")
    assert elsewhere["referral"]["status"] == "pending", elsewhere["referral"]["reason_codes"]
    assert "same_network" not in elsewhere["referral"]["reason_codes"]


async def test_the_inviters_network_counts_only_within_the_campaigns_window(shop: ShopCtx) -> None:
    await create_campaign(shop.api, attribution_window_days=7)
    inviter = await create_member(shop.api, ip="192.0.2.78")
    async with transaction(shop.app.state.sessions) as s:
        await s.execute(
            update(Member).where(Member.id == inviter["id"]).values(created_at=utc_now() - timedelta(days=8))
        )
    later = await create_member(shop.api, ip="192.0.2.78", referral={"code": inviter["referral_code"]})
    assert "same_network" not in later["referral"]["reason_codes"]


async def test_an_invitee_tapping_the_link_where_the_inviters_device_was_is_held(shop: ShopCtx) -> None:
    await create_campaign(shop.api)
    inviter_cookie = new_device(shop.app)
    inviter = await create_member(shop.api, device_id=inviter_cookie)
    # The inviter checks their own link from home, on their own (signed) device...
    await _click_with(shop, inviter["referral_code"], inviter_cookie, address="192.0.2.44")
    # ...and a "friend" taps it from the same network, on another browser, and signs up.
    home_click, home_device = await _click_with(shop, inviter["referral_code"], None, address="192.0.2.44")
    home_cookie = devices.sign(shop.app.state.settings.secret_key, home_device)
    held = await create_member(shop.api, device_id=home_cookie, referral={"click_id": home_click})
    assert held["referral"]["status"] == "held"
    assert "same_network" in held["referral"]["reason_codes"]
    other_click, other_device = await _click_with(shop, inviter["referral_code"], None, address="192.0.2.45")
    other_cookie = devices.sign(shop.app.state.settings.secret_key, other_device)
    fine = await create_member(shop.api, device_id=other_cookie, referral={"click_id": other_click})
    assert fine["referral"]["status"] == "pending"


# --- public draws ----------------------------------------------------------------------------------------


async def _drawn(shop: ShopCtx, inviters: list[dict[str, Any]], show_id: str | None = None) -> dict[str, Any]:
    campaign = await create_campaign(shop.api, lottery_enabled=True)
    for i, inviter in enumerate(inviters):
        invitee = await invite(shop.api, shop.slug, inviter)
        ok(await send_order(shop.api, shop.slug, shop.secret, "paid", f"lot-{i}", invitee["external_id"]))
    draw = ok(
        await shop.api.post(
            f"/v1/campaigns/{campaign['id']}/draws",
            json={"prize_count": len(inviters), "prize": {"type": "points", "amount": 100, "label": "Prize"}},
        ),
        201,
    )
    params = {"show_id": show_id} if show_id else {}
    return ok(await shop.api.post(f"/v1/draws/{draw['id']}/run", params=params))


async def test_a_public_draw_shows_display_names_never_ids_or_real_names(shop: ShopCtx) -> None:
    maria = await create_member(shop.api, name="Maria Lopez")
    ken = await create_member(shop.api, name="Ken Tanaka", display_name="Glow Queen")
    anonymous = await create_member(shop.api)
    run = await _drawn(shop, [maria, ken, anonymous])
    # The shop's operators see who won and what they were given.
    assert {w["member_id"] for w in run["winners"]} == {maria["id"], ken["id"], anonymous["id"]}
    reward_ids = {w["reward_id"] for w in run["winners"]}

    async with browser(shop) as public:
        r = await public.get(f"/v1/public/draws/{run['id']}")
    body = ok(r)
    assert sorted(w["name"] for w in body["winners"]) == sorted(["M\u2022\u2022\u2022", "Glow Queen", "Guest"])
    assert {w["ticket_id"] for w in body["winners"]} == {w["ticket_id"] for w in run["winners"]}
    assert body["seed"]
    assert body["ticket_ids"]
    for secret_value in [maria["id"], ken["id"], anonymous["id"], *reward_ids, "Maria", "Lopez", "Ken", "Tanaka"]:
        assert secret_value not in r.text
    assert "member_id" not in r.text
    assert "reward_id" not in r.text


async def test_a_draw_announced_in_the_room_names_no_one(shop: ShopCtx, monkeypatch: pytest.MonkeyPatch) -> None:
    show = await live_show(shop)
    bus = shop.app.state.relay.bus
    published: list[bytes] = []
    forward = bus.publish

    async def recording(room: str, payload: bytes) -> int:
        published.append(payload)
        return int(await forward(room, payload))

    monkeypatch.setattr(bus, "publish", recording)
    maria = await create_member(shop.api, name="Maria Lopez")
    run = await _drawn(shop, [maria], show_id=show["id"])
    for _ in range(100):
        announced = [p for p in published if b'"k":"draw"' in p]
        if announced:
            break
        await asyncio.sleep(0.02)
    assert announced, "the draw was not announced in the room"
    text = announced[0].decode()
    assert "M\u2022\u2022\u2022" in text or "M\\u2022" in text
    for secret_value in [maria["id"], run["winners"][0]["reward_id"], "Maria", "Lopez", "member_id", "reward_id"]:
        assert secret_value not in text


async def test_a_display_name_is_set_through_the_api_and_bounded(shop: ShopCtx) -> None:
    member = await create_member(shop.api, name="Ana Souza")
    assert member["display_name"] is None
    updated = ok(await shop.api.patch(f"/v1/members/{member['id']}", json={"display_name": "Ana S."}))
    assert updated["display_name"] == "Ana S."
    too_long = await shop.api.patch(f"/v1/members/{member['id']}", json={"display_name": "x" * 41})
    assert too_long.status_code == 422
    empty = await shop.api.post("/v1/members", json={"external_id": f"e-{secrets.token_hex(4)}", "display_name": ""})
    assert empty.status_code == 422


async def test_leaderboards_carry_the_public_form_of_each_name(shop: ShopCtx) -> None:
    campaign = await create_campaign(shop.api, conversion_event="signup")
    maria = await create_member(shop.api, name="Maria Lopez")
    ken = await create_member(shop.api, name="Ken Tanaka", display_name="Glow Queen")
    for inviter in (maria, ken, ken):
        await invite(shop.api, shop.slug, inviter)
    rows = ok(await shop.api.get(f"/v1/campaigns/{campaign['id']}/leaderboard"))
    assert [(r["display_name"], r["converted"]) for r in rows] == [("Glow Queen", 2), ("M\u2022\u2022\u2022", 1)]
    async with transaction(shop.app.state.sessions) as s:
        assert (await s.execute(select(Member.name).where(Member.id == maria["id"]))).scalar_one() == "Maria Lopez"


def test_every_fraud_reason_is_documented_on_the_referral() -> None:
    from liveloop.referral import fraud, schemas

    for reason in fraud.OUTCOMES:
        assert f"`{reason}`" in schemas.REASON_CODES_DESCRIPTION, reason
