"""Members, their devices and consents through the service and repository, called directly."""

from __future__ import annotations

from datetime import timedelta

import pytest

from liveloop.kit.db import transaction
from liveloop.kit.errors import NotFound
from liveloop.kit.time import utc_now
from liveloop.members import service
from liveloop.members.schemas import ConsentIn, MemberUpdate
from liveloop.models import ConsentChannel
from tests.conftest import ShopCtx, make_shop
from tests.factories import create_member


async def test_another_shops_member_is_not_found_by_id_external_id_or_code(shop: ShopCtx) -> None:
    other = await make_shop(shop.app, slug="rival")
    theirs = await create_member(other.api, external_id="cust-1")
    mine = await create_member(shop.api, external_id="cust-1")
    async with transaction(shop.app.state.sessions) as s:
        with pytest.raises(NotFound) as refused:
            await service.get_member(s, shop.shop.id, theirs["id"])
        assert (await service.get_member(s, other.shop.id, theirs["id"])).id == theirs["id"]
        by_external_id = await service.find_by_external_id(s, shop.shop.id, "cust-1")
        assert await service.find_by_code(s, shop.shop.id, theirs["referral_code"]) is None
        found = await service.find_by_code(s, shop.shop.id, mine["referral_code"].lower())  # typed in lower case
        names = await service.public_names(s, shop.shop.id, [mine["id"], theirs["id"]])
    assert refused.value.code == "member_not_found"
    assert by_external_id is not None
    assert by_external_id.id == mine["id"]  # the same external id in another shop is another member
    assert found is not None
    assert found.id == mine["id"]
    assert names[theirs["id"]] == "Guest"  # another shop's member is not named
    await other.api.aclose()


def _consent(channel: ConsentChannel, granted: bool, minutes_ago: int, purpose: str = "marketing") -> ConsentIn:
    return ConsentIn(
        channel=channel,
        purpose=purpose,
        granted=granted,
        source="test",
        text_version="v1",
        recorded_at=utc_now() - timedelta(minutes=minutes_ago),
    )


async def test_the_newest_consent_per_channel_and_purpose_is_in_force(shop: ShopCtx) -> None:
    member = await create_member(shop.api)
    async with transaction(shop.app.state.sessions) as s:
        for consent in (
            _consent(ConsentChannel.EMAIL, True, 30),
            _consent(ConsentChannel.SMS, True, 20),
            _consent(ConsentChannel.EMAIL, False, 10),
            _consent(ConsentChannel.EMAIL, True, 40, purpose="receipts"),
        ):
            await service.record_consent(s, shop.shop.id, member["id"], consent)
    async with transaction(shop.app.state.sessions) as s:
        history = await service.consent_history(s, shop.shop.id, member["id"])
        in_force = await service.consents_in_force(s, shop.shop.id, member["id"])
        elsewhere = await service.consent_history(s, "shop_other", member["id"])
    assert [(c.channel, c.purpose, c.granted) for c in history] == [
        (ConsentChannel.EMAIL, "receipts", True),
        (ConsentChannel.EMAIL, "marketing", True),
        (ConsentChannel.SMS, "marketing", True),
        (ConsentChannel.EMAIL, "marketing", False),
    ]
    assert {(c.channel, c.purpose): c.granted for c in in_force} == {
        (ConsentChannel.EMAIL, "receipts"): True,
        (ConsentChannel.EMAIL, "marketing"): False,
        (ConsentChannel.SMS, "marketing"): True,
    }
    assert all(type(c.channel) is ConsentChannel for c in history)  # read back as the enum
    assert elsewhere == []


async def test_an_update_changes_only_what_it_gives(shop: ShopCtx) -> None:
    created = await create_member(shop.api, market="sea", name="Ana")
    async with transaction(shop.app.state.sessions) as s:
        member = await service.get_member(s, shop.shop.id, created["id"])
        await service.update_member(
            s, shop.shop, member, MemberUpdate(display_name="ana.k", phone="+6591234567"), device_id="dev-1"
        )
    async with transaction(shop.app.state.sessions) as s:
        member = await service.get_member(s, shop.shop.id, created["id"])
        devices = await service.device_ids(s, member.id)
    assert (member.name, member.display_name, member.phone_e164) == ("Ana", "ana.k", "+6591234567")
    assert (member.market, member.email) == ("sea", created["email"])
    assert devices == ["dev-1"]
