"""The referral engine called directly: its lookups of one shop's rows, its filters, its stored shapes."""

from __future__ import annotations

from typing import Any

import pytest

from liveloop.kit.db import transaction
from liveloop.kit.errors import LiveloopError, NotFound, Unprocessable
from liveloop.kit.pagination import PageRequest
from liveloop.models import Campaign, InviteClick, Member, Referral, Reward
from liveloop.models.referral import RewardRole, RewardStatus, ShareChannel
from liveloop.referral import fraud, groups, links, lottery, schemas, service
from liveloop.referral.repository import ReferralRepository
from tests.conftest import ShopCtx, make_shop
from tests.factories import click, create_campaign, create_group, create_member, ok

PAGE = PageRequest(limit=50, cursor=None, scope="tests", secret="tests")


def _refusal(exc: pytest.ExceptionInfo[LiveloopError]) -> tuple[str, str]:
    return str(exc.value.code), exc.value.message


async def _held_review_and_draw(shop: ShopCtx) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], str]:
    """A sign-up campaign with a VIP group, a referral held for review (look-alike emails) and a draw."""
    group = await create_group(shop.api, extra_offer={"type": "perk", "label": "Insider price"})
    campaign = ok(await shop.api.get(f"/v1/campaigns/{group['campaign_id']}"))
    inviter = await create_member(shop.api, email="sam.k@example.com")
    await create_member(shop.api, email="sam.k2@example.com", referral={"code": inviter["referral_code"]})
    review = ok(await shop.api.get("/v1/reviews"))["items"][0]
    body = {"prize_count": 1, "prize": {"type": "points", "amount": 100}}
    draw = ok(await shop.api.post(f"/v1/campaigns/{campaign['id']}/draws", json=body), 201)
    return campaign, group, draw, review["id"]


async def test_another_shops_campaign_group_review_and_draw_are_not_found(shop: ShopCtx) -> None:
    campaign, group, draw, review_id = await _held_review_and_draw(shop)
    other = await make_shop(shop.app, "other")
    async with transaction(shop.app.state.sessions) as session:
        with pytest.raises(NotFound) as exc:
            await service.get_campaign(session, other.shop.id, campaign["id"])
        assert _refusal(exc) == ("campaign_not_found", "No such campaign in this shop.")
        with pytest.raises(NotFound) as exc:
            await groups.get_group(session, other.shop.id, group["id"])
        assert _refusal(exc) == ("group_not_found", "No such group in this shop.")
        with pytest.raises(NotFound) as exc:
            await lottery.get_draw(session, draw["id"], other.shop.id)
        assert _refusal(exc) == ("draw_not_found", "No such draw.")
        with pytest.raises(NotFound) as exc:
            await service.decide_review(session, other.shop, review_id, approve=True, note=None, decided_by="key_other")
        assert _refusal(exc) == ("review_not_found", "No such review in this shop.")
        # The shop that owns them finds each one, and the public page finds the draw without a shop.
        assert (await service.get_campaign(session, shop.shop.id, campaign["id"])).id == campaign["id"]
        assert (await groups.get_group(session, shop.shop.id, group["id"])).id == group["id"]
        assert (await lottery.get_draw(session, draw["id"], shop.shop.id)).id == draw["id"]
        assert (await lottery.get_draw(session, draw["id"])).id == draw["id"]
    await other.api.aclose()
    # Nothing was decided by the other shop's attempt.
    assert ok(await shop.api.get("/v1/reviews"))["items"][0]["status"] == "pending"


async def test_a_click_of_another_shop_is_an_unknown_click(shop: ShopCtx) -> None:
    await create_campaign(shop.api, conversion_event="signup")
    inviter = await create_member(shop.api)
    click_id, _ = await click(shop.api, shop.slug, inviter["referral_code"])
    other = await make_shop(shop.app, "other")
    await create_campaign(other.api, conversion_event="signup")
    newcomer = await create_member(other.api)
    async with transaction(shop.app.state.sessions) as session:
        invitee = await session.get(Member, newcomer["id"])
        assert invitee is not None
        with pytest.raises(Unprocessable) as exc:
            await service.attribute_signup(session, other.shop, invitee, click_id=click_id)
        assert str(exc.value.code) == "unknown_click"
        assert await session.get(InviteClick, click_id) is not None  # it exists, in the first shop
    await other.api.aclose()


async def test_a_status_filter_no_row_has_finds_nothing(shop: ShopCtx) -> None:
    await create_campaign(shop.api, conversion_event="signup")
    inviter = await create_member(shop.api, email="sam.k@example.com")
    await create_member(shop.api, email="sam.k2@example.com", referral={"code": inviter["referral_code"]})
    async with transaction(shop.app.state.sessions) as session:
        held, _ = await service.list_referrals(session, shop.shop.id, PAGE, status="held")
        assert [r.inviter_id for r in held] == [inviter["id"]]
        assert await service.list_referrals(session, shop.shop.id, PAGE, status="typo") == ([], None)
        assert len((await service.list_reviews(session, shop.shop.id, PAGE, "pending"))[0]) == 1
        assert await service.list_reviews(session, shop.shop.id, PAGE, "typo") == ([], None)
    assert ok(await shop.api.get("/v1/referrals", params={"status": "typo"})) == {"items": [], "next_cursor": None}


async def test_reward_specs_are_stored_as_the_api_shows_them(shop: ShopCtx) -> None:
    gift = {"type": "gift", "sku": "TOTE", "label": "Tote bag"}
    milestones = [
        {"threshold": 5, "reward": {"type": "points", "amount": 900}},
        {"threshold": 2, "reward": {"type": "perk", "label": "Early access"}},
    ]
    created = await create_campaign(shop.api, market_rewards={"sea": {"inviter": gift}}, milestones=milestones)
    async with transaction(shop.app.state.sessions) as session:
        campaign = await session.get(Campaign, created["id"])
        assert campaign is not None
        # A market's own reward leaves out what was not given (a gift without a currency has no currency key) …
        assert campaign.market_rewards == {"sea": {"inviter": {**gift, "value_minor": 0}}}
        # … the campaign's own rewards keep every field, and milestones are kept by threshold.
        assert campaign.inviter_reward == {"type": "points", "amount": 500, "label": ""}
        assert [m["threshold"] for m in campaign.milestones] == [2, 5]
        assert campaign.milestones[0]["reward"] == {"type": "perk", "label": "Early access"}
        stored = (campaign.inviter_reward, campaign.invitee_reward, campaign.market_rewards, campaign.milestones)
    assert (created["inviter_reward"], created["invitee_reward"], created["market_rewards"], created["milestones"]) == (
        stored
    )


async def test_a_conversion_grants_both_sides_and_counts_for_the_inviter(shop: ShopCtx) -> None:
    campaign = await create_campaign(shop.api, conversion_event="signup")
    inviter = await create_member(shop.api)
    invitee = await create_member(shop.api, referral={"code": inviter["referral_code"]})
    assert invitee["referral"]["status"] == "converted"
    async with transaction(shop.app.state.sessions) as session:
        referral = await service.referral_of(session, shop.shop.id, invitee["id"])
        assert referral is not None
        assert referral.inviter_id == inviter["id"]
        assert await service.referral_of(session, "shp_other", invitee["id"]) is None
        assert await service.converted_count(session, campaign["id"], inviter["id"]) == 1
        rewards, _ = await service.member_rewards(session, shop.shop.id, inviter["id"], PAGE)
        assert [(r.role, r.status) for r in rewards] == [(RewardRole.INVITER, RewardStatus.AVAILABLE)]
        assert await service.member_rewards(session, "shp_other", inviter["id"], PAGE) == ([], None)
        found = await ReferralRepository(session).of_invitee_with_campaign(shop.shop.id, invitee["id"])
        assert found is not None
        assert (found[0].id, found[1].id) == (referral.id, campaign["id"])
        rows = await service.leaderboard(session, campaign["id"])
        assert [(r["member_id"], r["converted"]) for r in rows] == [(inviter["id"], 1)]
        # A converted referral is not converted twice.
        assert await service.convert(session, referral, order=None) == []
        assert len(list((await session.execute(Reward.__table__.select())).all())) == 2
        assert (await session.get(Referral, referral.id)) is referral


def test_share_channels_are_one_list() -> None:
    """The share sheet offers, and the live room accepts, every channel but the two only a click records."""
    assert set(links.CHANNELS) == set(ShareChannel) - {ShareChannel.LIVE, ShareChannel.OTHER}
    assert len(links.CHANNELS) == len(set(links.CHANNELS))


def test_every_reason_code_is_documented_on_the_referral() -> None:
    for reason in fraud.ReasonCode:
        assert f"`{reason}`" in schemas.REASON_CODES_DESCRIPTION, reason
    assert set(fraud.OUTCOMES) < set(fraud.ReasonCode)
