"""Referral campaigns: clicks, attribution, conversion, two-sided rewards, milestones, refunds, review."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.coupons import service as coupons
from liveloop.events.service import emit
from liveloop.kit.errors import Conflict, NotFound, Unprocessable
from liveloop.kit.ids import new_id
from liveloop.kit.pagination import PageRequest, paginate
from liveloop.kit.sql import for_update
from liveloop.kit.time import utc_now
from liveloop.markets import service as markets
from liveloop.markets.presets import PRESETS
from liveloop.members import service as members
from liveloop.models import (
    Campaign,
    CampaignBudget,
    EventType,
    FraudReview,
    InviteClick,
    Member,
    Order,
    Referral,
    Reward,
    Shop,
    VipGroup,
)
from liveloop.referral import fraud, groups
from liveloop.referral.rewards import (
    BudgetExhausted,
    charge_rewards,
    grant_reward,
    hold_until,
    release_reward,
    reverse_reward,
)
from liveloop.referral.schemas import CampaignCreate, CampaignUpdate

# --- campaigns -----------------------------------------------------------------------------------------


async def create_campaign(session: AsyncSession, shop_id: str, data: CampaignCreate) -> Campaign:
    await markets.check_known(session, shop_id, set(data.markets) | set(data.market_rewards))
    market_rewards = {k: v.model_dump(exclude_none=True) for k, v in data.market_rewards.items()}
    if data.use_market_presets:
        presets = {m.code: m.reward_presets for m in await markets.list_markets(session, shop_id)}
        for code in data.markets or sorted(presets):
            filled = market_rewards.setdefault(code, {})
            for role in ("inviter", "invitee"):
                if role not in filled and role in presets.get(code, PRESETS.get(code, {}).get("reward_presets", {})):
                    filled[role] = presets[code][role]
    if not (data.inviter_reward or data.invitee_reward or market_rewards or data.milestones):
        raise Unprocessable(
            "A campaign needs at least one reward: inviter_reward, invitee_reward, "
            "market_rewards, milestones or use_market_presets.",
            code="no_rewards",
        )
    for spec in _all_specs(data, market_rewards):
        await check_spec(session, shop_id, spec)
    campaign = Campaign(
        id=new_id("cmp"),
        shop_id=shop_id,
        name=data.name,
        status=data.status,
        conversion_event=data.conversion_event,
        attribution_window_days=data.attribution_window_days,
        reward_timing=data.reward_timing,
        inviter_reward=data.inviter_reward.model_dump() if data.inviter_reward else {},
        invitee_reward=data.invitee_reward.model_dump() if data.invitee_reward else {},
        milestones=sorted((m.model_dump() for m in data.milestones), key=lambda m: m["threshold"]),
        market_rewards=market_rewards,
        markets=data.markets,
        budget_units=sorted(data.budgets),
        daily_cap_per_inviter=data.daily_cap_per_inviter,
        min_order_minor=data.min_order_minor,
        lottery_enabled=data.lottery_enabled,
        fraud_velocity_per_hour=data.fraud_velocity_per_hour,
        starts_at=data.starts_at,
        ends_at=data.ends_at,
        created_at=utc_now(),
    )
    session.add(campaign)
    await session.flush()
    for unit, limit in data.budgets.items():
        session.add(CampaignBudget(id=new_id("bdg"), campaign_id=campaign.id, unit=unit, limit_amount=limit, spent=0))
    await session.flush()
    return campaign


def _all_specs(data: CampaignCreate, market_rewards: dict[str, Any]) -> list[dict[str, Any]]:
    specs = [s.model_dump() for s in (data.inviter_reward, data.invitee_reward) if s is not None]
    specs += [m.reward.model_dump() for m in data.milestones]
    specs += [spec for roles in market_rewards.values() for spec in roles.values()]
    return specs


async def check_spec(session: AsyncSession, shop_id: str, spec: dict[str, Any]) -> None:
    if spec.get("type") == "coupon":
        await coupons.get_batch(session, shop_id, spec["batch_id"])


async def update_campaign(session: AsyncSession, campaign: Campaign, data: CampaignUpdate) -> Campaign:
    allowed = {
        "draft": {"active", "ended"},
        "active": {"paused", "ended"},
        "paused": {"active", "ended"},
        "ended": set(),
    }
    if data.status and data.status != campaign.status:
        if data.status not in allowed[campaign.status]:
            raise Conflict(f"A {campaign.status} campaign cannot become {data.status}.", code="invalid_transition")
        campaign.status = data.status
    if data.name:
        campaign.name = data.name
    if data.daily_cap_per_inviter is not None:
        campaign.daily_cap_per_inviter = data.daily_cap_per_inviter
    if data.ends_at is not None:
        campaign.ends_at = data.ends_at
    if data.milestones is not None:
        thresholds = [m.threshold for m in data.milestones]
        if len(set(thresholds)) != len(thresholds):
            raise Unprocessable("Milestone thresholds must be distinct.", code="invalid_milestones")
        campaign.milestones = sorted((m.model_dump() for m in data.milestones), key=lambda m: m["threshold"])
    for unit, limit in (data.budgets or {}).items():
        row = (
            await session.execute(
                select(CampaignBudget).where(CampaignBudget.campaign_id == campaign.id, CampaignBudget.unit == unit)
            )
        ).scalar_one_or_none()
        if row is None:
            session.add(
                CampaignBudget(id=new_id("bdg"), campaign_id=campaign.id, unit=unit, limit_amount=limit, spent=0)
            )
            campaign.budget_units = sorted({*campaign.budget_units, unit})
        elif limit < row.spent:
            raise Unprocessable(f"{unit} budget cannot go below what is spent ({row.spent}).", code="budget_too_low")
        else:
            row.limit_amount = limit
    campaign.updated_at = utc_now()
    await session.flush()
    return campaign


async def get_campaign(session: AsyncSession, shop_id: str, campaign_id: str) -> Campaign:
    campaign = (
        await session.execute(select(Campaign).where(Campaign.shop_id == shop_id, Campaign.id == campaign_id))
    ).scalar_one_or_none()
    if campaign is None:
        raise NotFound("No such campaign in this shop.", code="campaign_not_found")
    return campaign


async def list_campaigns(session: AsyncSession, shop_id: str, page: PageRequest) -> tuple[list[Campaign], str | None]:
    """Campaigns, newest first."""
    query = select(Campaign).where(Campaign.shop_id == shop_id)
    return await paginate(session, query, page, [Campaign.created_at, Campaign.id], descending=True)


async def budgets(session: AsyncSession, campaign_id: str) -> list[CampaignBudget]:
    return list(
        (
            await session.execute(
                select(CampaignBudget).where(CampaignBudget.campaign_id == campaign_id).order_by(CampaignBudget.unit)
            )
        ).scalars()
    )


def is_running(campaign: Campaign, now: datetime) -> bool:
    return (
        campaign.status == "active"
        and (campaign.starts_at is None or campaign.starts_at <= now)
        and (campaign.ends_at is None or now < campaign.ends_at)
    )


async def campaign_for(session: AsyncSession, shop_id: str, market: str, now: datetime) -> Campaign | None:
    """The running campaign for a market: the most recently created one that targets it."""
    for campaign in (
        await session.execute(
            select(Campaign)
            .where(Campaign.shop_id == shop_id, Campaign.status == "active")
            .order_by(Campaign.created_at.desc())
        )
    ).scalars():
        if is_running(campaign, now) and (not campaign.markets or market in campaign.markets):
            return campaign
    return None


# --- attribution ---------------------------------------------------------------------------------------


async def attribute_signup(
    session: AsyncSession,
    shop: Shop,
    invitee: Member,
    *,
    click_id: str | None = None,
    code: str | None = None,
    channel: str | None = None,
    show_id: str | None = None,
    host_id: str | None = None,
    device_id: str | None = None,
    ip_hash: str | None = None,
    existing_customer: bool = False,
) -> Referral | None:
    """Attach a new member to the member who invited them (first touch within the window), or to nobody."""
    now = utc_now()
    click: InviteClick | None = None
    inviter: Member | None = None
    group: VipGroup | None = None
    if click_id:
        click = (
            await session.execute(select(InviteClick).where(InviteClick.shop_id == shop.id, InviteClick.id == click_id))
        ).scalar_one_or_none()
        if click is None:
            raise Unprocessable(
                "Unknown click_id; pass the ll_click value from the landing URL as it is.", code="unknown_click"
            )
    if device_id:
        # First touch: the earliest click on this device within any campaign window wins over later ones.
        first = (
            await session.execute(
                select(InviteClick)
                .where(
                    InviteClick.shop_id == shop.id,
                    InviteClick.device_id == device_id,
                    InviteClick.created_at >= now - timedelta(days=365),
                )
                .order_by(InviteClick.created_at)
                .limit(1)
            )
        ).scalar_one_or_none()
        if first is not None and (click is None or first.created_at < click.created_at):
            click = first
    if click is not None:
        inviter = await session.get(Member, click.inviter_id) if click.inviter_id else None
        group = await session.get(VipGroup, click.group_id) if click.group_id else None
    elif code:
        inviter = await members.find_by_code(session, shop.id, code)
        if inviter is None:
            group = await groups.find_by_code(session, shop.id, code)
            if group is None:
                raise Unprocessable(f"No member or group has the invite code {code!r}.", code="unknown_invite_code")
            inviter = await session.get(Member, group.owner_id)
    if inviter is None:
        return None
    campaign = (await session.get(Campaign, group.campaign_id)) if group else None
    if campaign is None or not is_running(campaign, now):
        campaign = await campaign_for(session, shop.id, invitee.market, now)
    if campaign is None:
        return None
    devices = await members.device_ids(session, invitee.id)
    verdict = await fraud.check_signup(
        session,
        campaign=campaign,
        inviter=inviter,
        invitee=invitee,
        invitee_devices=devices,
        ip_hash=ip_hash,
        existing_customer=existing_customer,
        shop_timezone=shop.reporting_timezone,
        now=now,
        click_ip_hash=click.ip_hash if click is not None else None,
    )
    if click is not None and click.created_at < now - timedelta(days=campaign.attribution_window_days):
        verdict.add("click_expired")
    outcome = verdict.outcome
    referral = Referral(
        id=new_id("ref"),
        shop_id=shop.id,
        campaign_id=campaign.id,
        inviter_id=inviter.id,
        invitee_id=invitee.id,
        click_id=click.id if click else None,
        group_id=group.id if group else None,
        channel=(click.channel if click else channel) or "code",
        show_id=(click.show_id if click else show_id),
        host_id=(click.host_id if click else host_id),
        device_id=device_id or (devices[0] if devices else None),
        ip_hash=ip_hash,
        status={"allow": "pending", "hold": "held", "reject": "rejected"}[outcome],
        reason_codes=verdict.reasons,
        created_at=now,
    )
    session.add(referral)
    await session.flush()
    if outcome == fraud.HOLD:
        session.add(
            FraudReview(
                id=new_id("rev"), shop_id=shop.id, referral_id=referral.id, reason_codes=verdict.reasons, created_at=now
            )
        )
        await session.flush()
    await emit(
        session,
        shop.id,
        {
            fraud.ALLOW: EventType.REFERRAL_CREATED,
            fraud.HOLD: EventType.REFERRAL_HELD,
            fraud.REJECT: EventType.REFERRAL_REJECTED,
        }[outcome],
        referral_payload(referral),
    )
    if outcome != fraud.REJECT and group is not None:
        await groups.count_invite(session, shop, group, invitee.id, now)
    if referral.status == "pending" and campaign.conversion_event == "signup":
        await convert(session, referral, order=None)
    return referral


def referral_payload(referral: Referral) -> dict[str, Any]:
    return {
        "referral_id": referral.id,
        "campaign_id": referral.campaign_id,
        "inviter_id": referral.inviter_id,
        "invitee_id": referral.invitee_id,
        "channel": referral.channel,
        "show_id": referral.show_id,
        "host_id": referral.host_id,
        "group_id": referral.group_id,
        "status": referral.status,
        "reason_codes": referral.reason_codes,
    }


# --- conversion ----------------------------------------------------------------------------------------


async def referral_of(session: AsyncSession, shop_id: str, invitee_id: str) -> Referral | None:
    return (
        await session.execute(select(Referral).where(Referral.shop_id == shop_id, Referral.invitee_id == invitee_id))
    ).scalar_one_or_none()


def _spec(campaign: Campaign, role: str, market: str) -> dict[str, Any] | None:
    by_market = (campaign.market_rewards or {}).get(market, {})
    spec = by_market.get(role) or (campaign.inviter_reward if role == "inviter" else campaign.invitee_reward)
    return dict(spec) if spec else None


_INVITER = select(Member).where(Member.id == bindparam("inviter_id"))
_LOCK_INVITER = _INVITER.with_for_update()


async def convert(
    session: AsyncSession, referral: Referral, *, order: Order | None, check_payment: bool = True
) -> list[Reward]:
    """The invitee did what the campaign asks: reward both sides, check milestones, tell the outbox."""
    if referral.status != "pending":
        return []
    campaign = await session.get(Campaign, referral.campaign_id)
    # Conversions of one inviter run one at a time, so each sees the others' counts when checking milestones.
    lock = _LOCK_INVITER if for_update(session) else _INVITER
    inviter = (await session.execute(lock, {"inviter_id": referral.inviter_id})).scalar_one()
    invitee = await session.get(Member, referral.invitee_id)
    assert campaign is not None
    assert invitee is not None
    # An operator who approved a held referral has settled the payment question already.
    if check_payment and order is not None and await fraud.same_payment(session, inviter.id, order):
        referral.status = "held"
        referral.reason_codes = [*referral.reason_codes, "same_payment"]
        referral.qualifying_order_id = order.id
        session.add(
            FraudReview(
                id=new_id("rev"),
                shop_id=referral.shop_id,
                referral_id=referral.id,
                reason_codes=referral.reason_codes,
                created_at=utc_now(),
            )
        )
        await session.flush()
        await emit(session, referral.shop_id, EventType.REFERRAL_HELD, referral_payload(referral))
        return []
    window = (await markets.terms(session, referral.shop_id, invitee.market)).return_window_days
    until = hold_until(campaign, order.paid_at if order else None, window)
    granted: list[Reward] = []
    try:
        async with session.begin_nested():
            grants = [
                (role, m, _spec(campaign, role, m.market)) for role, m in (("inviter", inviter), ("invitee", invitee))
            ]
            if referral.group_id:
                group = await session.get(VipGroup, referral.group_id)
                if group is not None and group.extra_offer:
                    grants.append(("vip_offer", invitee, dict(group.extra_offer)))
            for role, member, spec in grants:
                if spec:
                    granted.append(
                        await grant_reward(
                            session,
                            shop_id=referral.shop_id,
                            campaign=campaign,
                            member_id=member.id,
                            member_market=member.market,
                            spec=spec,
                            role=role,
                            referral_id=referral.id,
                            hold_until=until,
                            charge_now=False,
                        )
                    )
            # Charged last, so the campaign's budget row is locked only for the rest of the transaction.
            await charge_rewards(session, campaign, granted)
    except BudgetExhausted:
        referral.status = "rejected"
        referral.reason_codes = [*referral.reason_codes, "budget_exhausted"]
        await session.flush()
        await emit(session, referral.shop_id, EventType.REFERRAL_REJECTED, referral_payload(referral))
        return []
    referral.status = "converted"
    referral.converted_at = utc_now()
    referral.qualifying_order_id = order.id if order else None
    await session.flush()
    granted += await _check_milestones(session, campaign, inviter, until)
    await emit(
        session,
        referral.shop_id,
        EventType.REFERRAL_CONVERTED,
        {**referral_payload(referral), "rewards": [r.id for r in granted]},
    )
    return granted


_CONVERTED_COUNT = (
    select(func.count())
    .select_from(Referral)
    .where(
        Referral.campaign_id == bindparam("campaign_id"),
        Referral.inviter_id == bindparam("inviter_id"),
        Referral.status == "converted",
    )
)
_LIVE_MILESTONES = select(Reward.milestone).where(
    Reward.campaign_id == bindparam("campaign_id"),
    Reward.member_id == bindparam("inviter_id"),
    Reward.milestone.is_not(None),
    Reward.status != "reversed",
)


async def converted_count(session: AsyncSession, campaign_id: str, inviter_id: str) -> int:
    params = {"campaign_id": campaign_id, "inviter_id": inviter_id}
    return int((await session.execute(_CONVERTED_COUNT, params)).scalar_one())


async def _check_milestones(
    session: AsyncSession, campaign: Campaign, inviter: Member, until: datetime | None
) -> list[Reward]:
    if not campaign.milestones:
        return []
    count = await converted_count(session, campaign.id, inviter.id)
    if count < min(tier["threshold"] for tier in campaign.milestones):
        return []
    params = {"campaign_id": campaign.id, "inviter_id": inviter.id}
    live = set((await session.execute(_LIVE_MILESTONES, params)).scalars())
    granted = []
    for tier in campaign.milestones:
        if tier["threshold"] <= count and tier["threshold"] not in live:
            try:
                async with session.begin_nested():
                    reward = await grant_reward(
                        session,
                        shop_id=campaign.shop_id,
                        campaign=campaign,
                        member_id=inviter.id,
                        member_market=inviter.market,
                        spec=dict(tier["reward"]),
                        role="milestone",
                        milestone=tier["threshold"],
                        hold_until=until,
                    )
            except BudgetExhausted:
                continue
            granted.append(reward)
            await emit(
                session,
                campaign.shop_id,
                EventType.MILESTONE_REACHED,
                {
                    "campaign_id": campaign.id,
                    "member_id": inviter.id,
                    "threshold": tier["threshold"],
                    "reward_id": reward.id,
                },
            )
    return granted


async def _recompute_milestones(session: AsyncSession, campaign: Campaign, inviter_id: str, reason: str) -> None:
    count = await converted_count(session, campaign.id, inviter_id)
    for reward in (
        await session.execute(
            select(Reward).where(
                Reward.campaign_id == campaign.id,
                Reward.member_id == inviter_id,
                Reward.milestone > count,
                Reward.status != "reversed",
            )
        )
    ).scalars():
        await reverse_reward(session, reward, reason)


async def reverse_referral(session: AsyncSession, referral: Referral, reason: str) -> None:
    """Take back both sides' rewards, the lottery tickets the referral earned and any milestone the inviter no
    longer reaches."""
    from liveloop.referral import lottery

    if referral.status not in ("converted", "held", "pending"):
        return
    was_converted = referral.status == "converted"
    for reward in (
        await session.execute(select(Reward).where(Reward.referral_id == referral.id, Reward.status != "reversed"))
    ).scalars():
        await reverse_reward(session, reward, reason)
    await lottery.void_referral_tickets(session, referral, reason)
    referral.status = "reversed" if was_converted else "rejected"
    referral.reversed_at = utc_now()
    referral.reason_codes = [*referral.reason_codes, reason]
    await session.flush()
    if was_converted:
        campaign = await session.get(Campaign, referral.campaign_id)
        assert campaign is not None
        await _recompute_milestones(session, campaign, referral.inviter_id, reason)
    await emit(session, referral.shop_id, EventType.REFERRAL_REVERSED, referral_payload(referral))


# --- triggers from orders and views ----------------------------------------------------------------------


_REFERRAL_OF_INVITEE = (
    select(Referral, Campaign)
    .join(Campaign, Campaign.id == Referral.campaign_id)
    .where(Referral.shop_id == bindparam("shop_id"), Referral.invitee_id == bindparam("invitee_id"))
)


async def on_order_paid(session: AsyncSession, shop: Shop, order: Order, member: Member, *, first_paid: bool) -> None:
    row = (await session.execute(_REFERRAL_OF_INVITEE, {"shop_id": shop.id, "invitee_id": member.id})).first()
    if row is None:
        return
    referral, campaign = row
    if (
        first_paid
        and referral.status == "pending"
        and campaign.conversion_event == "first_paid_order"
        and order.total_minor >= campaign.min_order_minor
    ):
        await convert(session, referral, order=order)
    if campaign.lottery_enabled and referral.status in ("pending", "converted"):
        from liveloop.referral import lottery

        await lottery.award_ticket(session, campaign, referral, order)


async def on_order_refunded(session: AsyncSession, shop: Shop, order: Order) -> None:
    """A refund inside the return window takes the referral's rewards back when the order no longer qualifies.

    A fully refunded order's ticket is void in any case; when the refund (full or partial) reverses the
    referral, every ticket the referral earned goes with it (see :func:`reverse_referral`).
    """
    from liveloop.referral import lottery

    if order.status == "refunded":
        await lottery.void_ticket(session, order)
    referral = (
        await session.execute(
            select(Referral).where(Referral.shop_id == shop.id, Referral.qualifying_order_id == order.id)
        )
    ).scalar_one_or_none()
    if referral is None or referral.status != "converted":
        return
    campaign = await session.get(Campaign, referral.campaign_id)
    invitee = await session.get(Member, referral.invitee_id)
    assert campaign is not None
    assert invitee is not None
    window = (await markets.terms(session, shop.id, invitee.market)).return_window_days
    if order.paid_at and (order.refunded_at or utc_now()) > order.paid_at + timedelta(days=window):
        return
    net = order.total_minor - order.refunded_minor
    if order.status == "refunded" or net < max(campaign.min_order_minor, 1):
        await reverse_referral(session, referral, "order_refunded")


async def on_effective_view(session: AsyncSession, shop: Shop, member: Member) -> list[Reward]:
    referral = await referral_of(session, shop.id, member.id)
    if referral is None or referral.status != "pending":
        return []
    campaign = await session.get(Campaign, referral.campaign_id)
    if campaign is None or campaign.conversion_event != "first_view":
        return []
    return await convert(session, referral, order=None)


# --- review queue --------------------------------------------------------------------------------------


async def list_reviews(
    session: AsyncSession, shop_id: str, page: PageRequest, status: str | None = "pending"
) -> tuple[list[FraudReview], str | None]:
    """The review queue, oldest first (the order to work through it)."""
    query = select(FraudReview).where(FraudReview.shop_id == shop_id)
    if status:
        query = query.where(FraudReview.status == status)
    return await paginate(session, query, page, [FraudReview.created_at, FraudReview.id])


async def decide_review(
    session: AsyncSession, shop: Shop, review_id: str, *, approve: bool, note: str | None, decided_by: str
) -> FraudReview:
    review = (
        await session.execute(select(FraudReview).where(FraudReview.shop_id == shop.id, FraudReview.id == review_id))
    ).scalar_one_or_none()
    if review is None:
        raise NotFound("No such review in this shop.", code="review_not_found")
    if review.status != "pending":
        if review.status == ("approved" if approve else "rejected"):
            return review  # the same decision twice changes nothing
        raise Conflict(f"This review was {review.status} already.", code="review_decided")
    referral = await session.get(Referral, review.referral_id)
    assert referral is not None
    review.status = "approved" if approve else "rejected"
    review.note = note
    review.decided_at = utc_now()
    review.decided_by = decided_by
    if approve:
        referral.status = "pending"
        await session.flush()
        campaign = await session.get(Campaign, referral.campaign_id)
        assert campaign is not None
        order = await session.get(Order, referral.qualifying_order_id) if referral.qualifying_order_id else None
        if order is None and campaign.conversion_event == "first_paid_order":
            order = (
                await session.execute(
                    select(Order)
                    .where(Order.member_id == referral.invitee_id, Order.status == "paid")
                    .order_by(Order.paid_at)
                    .limit(1)
                )
            ).scalar_one_or_none()
        if campaign.conversion_event == "signup" or order is not None:
            referral.qualifying_order_id = None
            await convert(session, referral, order=order, check_payment=False)
        if campaign.lottery_enabled and referral.status in ("pending", "converted"):
            # Orders paid while the referral was held earned no ticket: they earn it now, once each.
            from liveloop.referral import lottery

            await lottery.award_missed_tickets(session, campaign, referral)
    else:
        await reverse_referral(session, referral, "fraud_confirmed")
    await session.flush()
    return review


# --- reading -------------------------------------------------------------------------------------------


async def list_referrals(
    session: AsyncSession,
    shop_id: str,
    page: PageRequest,
    *,
    campaign_id: str | None = None,
    inviter_id: str | None = None,
    status: str | None = None,
) -> tuple[list[Referral], str | None]:
    """Referrals, newest first; ``inviter_id`` matches either side of the referral."""
    query = select(Referral).where(Referral.shop_id == shop_id)
    if campaign_id:
        query = query.where(Referral.campaign_id == campaign_id)
    if inviter_id:
        query = query.where(or_(Referral.inviter_id == inviter_id, Referral.invitee_id == inviter_id))
    if status:
        query = query.where(Referral.status == status)
    return await paginate(session, query, page, [Referral.created_at, Referral.id], descending=True)


async def member_rewards(
    session: AsyncSession, shop_id: str, member_id: str, page: PageRequest
) -> tuple[list[Reward], str | None]:
    """A member's rewards, newest first."""
    query = select(Reward).where(Reward.shop_id == shop_id, Reward.member_id == member_id)
    return await paginate(session, query, page, [Reward.created_at, Reward.id], descending=True)


async def leaderboard(
    session: AsyncSession,
    campaign_id: str,
    *,
    limit: int = 20,
    inviter_ids: list[str] | None = None,
    since: datetime | None = None,
) -> list[dict[str, Any]]:
    converted = func.count(Referral.id)
    query = (
        select(Member, converted)
        .join(Referral, Referral.inviter_id == Member.id)
        .where(Referral.campaign_id == campaign_id, Referral.status == "converted")
        .group_by(Member.id)
        .order_by(converted.desc(), func.min(Referral.converted_at), Member.id)
        .limit(limit)
    )
    if inviter_ids is not None:
        query = query.where(Referral.inviter_id.in_(inviter_ids))
    if since is not None:
        query = query.where(Referral.converted_at >= since)
    rows = (await session.execute(query)).all()
    return [
        {
            "rank": i + 1,
            "member_id": member.id,
            "name": member.name,
            "display_name": members.public_name(member),
            "referral_code": member.referral_code,
            "converted": count,
        }
        for i, (member, count) in enumerate(rows)
    ]


# --- scheduled ------------------------------------------------------------------------------------------


async def release_due_rewards(session: AsyncSession, now: datetime | None = None, limit: int = 200) -> int:
    """Rewards held for the return window become available once it has passed."""
    now = now or utc_now()
    due = list(
        (
            await session.execute(
                select(Reward, Member.market)
                .join(Member, Member.id == Reward.member_id)
                .where(Reward.status == "pending", Reward.release_at <= now)
                .order_by(Reward.release_at)
                .limit(limit)
            )
        ).all()
    )
    for reward, market in due:
        await release_reward(session, reward, market)
    return len(due)
