"""VIP groups: a community with its own invite link, an extra offer and a weekly invite target."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.events.service import emit
from liveloop.kit.errors import NotFound
from liveloop.kit.ids import new_id, short_code
from liveloop.kit.pagination import PageRequest, paginate
from liveloop.kit.sql import insert_ignoring_conflicts, table
from liveloop.kit.time import utc_now, week_start
from liveloop.models import EventType, Shop, VipGroup, VipGroupMember, VipGroupWeek


async def find_by_code(session: AsyncSession, shop_id: str, code: str) -> VipGroup | None:
    return (
        await session.execute(select(VipGroup).where(VipGroup.shop_id == shop_id, VipGroup.code == code.upper()))
    ).scalar_one_or_none()


async def create_group(
    session: AsyncSession,
    shop_id: str,
    *,
    campaign_id: str,
    name: str,
    owner_id: str,
    extra_offer: dict[str, Any],
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
    session.add(group)
    await session.flush()
    await join(session, group, owner_id)
    return group


async def get_group(session: AsyncSession, shop_id: str, group_id: str) -> VipGroup:
    group = (
        await session.execute(select(VipGroup).where(VipGroup.shop_id == shop_id, VipGroup.id == group_id))
    ).scalar_one_or_none()
    if group is None:
        raise NotFound("No such group in this shop.", code="group_not_found")
    return group


async def join(session: AsyncSession, group: VipGroup, member_id: str) -> None:
    await session.execute(
        insert_ignoring_conflicts(
            session,
            table(VipGroupMember),
            {
                "id": new_id("gmb"),
                "group_id": group.id,
                "member_id": member_id,
                "created_at": utc_now(),
            },
        )
    )


async def member_ids(session: AsyncSession, group_id: str) -> list[str]:
    return list(
        (await session.execute(select(VipGroupMember.member_id).where(VipGroupMember.group_id == group_id))).scalars()
    )


async def count_invite(session: AsyncSession, shop: Shop, group: VipGroup, invitee_id: str, now: datetime) -> None:
    """Count an invite toward this week's target; the week that reaches it lifts next week's perks."""
    await join(session, group, invitee_id)
    week = week_start(now, shop.reporting_timezone)
    await session.execute(
        insert_ignoring_conflicts(
            session,
            table(VipGroupWeek),
            {
                "id": new_id("gwk"),
                "group_id": group.id,
                "week_start": week,
                "invites": 0,
                "target": group.weekly_target,
            },
        )
    )
    await session.execute(
        update(VipGroupWeek)
        .where(VipGroupWeek.group_id == group.id, VipGroupWeek.week_start == week)
        .values(invites=VipGroupWeek.invites + 1)
        .execution_options(synchronize_session=False)
    )
    reached = await session.execute(
        update(VipGroupWeek)
        .where(
            VipGroupWeek.group_id == group.id,
            VipGroupWeek.week_start == week,
            VipGroupWeek.target > 0,
            VipGroupWeek.invites >= VipGroupWeek.target,
            VipGroupWeek.reached_at.is_(None),
        )
        .values(reached_at=now)
        .execution_options(synchronize_session=False)
    )
    if reached.rowcount == 1:  # type: ignore[attr-defined]
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


async def status(session: AsyncSession, shop: Shop, group: VipGroup, now: datetime | None = None) -> dict[str, Any]:
    now = now or utc_now()
    this_week = week_start(now, shop.reporting_timezone)
    last_week = this_week - timedelta(days=7)
    weeks = {
        w.week_start: w
        for w in (
            await session.execute(
                select(VipGroupWeek).where(
                    VipGroupWeek.group_id == group.id, VipGroupWeek.week_start.in_([this_week, last_week])
                )
            )
        ).scalars()
    }
    last = weeks.get(last_week)
    members = (
        await session.execute(
            select(func.count()).select_from(VipGroupMember).where(VipGroupMember.group_id == group.id)
        )
    ).scalar_one()
    return {
        "invites_this_week": weeks[this_week].invites if this_week in weeks else 0,
        "week_start": this_week.isoformat(),
        "perk_level": group.base_perk_level + (1 if last is not None and last.reached_at is not None else 0),
        "members": int(members),
    }


async def groups_of_member(
    session: AsyncSession, shop_id: str, member_id: str, page: PageRequest
) -> tuple[list[VipGroup], str | None]:
    """The VIP groups a member belongs to, in the order they joined them."""
    query = (
        select(VipGroup)
        .join(VipGroupMember, VipGroupMember.group_id == VipGroup.id)
        .where(VipGroup.shop_id == shop_id, VipGroupMember.member_id == member_id)
    )
    return await paginate(session, query, page, [VipGroup.created_at, VipGroup.id])
