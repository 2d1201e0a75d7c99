"""VIP groups: a community with its own invite link, an extra offer and a weekly invite target."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TypedDict

from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.events.service import emit
from liveloop.kit.ids import new_id, short_code
from liveloop.kit.pagination import PageRequest
from liveloop.kit.time import utc_now, week_start
from liveloop.models import EventType, Shop, VipGroup
from liveloop.models.referral import RewardSpecData
from liveloop.referral.repository import GroupRepository


class GroupStatus(TypedDict):
    """A group's progress this week."""

    invites_this_week: int
    week_start: str  # ISO date, in the shop's reporting time zone
    perk_level: int
    members: int


async def find_by_code(session: AsyncSession, shop_id: str, code: str) -> VipGroup | None:
    return await GroupRepository(session).by_code(shop_id, code.upper())


async def create_group(
    session: AsyncSession,
    shop_id: str,
    *,
    campaign_id: str,
    name: str,
    owner_id: str,
    extra_offer: RewardSpecData,
    weekly_target: int,
    base_perk_level: int,
) -> VipGroup:
    group = VipGroup(
        id=new_id("grp"),
        shop_id=shop_id,
        campaign_id=campaign_id,
        name=name,
        code="V" + short_code(7),
        owner_id=owner_id,
        extra_offer=extra_offer,
        weekly_target=weekly_target,
        base_perk_level=base_perk_level,
        created_at=utc_now(),
    )
    await GroupRepository(session).add(group)
    await join(session, group, owner_id)
    return group


async def get_group(session: AsyncSession, shop_id: str, group_id: str) -> VipGroup:
    return await GroupRepository(session).get_or_raise(shop_id, group_id)


async def join(session: AsyncSession, group: VipGroup, member_id: str) -> None:
    await GroupRepository(session).join(group.id, member_id)


async def member_ids(session: AsyncSession, group_id: str) -> list[str]:
    return await GroupRepository(session).member_ids(group_id)


async def count_invite(session: AsyncSession, shop: Shop, group: VipGroup, invitee_id: str, now: datetime) -> None:
    """Count an invite toward this week's target; the week that reaches it lifts next week's perks."""
    await join(session, group, invitee_id)
    week = week_start(now, shop.reporting_timezone)
    if await GroupRepository(session).count_invite(group.id, week, group.weekly_target, now):
        await emit(
            session,
            shop.id,
            EventType.GROUP_TARGET_REACHED,
            {
                "group_id": group.id,
                "week_start": week.isoformat(),
                "target": group.weekly_target,
                "next_week_perk_level": group.base_perk_level + 1,
            },
        )


async def status(session: AsyncSession, shop: Shop, group: VipGroup, now: datetime | None = None) -> GroupStatus:
    now = now or utc_now()
    this_week = week_start(now, shop.reporting_timezone)
    last_week = this_week - timedelta(days=7)
    groups = GroupRepository(session)
    weeks = await groups.weeks(group.id, [this_week, last_week])
    last = weeks.get(last_week)
    return {
        "invites_this_week": weeks[this_week].invites if this_week in weeks else 0,
        "week_start": this_week.isoformat(),
        "perk_level": group.base_perk_level + (1 if last is not None and last.reached_at is not None else 0),
        "members": await groups.member_count(group.id),
    }


async def groups_of_member(
    session: AsyncSession, shop_id: str, member_id: str, page: PageRequest
) -> tuple[list[VipGroup], str | None]:
    """The VIP groups a member belongs to, oldest group first (not in the order the member joined them)."""
    return await GroupRepository(session).page_of_member(shop_id, member_id, page)
