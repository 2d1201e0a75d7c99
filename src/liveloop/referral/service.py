"""Referral campaigns: clicks, attribution, conversion, two-sided rewards, milestones, refunds, review."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, Literal, TypedDict, cast

from pydantic import TypeAdapter, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.coupons import service as coupons
from liveloop.events.service import emit
from liveloop.kit.errors import Conflict, Unprocessable
from liveloop.kit.ids import new_id
from liveloop.kit.pagination import PageRequest
from liveloop.kit.time import utc_now
from liveloop.markets import service as markets
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
from liveloop.models.referral import (
    CampaignStatus,
    ConversionEvent,
    MarketRewardsData,
    MilestoneData,
    ReferralStatus,
    ReviewStatus,
    RewardRole,
    RewardSpecData,
    RewardTiming,
    RewardType,
)
from liveloop.referral import fraud, groups, repository
from liveloop.referral.fraud import Outcome, ReasonCode
from liveloop.referral.repository import (
    CampaignRepository,
    ClickRepository,
    GroupRepository,
    ReferralRepository,
    ReviewRepository,
    RewardRepository,
)
from liveloop.referral.rewards import (
    BudgetExhausted,
    charge_rewards,
    grant_reward,
    hold_until,
    release_reward,
    reverse_reward,
)
from liveloop.referral.schemas import CampaignCreate, CampaignUpdate, Milestone, RewardSpec


class LeaderboardEntry(TypedDict):
    rank: int
    member_id: str
    name: str | None
    display_name: str
    referral_code: str
    converted: int


# The moves a campaign's status may make (an ended campaign stays ended).
TRANSITIONS: dict[CampaignStatus, set[CampaignStatus]] = {
    CampaignStatus.DRAFT: {CampaignStatus.ACTIVE, CampaignStatus.ENDED},
    CampaignStatus.ACTIVE: {CampaignStatus.PAUSED, CampaignStatus.ENDED},
    CampaignStatus.PAUSED: {CampaignStatus.ACTIVE, CampaignStatus.ENDED},
    CampaignStatus.ENDED: set(),
}

# A referral's status once its sign-up has been checked.
_STATUS_OF = {
    Outcome.ALLOW: ReferralStatus.PENDING,
    Outcome.HOLD: ReferralStatus.HELD,
    Outcome.REJECT: ReferralStatus.REJECTED,
}
# A referral that is still live earns its inviter a lottery-relay ticket per paid order.
_EARNS_TICKETS = (ReferralStatus.PENDING, ReferralStatus.CONVERTED)
_EVENT_OF = {
    Outcome.ALLOW: EventType.REFERRAL_CREATED,
    Outcome.HOLD: EventType.REFERRAL_HELD,
    Outcome.REJECT: EventType.REFERRAL_REJECTED,
}

# --- campaigns -----------------------------------------------------------------------------------------


_SPEC = TypeAdapter(RewardSpec)


def _preset(market: str, role: str, stored: object) -> RewardSpecData:
    """A market's preset reward, checked as a campaign's own reward would be before the campaign takes it.

    Presets are the shop's own JSON (``PATCH /v1/markets/{code}``); one that is not a reward would otherwise
    be found out only when an invite converts.
    """
    try:
        _SPEC.validate_python(stored, strict=False)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"][1:]) or "type"
        raise Unprocessable(
            f"Market {market!r} has a preset {role} reward that is not a reward ({where}: {problem['msg']}); fix "
            f"its reward_presets with PATCH /v1/markets/{market}, or give the campaign its own {role}_reward.",
            code="invalid_market_preset",
        ) from None
    return cast(RewardSpecData, stored)  # as the shop wrote it: the campaign shows its presets unchanged


async def create_campaign(session: AsyncSession, shop_id: str, data: CampaignCreate) -> Campaign:
    await markets.check_known(session, shop_id, set(data.markets) | set(data.market_rewards))
    market_rewards = {code: rewards.data() for code, rewards in data.market_rewards.items()}
    if data.use_market_presets:
        presets = {m.code: m.reward_presets for m in await markets.list_markets(session, shop_id)}
        for code in data.markets or sorted(presets):
            filled = market_rewards.setdefault(code, {})
            role: Literal["inviter", "invitee"]
            for role in ("inviter", "invitee"):
                if role not in filled and role in presets[code]:
                    filled[role] = _preset(code, role, presets[code][role])
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
        status=CampaignStatus(data.status),
        conversion_event=ConversionEvent(data.conversion_event),
        attribution_window_days=data.attribution_window_days,
        reward_timing=RewardTiming(data.reward_timing),
        inviter_reward=data.inviter_reward.data() if data.inviter_reward else {},
        invitee_reward=data.invitee_reward.data() if data.invitee_reward else {},
        milestones=_milestones(data.milestones),
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
    campaigns = CampaignRepository(session)
    await campaigns.add(campaign)
    for unit, limit in data.budgets.items():
        campaigns.add_budget(campaign.id, unit, limit)
    await session.flush()
    return campaign


def _milestones(milestones: list[Milestone]) -> list[MilestoneData]:
    """The tiers as stored: by threshold."""
    return sorted((m.data() for m in milestones), key=lambda m: m["threshold"])


def _all_specs(data: CampaignCreate, market_rewards: dict[str, MarketRewardsData]) -> list[RewardSpecData]:
    specs = [s.data() for s in (data.inviter_reward, data.invitee_reward) if s is not None]
    specs += [m.reward.data() for m in data.milestones]
    sides = [(roles.get("inviter"), roles.get("invitee")) for roles in market_rewards.values()]
    specs += [spec for pair in sides for spec in pair if spec is not None]
    return specs


async def check_spec(session: AsyncSession, shop_id: str, spec: RewardSpecData | Mapping[str, Any]) -> None:
    """A coupon reward's batch is one of this shop's (else 404 ``batch_not_found``)."""
    if spec.get("type") == RewardType.COUPON:
        await coupons.get_batch(session, shop_id, spec["batch_id"])


async def update_campaign(session: AsyncSession, campaign: Campaign, data: CampaignUpdate) -> Campaign:
    if data.status and data.status != campaign.status:
        if data.status not in TRANSITIONS[campaign.status]:
            raise Conflict(f"A {campaign.status} campaign cannot become {data.status}.", code="invalid_transition")
        campaign.status = CampaignStatus(data.status)
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
        for milestone in data.milestones:  # as at creation: a coupon reward names one of this shop's batches
            await check_spec(session, campaign.shop_id, milestone.reward.data())
        campaign.milestones = _milestones(data.milestones)
    campaigns = CampaignRepository(session)
    for unit, limit in (data.budgets or {}).items():
        row = await campaigns.budget(campaign.id, unit)
        if row is None:
            campaigns.add_budget(campaign.id, unit, limit)
            campaign.budget_units = sorted({*campaign.budget_units, unit})
        elif limit < row.spent:
            raise Unprocessable(f"{unit} budget cannot go below what is spent ({row.spent}).", code="budget_too_low")
        else:
            row.limit_amount = limit
    campaign.updated_at = utc_now()
    await session.flush()
    return campaign


async def get_campaign(session: AsyncSession, shop_id: str, campaign_id: str) -> Campaign:
    return await CampaignRepository(session).get_or_raise(shop_id, campaign_id)


async def list_campaigns(session: AsyncSession, shop_id: str, page: PageRequest) -> tuple[list[Campaign], str | None]:
    """Campaigns, newest first."""
    return await CampaignRepository(session).page(shop_id, page)


async def budgets(session: AsyncSession, campaign_id: str) -> list[CampaignBudget]:
    return await CampaignRepository(session).budgets(campaign_id)


def is_running(campaign: Campaign, now: datetime) -> bool:
    return (
        campaign.status == CampaignStatus.ACTIVE
        and (campaign.starts_at is None or campaign.starts_at <= now)
        and (campaign.ends_at is None or now < campaign.ends_at)
    )


async def campaign_for(session: AsyncSession, shop_id: str, market: str, now: datetime) -> Campaign | None:
    """The running campaign for a market: the most recently created one that targets it."""
    for campaign in await CampaignRepository(session).active(shop_id):
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
    clicks = ClickRepository(session)
    if click_id:
        click = await clicks.get(shop.id, click_id)
        if click is None:
            raise Unprocessable(
                "Unknown click_id; pass the ll_click value from the landing URL as it is.", code="unknown_click"
            )
    if device_id:
        # First touch: the earliest click on this device within any campaign window wins over later ones.
        first = await clicks.first_on_device(shop.id, device_id, now - timedelta(days=365))
        if first is not None and (click is None or first.created_at < click.created_at):
            click = first
    if click is not None:
        inviter = await repository.member(session, click.inviter_id) if click.inviter_id else None
        group = await GroupRepository(session).by_id(click.group_id) if click.group_id else None
    elif code:
        inviter = await members.find_by_code(session, shop.id, code)
        if inviter is None:
            group = await groups.find_by_code(session, shop.id, code)
            if group is None:
                raise Unprocessable(f"No member or group has the invite code {code!r}.", code="unknown_invite_code")
            inviter = await repository.member(session, group.owner_id)
    if inviter is None:
        return None
    campaign = (await CampaignRepository(session).by_id(group.campaign_id)) if group else None
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
        verdict.add(ReasonCode.CLICK_EXPIRED)
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
        status=_STATUS_OF[outcome],
        reason_codes=verdict.reasons,
        created_at=now,
    )
    await ReferralRepository(session).add(referral)
    if outcome == Outcome.HOLD:
        await _hold(session, referral, now)
    await emit(session, shop.id, _EVENT_OF[outcome], referral_payload(referral))
    if outcome != Outcome.REJECT and group is not None:
        await groups.count_invite(session, shop, group, invitee.id, now)
    if referral.status == ReferralStatus.PENDING and campaign.conversion_event == ConversionEvent.SIGNUP:
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


async def _hold(session: AsyncSession, referral: Referral, now: datetime) -> None:
    """Put a held referral in the review queue."""
    review = FraudReview(
        id=new_id("rev"),
        shop_id=referral.shop_id,
        referral_id=referral.id,
        reason_codes=referral.reason_codes,
        created_at=now,
    )
    await ReviewRepository(session).add(review)


async def referral_of(session: AsyncSession, shop_id: str, invitee_id: str) -> Referral | None:
    return await ReferralRepository(session).of_invitee(shop_id, invitee_id)


def _spec(campaign: Campaign, role: RewardRole, market: str) -> RewardSpecData | None:
    """The reward of one side: the member's market's own, else the campaign's."""
    by_market = (campaign.market_rewards or {}).get(market, {})
    own = by_market.get("inviter") if role == RewardRole.INVITER else by_market.get("invitee")
    spec = own or (campaign.inviter_reward if role == RewardRole.INVITER else campaign.invitee_reward)
    return RewardSpecData(**spec) if spec else None


async def convert(
    session: AsyncSession, referral: Referral, *, order: Order | None, check_payment: bool = True
) -> list[Reward]:
    """The invitee did what the campaign asks: reward both sides, check milestones, tell the outbox."""
    if referral.status != ReferralStatus.PENDING:
        return []
    campaign = await CampaignRepository(session).by_id(referral.campaign_id)
    # Conversions of one inviter run one at a time, so each sees the others' counts when checking milestones.
    inviter = await repository.inviter_for_conversion(session, referral.inviter_id)
    invitee = await repository.member(session, referral.invitee_id)
    assert campaign is not None
    assert invitee is not None
    # An operator who approved a held referral has settled the payment question already.
    if check_payment and order is not None and await fraud.same_payment(session, inviter.id, order):
        referral.status = ReferralStatus.HELD
        referral.reason_codes = [*referral.reason_codes, ReasonCode.SAME_PAYMENT]
        referral.qualifying_order_id = order.id
        await _hold(session, referral, utc_now())
        await emit(session, referral.shop_id, EventType.REFERRAL_HELD, referral_payload(referral))
        return []
    window = (await markets.terms(session, referral.shop_id, invitee.market)).return_window_days
    until = hold_until(campaign, order.paid_at if order else None, window)
    granted: list[Reward] = []
    try:
        async with session.begin_nested():
            sides = ((RewardRole.INVITER, inviter), (RewardRole.INVITEE, invitee))
            grants = [(role, m, _spec(campaign, role, m.market)) for role, m in sides]
            if referral.group_id:
                group = await GroupRepository(session).by_id(referral.group_id)
                if group is not None and group.extra_offer:
                    grants.append((RewardRole.VIP_OFFER, invitee, RewardSpecData(**group.extra_offer)))
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
        referral.status = ReferralStatus.REJECTED
        referral.reason_codes = [*referral.reason_codes, ReasonCode.BUDGET_EXHAUSTED]
        await session.flush()
        await emit(session, referral.shop_id, EventType.REFERRAL_REJECTED, referral_payload(referral))
        return []
    referral.status = ReferralStatus.CONVERTED
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


async def converted_count(session: AsyncSession, campaign_id: str, inviter_id: str) -> int:
    return await ReferralRepository(session).converted_count(campaign_id, inviter_id)


async def _check_milestones(
    session: AsyncSession, campaign: Campaign, inviter: Member, until: datetime | None
) -> list[Reward]:
    if not campaign.milestones:
        return []
    count = await converted_count(session, campaign.id, inviter.id)
    if count < min(tier["threshold"] for tier in campaign.milestones):
        return []
    live = await RewardRepository(session).live_milestones(campaign.id, inviter.id)
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
                        spec=RewardSpecData(**tier["reward"]),
                        role=RewardRole.MILESTONE,
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
    for reward in await RewardRepository(session).live_milestones_above(campaign.id, inviter_id, count):
        await reverse_reward(session, reward, reason)


async def reverse_referral(session: AsyncSession, referral: Referral, reason: str) -> None:
    """Take back both sides' rewards, the lottery tickets the referral earned and any milestone the inviter no
    longer reaches."""
    from liveloop.referral import lottery

    if referral.status not in (ReferralStatus.CONVERTED, ReferralStatus.HELD, ReferralStatus.PENDING):
        return
    was_converted = referral.status == ReferralStatus.CONVERTED
    for reward in await RewardRepository(session).live_of_referral(referral.id):
        await reverse_reward(session, reward, reason)
    await lottery.void_referral_tickets(session, referral, reason)
    referral.status = ReferralStatus.REVERSED if was_converted else ReferralStatus.REJECTED
    referral.reversed_at = utc_now()
    referral.reason_codes = [*referral.reason_codes, reason]
    await session.flush()
    if was_converted:
        campaign = await CampaignRepository(session).by_id(referral.campaign_id)
        assert campaign is not None
        await _recompute_milestones(session, campaign, referral.inviter_id, reason)
    await emit(session, referral.shop_id, EventType.REFERRAL_REVERSED, referral_payload(referral))


# --- triggers from orders and views ----------------------------------------------------------------------


async def on_order_paid(session: AsyncSession, shop: Shop, order: Order, member: Member, *, first_paid: bool) -> None:
    row = await ReferralRepository(session).of_invitee_with_campaign(shop.id, member.id)
    if row is None:
        return
    referral, campaign = row
    if (
        first_paid
        and referral.status == ReferralStatus.PENDING
        and campaign.conversion_event == ConversionEvent.FIRST_PAID_ORDER
        and order.total_minor >= campaign.min_order_minor
    ):
        await convert(session, referral, order=order)
    if campaign.lottery_enabled and referral.status in _EARNS_TICKETS:
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
    referral = await ReferralRepository(session).qualified_by(shop.id, order.id)
    if referral is None or referral.status != ReferralStatus.CONVERTED:
        return
    campaign = await CampaignRepository(session).by_id(referral.campaign_id)
    invitee = await repository.member(session, referral.invitee_id)
    assert campaign is not None
    assert invitee is not None
    window = (await markets.terms(session, shop.id, invitee.market)).return_window_days
    if order.paid_at and (order.refunded_at or utc_now()) > order.paid_at + timedelta(days=window):
        return
    net = order.total_minor - order.refunded_minor
    if order.status == "refunded" or net < max(campaign.min_order_minor, 1):
        await reverse_referral(session, referral, ReasonCode.ORDER_REFUNDED)


async def on_effective_view(session: AsyncSession, shop: Shop, member: Member) -> list[Reward]:
    referral = await referral_of(session, shop.id, member.id)
    if referral is None or referral.status != ReferralStatus.PENDING:
        return []
    campaign = await CampaignRepository(session).by_id(referral.campaign_id)
    if campaign is None or campaign.conversion_event != ConversionEvent.FIRST_VIEW:
        return []
    return await convert(session, referral, order=None)


# --- review queue --------------------------------------------------------------------------------------


async def list_reviews(
    session: AsyncSession, shop_id: str, page: PageRequest, status: str | None = ReviewStatus.PENDING
) -> tuple[list[FraudReview], str | None]:
    """The review queue, oldest first (the order to work through it)."""
    return await ReviewRepository(session).page(shop_id, page, status)


async def decide_review(
    session: AsyncSession, shop: Shop, review_id: str, *, approve: bool, note: str | None, decided_by: str
) -> FraudReview:
    review = await ReviewRepository(session).get_or_raise(shop.id, review_id)
    decision = ReviewStatus.APPROVED if approve else ReviewStatus.REJECTED
    if review.status != ReviewStatus.PENDING:
        if review.status == decision:
            return review  # the same decision twice changes nothing
        raise Conflict(f"This review was {review.status} already.", code="review_decided")
    referral = await ReferralRepository(session).by_id(review.referral_id)
    assert referral is not None
    review.status = decision
    review.note = note
    review.decided_at = utc_now()
    review.decided_by = decided_by
    if approve:
        referral.status = ReferralStatus.PENDING
        await session.flush()
        campaign = await CampaignRepository(session).by_id(referral.campaign_id)
        assert campaign is not None
        order = await repository.order(session, referral.qualifying_order_id) if referral.qualifying_order_id else None
        if order is None and campaign.conversion_event == ConversionEvent.FIRST_PAID_ORDER:
            order = await repository.first_paid_order(session, referral.invitee_id)
        if campaign.conversion_event == ConversionEvent.SIGNUP or order is not None:
            referral.qualifying_order_id = None
            await convert(session, referral, order=order, check_payment=False)
        if campaign.lottery_enabled and referral.status in _EARNS_TICKETS:
            # Orders paid while the referral was held earned no ticket: they earn it now, once each.
            from liveloop.referral import lottery

            await lottery.award_missed_tickets(session, campaign, referral)
    else:
        await reverse_referral(session, referral, ReasonCode.FRAUD_CONFIRMED)
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
    return await ReferralRepository(session).page(
        shop_id, page, campaign_id=campaign_id, member_id=inviter_id, status=status
    )


async def member_rewards(
    session: AsyncSession, shop_id: str, member_id: str, page: PageRequest
) -> tuple[list[Reward], str | None]:
    """A member's rewards, newest first."""
    return await RewardRepository(session).page_of_member(shop_id, member_id, page)


async def leaderboard(
    session: AsyncSession,
    campaign_id: str,
    *,
    limit: int = 20,
    inviter_ids: list[str] | None = None,
    since: datetime | None = None,
) -> list[LeaderboardEntry]:
    """The top inviters by converted invites (ties: who got there first)."""
    rows = await ReferralRepository(session).leaderboard(campaign_id, limit=limit, inviter_ids=inviter_ids, since=since)
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
    due = await RewardRepository(session).due(now, limit)
    for reward, market in due:
        await release_reward(session, reward, market)
    return len(due)
