"""Granting, releasing and reversing rewards. Every reward lands in the ledger or as a bound coupon."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.coupons import service as coupons
from liveloop.events.service import emit
from liveloop.kit.errors import Unprocessable
from liveloop.kit.ids import new_id
from liveloop.kit.time import utc_now
from liveloop.ledger import service as ledger_service
from liveloop.markets import service as markets
from liveloop.models import Campaign, EventType, Reward
from liveloop.models.referral import RewardRole, RewardSpecData, RewardStatus, RewardTiming, RewardType
from liveloop.referral import repository
from liveloop.referral.repository import CampaignRepository, RewardRepository


class BudgetExhausted(Unprocessable):
    code = "budget_exhausted"


async def budget_cost(session: AsyncSession, spec: RewardSpecData) -> tuple[str | None, int]:
    """What a reward costs against the campaign budget: (unit, amount)."""
    match spec["type"]:
        case RewardType.POINTS:
            return "points", int(spec["amount"])
        case RewardType.CREDIT:
            return spec["currency"], int(spec["amount"])
        case RewardType.GIFT:
            return (spec.get("currency"), int(spec.get("value_minor") or 0)) if spec.get("currency") else (None, 0)
        case RewardType.COUPON:
            batch = await repository.coupon_batch(session, spec["batch_id"])
            if batch is not None and batch.kind == "fixed" and batch.currency:
                return batch.currency, int(batch.amount_minor or 0)
            return None, 0
    return None, 0


async def charge_budget(session: AsyncSession, campaign: Campaign, unit: str | None, cost: int) -> None:
    """Spend from the campaign's budget in ``unit``, atomically; units without a budget are unlimited."""
    if unit is None or cost <= 0 or unit not in campaign.budget_units:
        return
    if not await CampaignRepository(session).charge(campaign.id, unit, cost):
        raise BudgetExhausted(f"The campaign's {unit} budget is used up; raise it or end the campaign.")


async def refund_budget(session: AsyncSession, campaign_id: str, unit: str | None, cost: int) -> None:
    if unit is None or cost <= 0:
        return
    await CampaignRepository(session).refund(campaign_id, unit, cost)


async def grant_reward(
    session: AsyncSession,
    *,
    shop_id: str,
    campaign: Campaign | None,
    member_id: str,
    member_market: str,
    spec: RewardSpecData | Mapping[str, Any],
    role: str,
    referral_id: str | None = None,
    milestone: int | None = None,
    hold_until: datetime | None = None,
    check_budget: bool = True,
    charge_now: bool = True,
) -> Reward:
    """Give ``spec`` to a member, at once or held until ``hold_until``, counted against the campaign budget.

    With ``charge_now=False`` the caller charges the budget itself (see :func:`charge_rewards`), as late in
    its transaction as it can, so the budget row stays locked for as short a time as possible.

    ``spec`` is a reward spec as stored (a campaign's, a group's or a draw's), or a live mechanic's, dumped
    from the same API model; ``role`` is a :class:`RewardRole` value.
    """
    spec = cast(RewardSpecData, spec)
    now = utc_now()
    unit, cost = await budget_cost(session, spec)
    if campaign is not None and check_budget and charge_now:
        await charge_budget(session, campaign, unit, cost)
    reward = Reward(
        id=new_id("rwd"),
        shop_id=shop_id,
        campaign_id=campaign.id if campaign else None,
        referral_id=referral_id,
        member_id=member_id,
        role=RewardRole(role),
        milestone=milestone,
        reward_type=RewardType(spec["type"]),
        amount=int(spec.get("amount") or spec.get("value_minor") or 0),
        currency=spec.get("currency"),
        label=spec.get("label") or spec.get("sku") or "",
        budget_unit=unit,
        budget_cost=cost if campaign is not None and check_budget else 0,
        status=RewardStatus.PENDING if hold_until else RewardStatus.AVAILABLE,
        release_at=hold_until,
        created_at=now,
    )
    ref = ("reward", reward.id)
    if reward.reward_type in (RewardType.POINTS, RewardType.CREDIT):
        points = reward.reward_type == RewardType.POINTS
        asset = ledger_service.POINTS if points else ledger_service.credit_asset(cast(str, spec["currency"]))
        expires = await markets.points_expiry(session, shop_id, member_market, now) if points else None
        txn = await ledger_service.grant(
            session,
            shop_id,
            member_id,
            asset,
            int(spec["amount"]),
            pending=hold_until is not None,
            expires_at=None if hold_until else expires,
            memo=f"{role} reward",
            ref=ref,
        )
        reward.ledger_transaction_id = txn.id
    elif reward.reward_type == RewardType.COUPON and hold_until is None:
        reward.coupon_id = await _issue_coupon(session, shop_id, spec["batch_id"], member_id)
    await RewardRepository(session).insert(reward)
    await emit(session, shop_id, EventType.REWARD_GRANTED, reward_payload(reward))
    return reward


async def charge_rewards(session: AsyncSession, campaign: Campaign, rewards: list[Reward]) -> None:
    """Charge the budget for rewards granted with ``charge_now=False``, one update per unit, in unit order."""
    totals: dict[str, int] = {}
    for reward in rewards:
        if reward.budget_unit and reward.budget_cost:
            totals[reward.budget_unit] = totals.get(reward.budget_unit, 0) + reward.budget_cost
    for unit in sorted(totals):
        await charge_budget(session, campaign, unit, totals[unit])


async def _issue_coupon(session: AsyncSession, shop_id: str, batch_id: str, member_id: str) -> str:
    batch = await coupons.get_batch(session, shop_id, batch_id)
    return (await coupons.issue_to_member(session, batch, member_id)).id


async def release_reward(session: AsyncSession, reward: Reward, member_market: str) -> Reward:
    if reward.status != RewardStatus.PENDING:
        return reward
    now = utc_now()
    if reward.ledger_transaction_id:
        expires = None
        if reward.reward_type == RewardType.POINTS:
            expires = await markets.points_expiry(session, reward.shop_id, member_market, now)
        await ledger_service.release(session, reward.shop_id, reward.ledger_transaction_id, expires_at=expires)
    elif reward.reward_type == RewardType.COUPON and reward.campaign_id:
        spec = await _spec_of(session, reward)
        if spec and spec.get("batch_id"):
            reward.coupon_id = await _issue_coupon(session, reward.shop_id, spec["batch_id"], reward.member_id)
    reward.status = RewardStatus.AVAILABLE
    await session.flush()
    await emit(session, reward.shop_id, EventType.REWARD_RELEASED, reward_payload(reward))
    return reward


async def _spec_of(session: AsyncSession, reward: Reward) -> RewardSpecData | None:
    campaign = await CampaignRepository(session).by_id(reward.campaign_id) if reward.campaign_id else None
    if campaign is None:
        return None
    if reward.milestone is not None:
        for m in campaign.milestones:
            if m["threshold"] == reward.milestone:
                return RewardSpecData(**m["reward"])
    spec = campaign.inviter_reward if reward.role == RewardRole.INVITER else campaign.invitee_reward
    return RewardSpecData(**spec) if spec else None


async def reverse_reward(session: AsyncSession, reward: Reward, reason: str) -> Reward:
    """Claw a reward back: ledger value by a reversing entry (what is left of it), coupons voided if unused."""
    if reward.status == RewardStatus.REVERSED:
        return reward
    shortfall = 0
    if reward.ledger_transaction_id:
        result = await ledger_service.reverse(
            session, reward.shop_id, reward.ledger_transaction_id, reason=reason, allow_partial=True
        )
        shortfall = result.shortfall
    if reward.coupon_id:
        coupon = await repository.coupon(session, reward.coupon_id)
        if coupon is not None and coupon.voided_at is None:
            coupon.voided_at = utc_now()
            if coupon.uses:
                shortfall = 1
    reward.status = RewardStatus.REVERSED
    reward.reversed_at = utc_now()
    reward.reverse_reason = reason
    if reward.campaign_id and reward.budget_cost:
        await refund_budget(session, reward.campaign_id, reward.budget_unit, reward.budget_cost)
    await session.flush()
    payload = reward_payload(reward)
    payload["shortfall"] = shortfall
    await emit(session, reward.shop_id, EventType.REWARD_REVERSED, payload)
    return reward


def reward_payload(reward: Reward) -> dict[str, Any]:
    return {
        "reward_id": reward.id,
        "member_id": reward.member_id,
        "role": reward.role,
        "type": reward.reward_type,
        "amount": reward.amount,
        "currency": reward.currency,
        "label": reward.label,
        "status": reward.status,
        "campaign_id": reward.campaign_id,
        "referral_id": reward.referral_id,
        "milestone": reward.milestone,
        "coupon_id": reward.coupon_id,
    }


def hold_until(campaign: Campaign, paid_at: datetime | None, return_window_days: int) -> datetime | None:
    if campaign.reward_timing != RewardTiming.AFTER_RETURN_WINDOW:
        return None
    return (paid_at or utc_now()) + timedelta(days=return_window_days)
