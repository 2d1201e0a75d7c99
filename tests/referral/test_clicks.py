"""The invite-link hot path: group commit, stored values, failures."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from liveloop.kit.batching import GroupCommitWriter
from liveloop.kit.db import transaction
from liveloop.kit.ids import new_id
from liveloop.kit.time import utc_now
from liveloop.models import InviteClick
from tests.conftest import ShopCtx
from tests.factories import create_member


async def test_concurrent_clicks_are_all_committed_before_they_are_answered(shop: ShopCtx) -> None:
    inviter = await create_member(shop.api)

    async def one(i: int) -> str:
        async with shop.client() as api:
            r = await api.get(f"/r/{shop.slug}/{inviter['referral_code']}", params={"ch": "line", "show": f"s{i}"})
            assert r.status_code == 302
            click_id = r.headers["location"].split("ll_click=")[1].split("&")[0]
        # Answered means stored: a fresh transaction sees it at once.
        async with transaction(shop.app.state.sessions) as s:
            assert await s.get(InviteClick, click_id) is not None
        return click_id

    ids = await asyncio.gather(*(one(i) for i in range(60)))
    assert len(set(ids)) == 60
    async with transaction(shop.app.state.sessions) as s:
        clicks = (await s.execute(select(InviteClick).where(InviteClick.id.in_(ids)))).scalars().all()
    assert {c.channel for c in clicks} == {"line"}
    assert {c.inviter_id for c in clicks} == {inviter["id"]}
    assert sorted(c.show_id for c in clicks) == sorted(f"s{i}" for i in range(60))
    for c in clicks:  # stored exactly as the ORM stores it: aware UTC, read back intact
        assert c.created_at.tzinfo is not None
        assert abs(c.created_at - utc_now()) < timedelta(minutes=1)


async def test_a_failed_batch_fails_every_caller_and_writes_nothing(shop: ShopCtx) -> None:
    writer = GroupCommitWriter(shop.app.state.clicks.writer.flush, name="test")
    good = {
        "id": new_id("clk"),
        "shop_id": shop.shop.id,
        "inviter_id": None,
        "group_id": None,
        "channel": "copy",
        "show_id": None,
        "host_id": None,
        "device_id": "d",
        "ip_hash": None,
        "user_agent": None,
        "created_at": utc_now(),
    }
    bad = {**good, "id": new_id("clk"), "shop_id": "shop_missing"}  # violates the foreign key
    results = await asyncio.gather(writer.write(good), writer.write(bad), return_exceptions=True)
    await writer.close()
    assert all(isinstance(r, Exception) for r in results)
    async with transaction(shop.app.state.sessions) as s:
        assert (await s.execute(select(func.count()).select_from(InviteClick))).scalar_one() == 0


async def test_unknown_codes_and_paths(shop: ShopCtx) -> None:
    r = await shop.api.get(f"/r/{shop.slug}/NOSUCH9")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "unknown_invite_code")
    r = await shop.api.get("/r/no-such-shop/ABCDEFG")
    assert r.status_code == 404
    r = await shop.api.get("/r/only-one-part")
    assert r.status_code == 404  # not an invite link: the router answers


@pytest.mark.parametrize("cookie", ["", "short", "x" * 200, "bad value;"])
async def test_a_malformed_device_cookie_is_replaced(shop: ShopCtx, cookie: str) -> None:
    inviter = await create_member(shop.api)
    r = await shop.api.get(f"/r/{shop.slug}/{inviter['referral_code']}", headers={"cookie": f"ll_did={cookie}"})
    assert r.status_code == 302
    device = r.cookies.get("ll_did")
    assert device
    assert device != cookie
    assert 16 <= len(device) <= 64


async def test_a_click_records_the_channel_it_names_or_other(shop: ShopCtx) -> None:
    inviter = await create_member(shop.api)
    sent = [("live", "live"), ("qr", "qr"), ("myspace", "other"), ("other", "other")]
    for ch, recorded in sent:
        r = await shop.api.get(f"/r/{shop.slug}/{inviter['referral_code']}", params={"ch": ch})
        assert r.status_code == 302
        assert f"ll_ch={recorded}&" in r.headers["location"] + "&"
    async with transaction(shop.app.state.sessions) as s:
        query = select(InviteClick.channel).where(InviteClick.inviter_id == inviter["id"])
        stored = list((await s.execute(query.order_by(InviteClick.created_at, InviteClick.id))).scalars())
    assert sorted(stored) == sorted(recorded for _, recorded in sent)
