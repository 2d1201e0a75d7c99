"""Fraud and budget guards. Each finding has a reason code and an outcome: allow, hold for review, reject."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from importlib import resources

from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.kit.time import local_day_bounds
from liveloop.members.normalize import email_domain, emails_look_alike
from liveloop.models import Campaign, Member, Order
from liveloop.referral import repository
from liveloop.referral.repository import ClickRepository, ReferralRepository


class Outcome(StrEnum):
    ALLOW = "allow"
    HOLD = "hold"  # for an operator's review
    REJECT = "reject"


class ReasonCode(StrEnum):
    """Why a referral was rejected, held for review or reversed: the values of its ``reason_codes``."""

    SELF_REFERRAL = "self_referral"
    EXISTING_CUSTOMER = "existing_customer"
    SAME_DEVICE = "same_device"
    DISPOSABLE_EMAIL = "disposable_email"
    INVITER_DAILY_CAP = "inviter_daily_cap"
    BUDGET_EXHAUSTED = "budget_exhausted"
    CLICK_EXPIRED = "click_expired"
    SAME_PAYMENT = "same_payment"
    SIMILAR_EMAIL = "similar_email"
    IP_VELOCITY = "ip_velocity"
    DEVICE_VELOCITY = "device_velocity"
    SAME_NETWORK = "same_network"
    # Why a referral (and its rewards) was reversed.
    ORDER_REFUNDED = "order_refunded"
    FRAUD_CONFIRMED = "fraud_confirmed"


# What each finding leads to. Clear abuse is rejected; signals that honest people also trip are held.
OUTCOMES: dict[str, Outcome] = {
    ReasonCode.SELF_REFERRAL: Outcome.REJECT,
    ReasonCode.EXISTING_CUSTOMER: Outcome.REJECT,
    ReasonCode.SAME_DEVICE: Outcome.REJECT,
    ReasonCode.DISPOSABLE_EMAIL: Outcome.REJECT,
    ReasonCode.INVITER_DAILY_CAP: Outcome.REJECT,
    ReasonCode.BUDGET_EXHAUSTED: Outcome.REJECT,
    ReasonCode.CLICK_EXPIRED: Outcome.REJECT,
    ReasonCode.SAME_PAYMENT: Outcome.HOLD,
    ReasonCode.SIMILAR_EMAIL: Outcome.HOLD,
    ReasonCode.IP_VELOCITY: Outcome.HOLD,
    ReasonCode.DEVICE_VELOCITY: Outcome.HOLD,
    ReasonCode.SAME_NETWORK: Outcome.HOLD,
}


@dataclass
class Verdict:
    reasons: list[str] = field(default_factory=list)  # ReasonCode values, in the order found

    def add(self, reason: ReasonCode) -> None:
        if reason not in self.reasons:
            self.reasons.append(reason)

    @property
    def outcome(self) -> Outcome:
        outcomes = {OUTCOMES[r] for r in self.reasons}
        if Outcome.REJECT in outcomes:
            return Outcome.REJECT
        return Outcome.HOLD if Outcome.HOLD in outcomes else Outcome.ALLOW


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
        verdict.add(ReasonCode.SELF_REFERRAL)
        return verdict
    if existing_customer or invitee.first_paid_order_at is not None:
        verdict.add(ReasonCode.EXISTING_CUSTOMER)
    referrals = ReferralRepository(session)
    if invitee_devices:
        if await repository.shares_a_device(session, inviter.id, invitee_devices):
            verdict.add(ReasonCode.SAME_DEVICE)
        if await referrals.count_on_devices(invitee.shop_id, invitee_devices, now - timedelta(days=1)) >= 1:
            verdict.add(ReasonCode.DEVICE_VELOCITY)
    if invitee.email:
        if is_disposable(invitee.email):
            verdict.add(ReasonCode.DISPOSABLE_EMAIL)
        if inviter.email and emails_look_alike(inviter.email, invitee.email):
            verdict.add(ReasonCode.SIMILAR_EMAIL)
    if ip_hash:
        same_ip = await referrals.count_from_network(invitee.shop_id, ip_hash, now - timedelta(hours=1))
        if same_ip >= campaign.fraud_velocity_per_hour:
            verdict.add(ReasonCode.IP_VELOCITY)
    networks = sorted({h for h in (ip_hash, click_ip_hash) if h})
    since = now - timedelta(days=campaign.attribution_window_days)
    if networks and await on_network_of(session, inviter, networks, since):
        verdict.add(ReasonCode.SAME_NETWORK)
    if campaign.daily_cap_per_inviter:
        start, end = local_day_bounds(now, shop_timezone)
        if await referrals.count_of_inviter(campaign.id, inviter.id, start, end) >= campaign.daily_cap_per_inviter:
            verdict.add(ReasonCode.INVITER_DAILY_CAP)
    return verdict


async def on_network_of(session: AsyncSession, inviter: Member, networks: list[str], since: datetime) -> bool:
    """Whether the inviter was seen on one of these networks (keyed IP hashes) since ``since``: signing up
    from it, or tapping an invite link from it on one of the inviter's own devices."""
    if await repository.signed_up_on(session, inviter.id, networks, since):
        return True
    return await ClickRepository(session).inviter_tapped_on(inviter, networks, since)


async def same_payment(session: AsyncSession, inviter_id: str, order: Order) -> bool:
    if not order.payment_fingerprint:
        return False
    return await repository.paid_with(session, inviter_id, order.payment_fingerprint)
