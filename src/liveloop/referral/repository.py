"""Every statement of the referral engine: campaigns and their budgets, invite clicks, referrals and the fraud
checks' counts, rewards, fraud reviews, lottery tickets and draws, VIP groups.

The statements on the busiest paths (the inviter lookup and lock of a conversion, the milestone counts, the
budget charge, the referral of an invitee) are built once, here, at import: SQLAlchemy compiles each of them
once and reuses the compiled form.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import Any

from sqlalchemy import String, bindparam, func, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.kit.ids import new_id
from liveloop.kit.pagination import PageRequest
from liveloop.kit.repository import Repository, locks
from liveloop.kit.sql import insert_ignoring_conflicts, table
from liveloop.kit.time import utc_now
from liveloop.models import (
    Campaign,
    CampaignBudget,
    Coupon,
    CouponBatch,
    Draw,
    DrawTicket,
    FraudReview,
    InviteClick,
    Member,
    MemberDevice,
    Order,
    Referral,
    Reward,
    Shop,
    VipGroup,
    VipGroupMember,
    VipGroupWeek,
)
from liveloop.models.referral import CampaignStatus, DrawStatus, ReferralStatus, RewardStatus, TicketStatus

# --- prepared statements of the hot paths ---------------------------------------------------------------

_INVITER = select(Member).where(Member.id == bindparam("inviter_id"))
_LOCK_INVITER = _INVITER.with_for_update()

_CONVERTED_COUNT = (
    select(func.count())
    .select_from(Referral)
    .where(
        Referral.campaign_id == bindparam("campaign_id"),
        Referral.inviter_id == bindparam("inviter_id"),
        Referral.status == ReferralStatus.CONVERTED,
    )
)
_LIVE_MILESTONES = select(Reward.milestone).where(
    Reward.campaign_id == bindparam("campaign_id"),
    Reward.member_id == bindparam("inviter_id"),
    Reward.milestone.is_not(None),
    Reward.status != RewardStatus.REVERSED,
)

_REFERRAL_OF_INVITEE = (
    select(Referral, Campaign)
    .join(Campaign, Campaign.id == Referral.campaign_id)
    .where(Referral.shop_id == bindparam("shop_id"), Referral.invitee_id == bindparam("invitee_id"))
)

_CHARGE = (
    update(CampaignBudget)
    .where(
        CampaignBudget.campaign_id == bindparam("b_campaign"),
        CampaignBudget.unit == bindparam("b_unit"),
        CampaignBudget.spent + bindparam("cost") <= CampaignBudget.limit_amount,
    )
    .values(spent=CampaignBudget.spent + bindparam("cost"))
    .execution_options(synchronize_session=False)
)

_INSERT_REWARD = table(Reward).insert()


def _as_text(value: str) -> Any:
    """A filter's value compared as the column's text: a status no row has (``?status=typo``) finds nothing,
    where binding it through the column's enum type would fail."""
    return literal(value, String())


# --- campaigns and budgets ------------------------------------------------------------------------------


class CampaignRepository(Repository[Campaign]):
    model = Campaign
    not_found = ("campaign_not_found", "No such campaign in this shop.")

    async def by_id(self, campaign_id: str) -> Campaign | None:
        return await self.session.get(Campaign, campaign_id)

    async def page(self, shop_id: str, page: PageRequest) -> tuple[list[Campaign], str | None]:
        """The shop's campaigns, newest first."""
        return await self.paginate(self.scoped(shop_id), page, [Campaign.created_at, Campaign.id], descending=True)

    async def active(self, shop_id: str) -> list[Campaign]:
        """The shop's active campaigns, newest first (whether each runs now depends on its dates)."""
        query = self.scoped(shop_id).where(Campaign.status == CampaignStatus.ACTIVE)
        return await self.all(query.order_by(Campaign.created_at.desc()))

    async def budgets(self, campaign_id: str) -> list[CampaignBudget]:
        query = select(CampaignBudget).where(CampaignBudget.campaign_id == campaign_id).order_by(CampaignBudget.unit)
        return list((await self.session.execute(query)).scalars())

    async def budget(self, campaign_id: str, unit: str) -> CampaignBudget | None:
        query = select(CampaignBudget).where(CampaignBudget.campaign_id == campaign_id, CampaignBudget.unit == unit)
        return (await self.session.execute(query)).scalar_one_or_none()

    def add_budget(self, campaign_id: str, unit: str, limit: int) -> None:
        self.session.add(
            CampaignBudget(id=new_id("bdg"), campaign_id=campaign_id, unit=unit, limit_amount=limit, spent=0)
        )

    async def charge(self, campaign_id: str, unit: str, cost: int) -> bool:
        """Spend ``cost`` of the budget in ``unit`` if that much is left, atomically; whether it was."""
        return await self.changed(_CHARGE, {"b_campaign": campaign_id, "b_unit": unit, "cost": cost}) == 1

    async def refund(self, campaign_id: str, unit: str, cost: int) -> None:
        await self.session.execute(
            update(CampaignBudget)
            .where(CampaignBudget.campaign_id == campaign_id, CampaignBudget.unit == unit)
            .values(spent=CampaignBudget.spent - cost)
            .execution_options(synchronize_session=False)
        )


# --- invite clicks --------------------------------------------------------------------------------------


class ClickRepository(Repository[InviteClick]):
    model = InviteClick

    async def first_on_device(self, shop_id: str, device_id: str, since: datetime) -> InviteClick | None:
        """The earliest click on this device since ``since``."""
        query = self.scoped(shop_id).where(InviteClick.device_id == device_id, InviteClick.created_at >= since)
        return await self.one_or_none(query.order_by(InviteClick.created_at).limit(1))

    async def inviter_tapped_on(self, inviter: Member, networks: list[str], since: datetime) -> bool:
        """Whether a link was tapped on one of these networks, since ``since``, on one of the inviter's devices."""
        query = (
            select(InviteClick.id)
            .join(
                MemberDevice,
                (MemberDevice.shop_id == InviteClick.shop_id) & (MemberDevice.device_id == InviteClick.device_id),
            )
            .where(
                MemberDevice.member_id == inviter.id,
                InviteClick.shop_id == inviter.shop_id,
                InviteClick.ip_hash.in_(networks),
                InviteClick.created_at >= since,
            )
            .limit(1)
        )
        return (await self.session.execute(query)).first() is not None


async def invite_target(session: AsyncSession, shop_slug: str, code: str) -> tuple[str, str, str, str | None] | None:
    """Who is behind an invite link: (shop id, landing URL, inviter id, VIP group id or None), or None."""
    shop = (await session.execute(select(Shop.id, Shop.landing_url).where(Shop.slug == shop_slug))).one_or_none()
    if shop is None:
        return None
    inviter = (
        await session.execute(select(Member.id).where(Member.shop_id == shop.id, Member.referral_code == code))
    ).scalar_one_or_none()
    if inviter is not None:
        return shop.id, shop.landing_url, inviter, None
    group = (
        await session.execute(
            select(VipGroup.id, VipGroup.owner_id).where(VipGroup.shop_id == shop.id, VipGroup.code == code)
        )
    ).one_or_none()
    if group is not None:
        return shop.id, shop.landing_url, group.owner_id, group.id
    return None


# --- referrals ------------------------------------------------------------------------------------------


class ReferralRepository(Repository[Referral]):
    model = Referral

    async def by_id(self, referral_id: str) -> Referral | None:
        return await self.session.get(Referral, referral_id)

    async def of_invitee(self, shop_id: str, invitee_id: str) -> Referral | None:
        return await self.one_or_none(self.scoped(shop_id).where(Referral.invitee_id == invitee_id))

    async def of_invitee_with_campaign(self, shop_id: str, invitee_id: str) -> tuple[Referral, Campaign] | None:
        row = (await self.session.execute(_REFERRAL_OF_INVITEE, {"shop_id": shop_id, "invitee_id": invitee_id})).first()
        return None if row is None else (row[0], row[1])

    async def qualified_by(self, shop_id: str, order_id: str) -> Referral | None:
        """The referral this order converted."""
        return await self.one_or_none(self.scoped(shop_id).where(Referral.qualifying_order_id == order_id))

    async def converted_count(self, campaign_id: str, inviter_id: str) -> int:
        params = {"campaign_id": campaign_id, "inviter_id": inviter_id}
        return int((await self.session.execute(_CONVERTED_COUNT, params)).scalar_one())

    async def page(
        self,
        shop_id: str,
        page: PageRequest,
        *,
        campaign_id: str | None = None,
        member_id: str | None = None,
        status: str | None = None,
    ) -> tuple[list[Referral], str | None]:
        """The shop's referrals, newest first; ``member_id`` matches either side."""
        query = self.scoped(shop_id)
        if campaign_id:
            query = query.where(Referral.campaign_id == campaign_id)
        if member_id:
            query = query.where(or_(Referral.inviter_id == member_id, Referral.invitee_id == member_id))
        if status:
            query = query.where(Referral.status == _as_text(status))
        return await self.paginate(query, page, [Referral.created_at, Referral.id], descending=True)

    async def leaderboard(
        self, campaign_id: str, *, limit: int, inviter_ids: list[str] | None, since: datetime | None
    ) -> list[tuple[Member, int]]:
        """The inviters with the most converted referrals (the earliest to get there first), and their counts."""
        converted = func.count(Referral.id)
        query = (
            select(Member, converted)
            .join(Referral, Referral.inviter_id == Member.id)
            .where(Referral.campaign_id == campaign_id, Referral.status == ReferralStatus.CONVERTED)
            .group_by(Member.id)
            .order_by(converted.desc(), func.min(Referral.converted_at), Member.id)
            .limit(limit)
        )
        if inviter_ids is not None:
            query = query.where(Referral.inviter_id.in_(inviter_ids))
        if since is not None:
            query = query.where(Referral.converted_at >= since)
        return [(member, int(count)) for member, count in (await self.session.execute(query)).all()]

    # -- what the fraud checks count --------------------------------------------------------------------------
    async def _count(self, *where: Any) -> int:
        return int((await self.session.execute(select(func.count()).select_from(Referral).where(*where))).scalar_one())

    async def count_on_devices(self, shop_id: str, devices: list[str], since: datetime) -> int:
        return await self._count(
            Referral.shop_id == shop_id, Referral.device_id.in_(devices), Referral.created_at >= since
        )

    async def count_from_network(self, shop_id: str, ip_hash: str, since: datetime) -> int:
        return await self._count(Referral.shop_id == shop_id, Referral.ip_hash == ip_hash, Referral.created_at >= since)

    async def count_of_inviter(self, campaign_id: str, inviter_id: str, start: datetime, end: datetime) -> int:
        """The inviter's referrals in the campaign made in [start, end) that are not rejected or reversed."""
        return await self._count(
            Referral.campaign_id == campaign_id,
            Referral.inviter_id == inviter_id,
            Referral.status.in_((ReferralStatus.PENDING, ReferralStatus.HELD, ReferralStatus.CONVERTED)),
            Referral.created_at >= start,
            Referral.created_at < end,
        )

    # -- what the shop's totals count -------------------------------------------------------------------------
    async def totals(self, shop_id: str, by: Any) -> dict[str, int]:
        """How many of the shop's referrals have each value of one column (``Referral.status``, ``.channel``)."""
        query = select(by, func.count()).where(Referral.shop_id == shop_id).group_by(by)
        return {str(value): int(count) for value, count in (await self.session.execute(query)).all()}

    async def reason_counts(self, shop_id: str) -> dict[str, int]:
        """How often each fraud reason code stands on the shop's referrals."""
        counts: dict[str, int] = {}
        for (codes,) in await self.session.execute(select(Referral.reason_codes).where(Referral.shop_id == shop_id)):
            for code in codes:
                counts[code] = counts.get(code, 0) + 1
        return counts


# --- rewards --------------------------------------------------------------------------------------------


class RewardRepository(Repository[Reward]):
    model = Reward

    async def totals_by_status(self, shop_id: str) -> dict[str, int]:
        query = select(Reward.status, func.count()).where(Reward.shop_id == shop_id).group_by(Reward.status)
        return {str(status): int(count) for status, count in (await self.session.execute(query)).all()}

    async def insert(self, reward: Reward) -> None:
        """Write a new reward row as it is (a Core insert: the ORM does not track it)."""
        await self.session.execute(_INSERT_REWARD, {c.key: getattr(reward, c.key) for c in table(Reward).c})

    async def live_milestones(self, campaign_id: str, inviter_id: str) -> set[int]:
        """The milestone thresholds the inviter holds a live (not reversed) reward for."""
        params = {"campaign_id": campaign_id, "inviter_id": inviter_id}
        return {m for m in (await self.session.execute(_LIVE_MILESTONES, params)).scalars() if m is not None}

    async def live_milestones_above(self, campaign_id: str, inviter_id: str, count: int) -> list[Reward]:
        """The inviter's live milestone rewards whose threshold is above ``count``."""
        query = select(Reward).where(
            Reward.campaign_id == campaign_id,
            Reward.member_id == inviter_id,
            Reward.milestone > count,
            Reward.status != RewardStatus.REVERSED,
        )
        return await self.all(query)

    async def live_of_referral(self, referral_id: str) -> list[Reward]:
        query = select(Reward).where(Reward.referral_id == referral_id, Reward.status != RewardStatus.REVERSED)
        return await self.all(query)

    async def page_of_member(self, shop_id: str, member_id: str, page: PageRequest) -> tuple[list[Reward], str | None]:
        """A member's rewards, newest first."""
        query = self.scoped(shop_id).where(Reward.member_id == member_id)
        return await self.paginate(query, page, [Reward.created_at, Reward.id], descending=True)

    async def due(self, now: datetime, limit: int) -> list[tuple[Reward, str]]:
        """Held rewards whose release time has come, earliest first, with their member's market."""
        query = (
            select(Reward, Member.market)
            .join(Member, Member.id == Reward.member_id)
            .where(Reward.status == RewardStatus.PENDING, Reward.release_at <= now)
            .order_by(Reward.release_at)
            .limit(limit)
        )
        return [(reward, market) for reward, market in (await self.session.execute(query)).all()]


# --- fraud reviews --------------------------------------------------------------------------------------


class ReviewRepository(Repository[FraudReview]):
    model = FraudReview
    not_found = ("review_not_found", "No such review in this shop.")

    async def page(self, shop_id: str, page: PageRequest, status: str | None) -> tuple[list[FraudReview], str | None]:
        """The shop's reviews (of one status, or all), oldest first."""
        query = self.scoped(shop_id)
        if status:
            query = query.where(FraudReview.status == _as_text(status))
        return await self.paginate(query, page, [FraudReview.created_at, FraudReview.id])


# --- lottery tickets and draws --------------------------------------------------------------------------


class TicketRepository(Repository[DrawTicket]):
    model = DrawTicket

    async def of_order(self, campaign_id: str, order_id: str) -> DrawTicket | None:
        query = select(DrawTicket).where(DrawTicket.campaign_id == campaign_id, DrawTicket.order_id == order_id)
        return await self.one_or_none(query)

    async def _active(self, *where: Any) -> list[DrawTicket]:
        query = select(DrawTicket).where(*where, DrawTicket.status == TicketStatus.ACTIVE)
        return await self.all(query.order_by(DrawTicket.id))

    async def active_of_order(self, order_id: str) -> list[DrawTicket]:
        """The order's tickets that are neither void nor drawn, in id order."""
        return await self._active(DrawTicket.order_id == order_id)

    async def active_of_referral(self, referral_id: str) -> list[DrawTicket]:
        return await self._active(DrawTicket.referral_id == referral_id)

    async def active_of_campaign(self, campaign_id: str) -> list[DrawTicket]:
        return await self._active(DrawTicket.campaign_id == campaign_id)

    async def page_of_member(self, member_id: str, page: PageRequest) -> tuple[list[DrawTicket], str | None]:
        """A member's tickets, in the order they were earned."""
        query = select(DrawTicket).where(DrawTicket.member_id == member_id)
        return await self.paginate(query, page, [DrawTicket.created_at, DrawTicket.id])


class DrawRepository(Repository[Draw]):
    model = Draw
    not_found = ("draw_not_found", "No such draw.")

    async def by_id_or_raise(self, draw_id: str) -> Draw:
        """A draw of any shop (what the public page shows), or the 404."""
        draw = await self.one_or_none(select(Draw).where(Draw.id == draw_id))
        if draw is None:
            raise self.missing()
        return draw

    async def claim(self, draw_id: str) -> bool:
        """Move a committed draw to ``drawing``; False when another request has it (or it was drawn)."""
        statement = (
            table(Draw)
            .update()
            .where(Draw.id == draw_id, Draw.status == DrawStatus.COMMITTED)
            .values(status=DrawStatus.DRAWING)
        )
        return await self.changed(statement) == 1


# --- VIP groups -----------------------------------------------------------------------------------------


class GroupRepository(Repository[VipGroup]):
    model = VipGroup
    not_found = ("group_not_found", "No such group in this shop.")

    async def by_id(self, group_id: str) -> VipGroup | None:
        return await self.session.get(VipGroup, group_id)

    async def by_code(self, shop_id: str, code: str) -> VipGroup | None:
        return await self.one_or_none(self.scoped(shop_id).where(VipGroup.code == code))

    async def join(self, group_id: str, member_id: str) -> None:
        """Make the member one of the group's (nothing when they are already)."""
        row = {"id": new_id("gmb"), "group_id": group_id, "member_id": member_id, "created_at": utc_now()}
        await self.session.execute(insert_ignoring_conflicts(self.session, table(VipGroupMember), row))

    async def member_ids(self, group_id: str) -> list[str]:
        query = select(VipGroupMember.member_id).where(VipGroupMember.group_id == group_id)
        return list((await self.session.execute(query)).scalars())

    async def member_count(self, group_id: str) -> int:
        query = select(func.count()).select_from(VipGroupMember).where(VipGroupMember.group_id == group_id)
        return int((await self.session.execute(query)).scalar_one())

    async def weeks(self, group_id: str, starts: Sequence[date]) -> dict[date, VipGroupWeek]:
        """The group's weeks that start on these days, by start."""
        query = select(VipGroupWeek).where(VipGroupWeek.group_id == group_id, VipGroupWeek.week_start.in_(starts))
        return {w.week_start: w for w in (await self.session.execute(query)).scalars()}

    async def count_invite(self, group_id: str, week: date, target: int, now: datetime) -> bool:
        """One more invite in the group's week; whether this one reached the week's target (once per week)."""
        first = {"id": new_id("gwk"), "group_id": group_id, "week_start": week, "invites": 0, "target": target}
        await self.session.execute(insert_ignoring_conflicts(self.session, table(VipGroupWeek), first))
        this_week = (VipGroupWeek.group_id == group_id, VipGroupWeek.week_start == week)
        await self.session.execute(
            update(VipGroupWeek)
            .where(*this_week)
            .values(invites=VipGroupWeek.invites + 1)
            .execution_options(synchronize_session=False)
        )
        reached = (
            update(VipGroupWeek)
            .where(
                *this_week,
                VipGroupWeek.target > 0,
                VipGroupWeek.invites >= VipGroupWeek.target,
                VipGroupWeek.reached_at.is_(None),
            )
            .values(reached_at=now)
            .execution_options(synchronize_session=False)
        )
        return await self.changed(reached) == 1

    async def page_of_member(
        self, shop_id: str, member_id: str, page: PageRequest
    ) -> tuple[list[VipGroup], str | None]:
        """The groups a member belongs to, in the order they were made."""
        query = (
            self.scoped(shop_id)
            .join(VipGroupMember, VipGroupMember.group_id == VipGroup.id)
            .where(VipGroupMember.member_id == member_id)
        )
        return await self.paginate(query, page, [VipGroup.created_at, VipGroup.id])


# --- members, orders and coupons, as the referral engine reads them -----------------------------------------


async def member(session: AsyncSession, member_id: str) -> Member | None:
    return await session.get(Member, member_id)


async def inviter_for_conversion(session: AsyncSession, inviter_id: str) -> Member:
    """The inviter, locked (on PostgreSQL) so that conversions of one inviter run one at a time."""
    query = _LOCK_INVITER if locks(session) else _INVITER
    return (await session.execute(query, {"inviter_id": inviter_id})).scalar_one()


async def shares_a_device(session: AsyncSession, member_id: str, devices: list[str]) -> bool:
    """Whether the member has used one of these devices."""
    query = (
        select(MemberDevice.id).where(MemberDevice.member_id == member_id, MemberDevice.device_id.in_(devices)).limit(1)
    )
    return (await session.execute(query)).first() is not None


async def signed_up_on(session: AsyncSession, member_id: str, networks: list[str], since: datetime) -> bool:
    """Whether the member signed up, since ``since``, from one of these networks (keyed IP hashes)."""
    query = (
        select(Member.id)
        .where(Member.id == member_id, Member.signup_ip_hash.in_(networks), Member.created_at >= since)
        .limit(1)
    )
    return (await session.execute(query)).first() is not None


async def order(session: AsyncSession, order_id: str) -> Order | None:
    return await session.get(Order, order_id)


async def paid_with(session: AsyncSession, member_id: str, payment_fingerprint: str) -> bool:
    """Whether the member has an order paid with this payment method."""
    query = (
        select(Order.id).where(Order.member_id == member_id, Order.payment_fingerprint == payment_fingerprint).limit(1)
    )
    return (await session.execute(query)).first() is not None


async def first_paid_order(session: AsyncSession, member_id: str) -> Order | None:
    """The member's earliest order that is paid (and not refunded)."""
    query = select(Order).where(Order.member_id == member_id, Order.status == "paid").order_by(Order.paid_at).limit(1)
    return (await session.execute(query)).scalar_one_or_none()


async def orders_paid_since(session: AsyncSession, shop_id: str, member_id: str, since: datetime) -> list[Order]:
    """The member's orders made since ``since`` that are paid (or refunded in part), by payment time."""
    query = (
        select(Order)
        .where(
            Order.shop_id == shop_id,
            Order.member_id == member_id,
            Order.status.in_(("paid", "partially_refunded")),
            Order.created_at >= since,
        )
        .order_by(Order.paid_at, Order.id)
    )
    return list((await session.execute(query)).scalars())


async def coupon_batch(session: AsyncSession, batch_id: str) -> CouponBatch | None:
    return await session.get(CouponBatch, batch_id)


async def coupon(session: AsyncSession, coupon_id: str) -> Coupon | None:
    return await session.get(Coupon, coupon_id)
