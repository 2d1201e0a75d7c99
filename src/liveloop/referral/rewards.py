"""Granting, releasing and reversing rewards. Every reward lands in the ledger or as a bound coupon."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.coupons import service as coupons
from liveloop.events.service import emit
from liveloop.kit.errors import Unprocessable
from liveloop.kit.ids import new_id
from liveloop.kit.sql import table
from liveloop.kit.time import utc_now
from liveloop.ledger import service as ledger_service
from liveloop.markets import service as markets
from liveloop.models import Campaign, CampaignBudget, Coupon, CouponBatch, EventType, Reward


class BudgetExhausted(Unprocessable):
    code = "budget_exhausted"


async def budget_cost(session: AsyncSession, spec: dict[str, Any]) -> tuple[str | None, int]:
    """What a reward costs against the campaign budget: (unit, amount)."""
    match spec["type"]:
        case "points":
            return "points", int(spec["amount"])
        case "credit":
            return spec["currency"], int(spec["amount"])
        case "gift":
            return (spec.get("currency"), int(spec.get("value_minor") or 0)) if spec.get("currency") else (None, 0)
        case "coupon":
            batch = await session.get(CouponBatch, spec["batch_id"])
            if batch is not None and batch.kind == "fixed" and batch.currency:
                return batch.currency, int(batch.amount_minor or 0)
            return None, 0
    return None, 0


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


async def charge_budget(session: AsyncSession, campaign: Campaign, unit: str | None, cost: int) -> None:
    """Spend from the campaign's budget in ``unit``, atomically; units without a budget are unlimited."""
    if unit is None or cost <= 0 or unit not in campaign.budget_units:
        return
    result = await session.execute(_CHARGE, {"b_campaign": campaign.id, "b_unit": unit, "cost": cost})
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise BudgetExhausted(f"The campaign's {unit} budget is used up; raise it or end the campaign.")


async def refund_budget(session: AsyncSession, campaign_id: str, unit: str | None, cost: int) -> None:
    if unit is None or cost <= 0:
        return
    await session.execute(
        update(CampaignBudget)
        .where(CampaignBudget.campaign_id == campaign_id, CampaignBudget.unit == unit)
        .values(spent=CampaignBudget.spent - cost)
        .execution_options(synchronize_session=False)
    )


async def grant_reward(
    session: AsyncSession,
    *,
    shop_id: str,
    campaign: Campaign | None,
    member_id: str,
    member_market: str,
    spec: dict[str, Any],
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
    """
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
        role=role,
        milestone=milestone,
        reward_type=spec["type"],
        amount=int(spec.get("amount") or spec.get("value_minor") or 0),
        currency=spec.get("currency"),
        label=spec.get("label") or spec.get("sku") or "",
        budget_unit=unit,
        budget_cost=cost if campaign is not None and check_budget else 0,
        status="pending" if hold_until else "available",
        release_at=hold_until,
        created_at=now,
    )
    ref = ("reward", reward.id)
    if spec["type"] in ("points", "credit"):
        asset = ledger_service.POINTS if spec["type"] == "points" else ledger_service.credit_asset(spec["currency"])
        expires = (
            await markets.points_expiry(session, shop_id, member_market, now) if spec["type"] == "points" else None
        )
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
    elif spec["type"] == "coupon" and hold_until is None:
        reward.coupon_id = await _issue_coupon(session, shop_id, spec["batch_id"], member_id)
    await session.execute(table(Reward).insert(), {c.key: getattr(reward, c.key) for c in table(Reward).c})
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
    if reward.status != "pending":
        return reward
    now = utc_now()
    if reward.ledger_transaction_id:
        expires = None
        if reward.reward_type == "points":
            expires = await markets.points_expiry(session, reward.shop_id, member_market, now)
        await ledger_service.release(session, reward.shop_id, reward.ledger_transaction_id, expires_at=expires)
    elif reward.reward_type == "coupon" and reward.campaign_id:
        spec = await _spec_of(session, reward)
        if spec and spec.get("batch_id"):
            reward.coupon_id = await _issue_coupon(session, reward.shop_id, spec["batch_id"], reward.member_id)
    reward.status = "available"
    await session.flush()
    await emit(session, reward.shop_id, EventType.REWARD_RELEASED, reward_payload(reward))
    return reward


async def _spec_of(session: AsyncSession, reward: Reward) -> dict[str, Any] | None:
    campaign = await session.get(Campaign, reward.campaign_id) if reward.campaign_id else None
    if campaign is None:
        return None
    if reward.milestone is not None:
        for m in campaign.milestones:
            if m["threshold"] == reward.milestone:
                return dict(m["reward"])
    spec = campaign.inviter_reward if reward.role == "inviter" else campaign.invitee_reward
    return dict(spec) if spec else None


async def reverse_reward(session: AsyncSession, reward: Reward, reason: str) -> Reward:
    """Claw a reward back: ledger value by a reversing entry (what is left of it), coupons voided if unused."""
    if reward.status == "reversed":
        return reward
    shortfall = 0
    if reward.ledger_transaction_id:
        result = await ledger_service.reverse(
            session, reward.shop_id, reward.ledger_transaction_id, reason=reason, allow_partial=True
        )
        shortfall = result.shortfall
    if reward.coupon_id:
        coupon = await session.get(Coupon, reward.coupon_id)
        if coupon is not None and coupon.voided_at is None:
            coupon.voided_at = utc_now()
            if coupon.uses:
                shortfall = 1
    reward.status = "reversed"
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
    if campaign.reward_timing != "after_return_window":
        return None
    return (paid_at or utc_now()) + timedelta(days=return_window_days)
