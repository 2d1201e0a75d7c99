"""Fraud and budget guards. Each finding has a reason code and an outcome: allow, hold for review, reject."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from importlib import resources

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.kit.time import local_day_bounds
from liveloop.members.normalize import email_domain, emails_look_alike
from liveloop.models import Campaign, InviteClick, Member, MemberDevice, Order, Referral

ALLOW, HOLD, REJECT = "allow", "hold", "reject"

# What each reason leads to. Clear abuse is rejected; signals that honest people also trip are held.
OUTCOMES = {
    "self_referral": REJECT,
    "existing_customer": REJECT,
    "same_device": REJECT,
    "disposable_email": REJECT,
    "inviter_daily_cap": REJECT,
    "budget_exhausted": REJECT,
    "click_expired": REJECT,
    "same_payment": HOLD,
    "similar_email": HOLD,
    "ip_velocity": HOLD,
    "device_velocity": HOLD,
    "same_network": HOLD,
}


@dataclass
class Verdict:
    reasons: list[str] = field(default_factory=list)

    def add(self, reason: str) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)

    @property
    def outcome(self) -> str:
        outcomes = {OUTCOMES[r] for r in self.reasons}
        if REJECT in outcomes:
            return REJECT
        return HOLD if HOLD in outcomes else ALLOW


@lru_cache(maxsize=1)
def disposable_domains() -> frozenset[str]:
    text = resources.files("liveloop.data").joinpath("disposable_domains.txt").read_text()
    return frozenset(line.strip().lower() for line in text.splitlines() if line.strip() and not line.startswith("#"))


def is_disposable(email: str) -> bool:
    domain = email_domain(email)
    parts = domain.split(".")
    return any(".".join(parts[i:]) in disposable_domains() for i in range(len(parts) - 1))


async def check_signup(
    session: AsyncSession,
    *,
    campaign: Campaign,
    inviter: Member,
    invitee: Member,
    invitee_devices: list[str],
    ip_hash: str | None,
    existing_customer: bool,
    shop_timezone: str,
    now: datetime,
    click_ip_hash: str | None = None,
) -> Verdict:
    verdict = Verdict()
    if inviter.id == invitee.id:
        verdict.add("self_referral")
        return verdict
    if existing_customer or invitee.first_paid_order_at is not None:
        verdict.add("existing_customer")
    if invitee_devices:
        shared = (
            await session.execute(
                select(MemberDevice.id)
                .where(MemberDevice.member_id == inviter.id, MemberDevice.device_id.in_(invitee_devices))
                .limit(1)
            )
        ).first()
        if shared:
            verdict.add("same_device")
        recent = (
            await session.execute(
                select(func.count())
                .select_from(Referral)
                .where(
                    Referral.shop_id == invitee.shop_id,
                    Referral.device_id.in_(invitee_devices),
                    Referral.created_at >= now - timedelta(days=1),
                )
            )
        ).scalar_one()
        if recent >= 1:
            verdict.add("device_velocity")
    if invitee.email:
        if is_disposable(invitee.email):
            verdict.add("disposable_email")
        if inviter.email and emails_look_alike(inviter.email, invitee.email):
            verdict.add("similar_email")
    if ip_hash:
        same_ip = (
            await session.execute(
                select(func.count())
                .select_from(Referral)
                .where(
                    Referral.shop_id == invitee.shop_id,
                    Referral.ip_hash == ip_hash,
                    Referral.created_at >= now - timedelta(hours=1),
                )
            )
        ).scalar_one()
        if same_ip >= campaign.fraud_velocity_per_hour:
            verdict.add("ip_velocity")
    networks = sorted({h for h in (ip_hash, click_ip_hash) if h})
    since = now - timedelta(days=campaign.attribution_window_days)
    if networks and await on_network_of(session, inviter, networks, since):
        verdict.add("same_network")
    if campaign.daily_cap_per_inviter:
        start, end = local_day_bounds(now, shop_timezone)
        today = (
            await session.execute(
                select(func.count())
                .select_from(Referral)
                .where(
                    Referral.campaign_id == campaign.id,
                    Referral.inviter_id == inviter.id,
                    Referral.status.in_(("pending", "held", "converted")),
                    Referral.created_at >= start,
                    Referral.created_at < end,
                )
            )
        ).scalar_one()
        if today >= campaign.daily_cap_per_inviter:
            verdict.add("inviter_daily_cap")
    return verdict


async def on_network_of(session: AsyncSession, inviter: Member, networks: list[str], since: datetime) -> bool:
    """Whether the inviter was seen on one of these networks (keyed IP hashes) since ``since``: signing up
    from it, or tapping an invite link from it on one of the inviter's own devices."""
    signed_up = (
        await session.execute(
            select(Member.id)
            .where(Member.id == inviter.id, Member.signup_ip_hash.in_(networks), Member.created_at >= since)
            .limit(1)
        )
    ).first()
    if signed_up is not None:
        return True
    clicked = (
        await session.execute(
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
    ).first()
    return clicked is not None


async def same_payment(session: AsyncSession, inviter_id: str, order: Order) -> bool:
    if not order.payment_fingerprint:
        return False
    return (
        await session.execute(
            select(Order.id)
            .where(Order.member_id == inviter_id, Order.payment_fingerprint == order.payment_fingerprint)
            .limit(1)
        )
    ).first() is not None
