from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import TypedDict

from sqlalchemy import BigInteger, CheckConstraint, Date, ForeignKey, Index, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from liveloop.models.base import Base, CreatedAt, EnumText, JSONType


class CampaignStatus(StrEnum):
    DRAFT = "draft"
    ACTIVE = "active"
    PAUSED = "paused"
    ENDED = "ended"


class ConversionEvent(StrEnum):
    """What the invitee does for the referral to convert (and both sides to be rewarded)."""

    SIGNUP = "signup"
    FIRST_VIEW = "first_view"
    FIRST_PAID_ORDER = "first_paid_order"


class RewardTiming(StrEnum):
    INSTANT = "instant"
    AFTER_RETURN_WINDOW = "after_return_window"  # held (pending) until the order's return window has passed


class ShareChannel(StrEnum):
    """Where an invite link is shared and tapped: the one list of channels.

    Every channel but ``live`` and ``other`` is offered as a share target (``referral.links.CHANNELS``) and
    accepted as a share in the live room; a click records any of them.
    """

    WHATSAPP = "whatsapp"
    FACEBOOK = "facebook"
    INSTAGRAM = "instagram"
    TIKTOK = "tiktok"
    X = "x"
    TELEGRAM = "telegram"
    LINE = "line"
    EMAIL = "email"
    COPY = "copy"
    QR = "qr"
    LIVE = "live"  # a link tapped in a live room
    OTHER = "other"  # a click whose ``ch`` names no channel above


class ReferralStatus(StrEnum):
    PENDING = "pending"  # waiting for the conversion event
    HELD = "held"  # waiting for a fraud review
    CONVERTED = "converted"
    REJECTED = "rejected"
    REVERSED = "reversed"


class RewardRole(StrEnum):
    """Why a member was given a reward."""

    INVITER = "inviter"
    INVITEE = "invitee"
    MILESTONE = "milestone"
    VIP_OFFER = "vip_offer"
    PRIZE = "prize"  # a lottery-relay draw
    LIVE_FLASH = "live_flash"  # the live room's mechanics
    LIVE_LOTTERY = "live_lottery"
    LIVE_SPRINT = "live_sprint"
    LIVE_CHALLENGE = "live_challenge"
    LIVE_QUIZ = "live_quiz"
    LIVE_PK = "live_pk"


class RewardType(StrEnum):
    POINTS = "points"
    CREDIT = "credit"
    COUPON = "coupon"
    GIFT = "gift"
    PERK = "perk"


class RewardStatus(StrEnum):
    PENDING = "pending"  # held until ``release_at``
    AVAILABLE = "available"
    REVERSED = "reversed"


class ReviewStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class TicketStatus(StrEnum):
    ACTIVE = "active"
    VOID = "void"
    DRAWN = "drawn"


class DrawStatus(StrEnum):
    COMMITTED = "committed"  # the seed's hash is published
    DRAWING = "drawing"  # one request is running it
    DRAWN = "drawn"  # the seed is revealed


class RewardSpecData(TypedDict, total=False):
    """A reward spec as a JSON column holds it: the API's ``RewardSpec`` (``referral.schemas``), dumped.

    ``type`` is a :class:`RewardType` value and decides which other keys it has: ``amount`` (points, credit),
    ``currency`` (credit, gift), ``batch_id`` (coupon), ``sku`` and ``value_minor`` (gift), ``label`` (any).
    An empty one (``{}``) is no reward.
    """

    type: str
    amount: int
    currency: str | None
    batch_id: str
    sku: str
    label: str
    value_minor: int


class MilestoneData(TypedDict):
    threshold: int  # converted invites needed
    reward: RewardSpecData


class MarketRewardsData(TypedDict, total=False):
    """A market's own rewards, replacing the campaign's for the members of that market."""

    inviter: RewardSpecData
    invitee: RewardSpecData


class DrawWinnerData(TypedDict):
    ticket_id: str
    member_id: str
    reward_id: str


class Campaign(CreatedAt, Base):
    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[CampaignStatus] = mapped_column(EnumText(CampaignStatus, 16), default=CampaignStatus.DRAFT)
    conversion_event: Mapped[ConversionEvent] = mapped_column(EnumText(ConversionEvent, 32))
    attribution_window_days: Mapped[int] = mapped_column(default=7)
    reward_timing: Mapped[RewardTiming] = mapped_column(EnumText(RewardTiming, 24), default=RewardTiming.INSTANT)
    inviter_reward: Mapped[RewardSpecData] = mapped_column(JSONType)
    invitee_reward: Mapped[RewardSpecData] = mapped_column(JSONType)
    milestones: Mapped[list[MilestoneData]] = mapped_column(JSONType)  # by threshold
    market_rewards: Mapped[dict[str, MarketRewardsData]] = mapped_column(JSONType)  # by market code
    markets: Mapped[list[str]] = mapped_column(JSONType)  # market codes; empty: every market
    # The units that have a budget row: rewards in any other unit are unlimited and skip the budget.
    budget_units: Mapped[list[str]] = mapped_column(JSONType, default=list)
    daily_cap_per_inviter: Mapped[int | None] = mapped_column(nullable=True)
    min_order_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    lottery_enabled: Mapped[bool] = mapped_column(default=False)
    fraud_velocity_per_hour: Mapped[int] = mapped_column(default=5)
    starts_at: Mapped[datetime | None] = mapped_column(nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(nullable=True)


class CampaignBudget(Base):
    """Spend per currency (or ``points``), kept under its limit by a conditional update and a CHECK."""

    __tablename__ = "campaign_budgets"
    __table_args__ = (
        UniqueConstraint("campaign_id", "unit"),
        CheckConstraint("spent >= 0 AND spent <= limit_amount", name="spent_within_limit"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    unit: Mapped[str] = mapped_column(String(8))  # an ISO currency or "points"
    limit_amount: Mapped[int] = mapped_column(BigInteger)
    spent: Mapped[int] = mapped_column(BigInteger, default=0)


class InviteClick(CreatedAt, Base):
    __tablename__ = "invite_clicks"
    __table_args__ = (
        Index("ix_invite_clicks_device", "shop_id", "device_id", "created_at"),
        Index("ix_invite_clicks_inviter", "inviter_id", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    inviter_id: Mapped[str | None] = mapped_column(ForeignKey("members.id"), nullable=True)
    group_id: Mapped[str | None] = mapped_column(ForeignKey("vip_groups.id"), nullable=True)
    channel: Mapped[ShareChannel] = mapped_column(EnumText(ShareChannel, 16))
    show_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    host_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    ip_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    user_agent: Mapped[str | None] = mapped_column(String(400), nullable=True)


class Referral(CreatedAt, Base):
    __tablename__ = "referrals"
    __table_args__ = (
        UniqueConstraint("shop_id", "invitee_id"),  # one inviter per invitee
        Index("ix_referrals_inviter", "campaign_id", "inviter_id", "status"),
        Index("ix_referrals_group", "group_id", "created_at"),
        Index("ix_referrals_ip", "shop_id", "ip_hash", "created_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    inviter_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    invitee_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    click_id: Mapped[str | None] = mapped_column(ForeignKey("invite_clicks.id"), nullable=True)
    group_id: Mapped[str | None] = mapped_column(ForeignKey("vip_groups.id"), nullable=True)
    # The click's channel, else the one given at sign-up (any text: a shop names its own), else "code".
    channel: Mapped[str] = mapped_column(String(16))
    show_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    host_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    ip_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    status: Mapped[ReferralStatus] = mapped_column(EnumText(ReferralStatus, 16))
    reason_codes: Mapped[list[str]] = mapped_column(JSONType, default=list)  # referral.fraud.ReasonCode values
    qualifying_order_id: Mapped[str | None] = mapped_column(ForeignKey("orders.id"), nullable=True)
    converted_at: Mapped[datetime | None] = mapped_column(nullable=True)
    reversed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Reward(CreatedAt, Base):
    """One reward granted to one member: what they see, whatever instrument carries it."""

    __tablename__ = "rewards"
    __table_args__ = (
        Index("ix_rewards_member", "member_id", "created_at"),
        Index("ix_rewards_release", "status", "release_at"),
        # At most one live reward per referral and role …
        Index(
            "uq_rewards_referral_role_live",
            "referral_id",
            "role",
            unique=True,
            sqlite_where=text("status != 'reversed' AND referral_id IS NOT NULL"),
            postgresql_where=text("status != 'reversed' AND referral_id IS NOT NULL"),
        ),
        # … and one live milestone reward per inviter and tier.
        Index(
            "uq_rewards_milestone_live",
            "campaign_id",
            "member_id",
            "milestone",
            unique=True,
            sqlite_where=text("status != 'reversed' AND milestone IS NOT NULL"),
            postgresql_where=text("status != 'reversed' AND milestone IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    campaign_id: Mapped[str | None] = mapped_column(ForeignKey("campaigns.id"), nullable=True)
    referral_id: Mapped[str | None] = mapped_column(ForeignKey("referrals.id"), nullable=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    role: Mapped[RewardRole] = mapped_column(EnumText(RewardRole, 16))
    milestone: Mapped[int | None] = mapped_column(nullable=True)
    reward_type: Mapped[RewardType] = mapped_column(EnumText(RewardType, 16))
    amount: Mapped[int] = mapped_column(BigInteger, default=0)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    coupon_id: Mapped[str | None] = mapped_column(ForeignKey("coupons.id"), nullable=True)
    label: Mapped[str] = mapped_column(String(200), default="")
    budget_unit: Mapped[str | None] = mapped_column(String(8), nullable=True)
    budget_cost: Mapped[int] = mapped_column(BigInteger, default=0)
    status: Mapped[RewardStatus] = mapped_column(EnumText(RewardStatus, 16))
    ledger_transaction_id: Mapped[str | None] = mapped_column(ForeignKey("ledger_transactions.id"), nullable=True)
    release_at: Mapped[datetime | None] = mapped_column(nullable=True)
    reversed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    reverse_reason: Mapped[str | None] = mapped_column(String(64), nullable=True)


class FraudReview(CreatedAt, Base):
    __tablename__ = "fraud_reviews"
    __table_args__ = (Index("ix_fraud_reviews_shop_status", "shop_id", "status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id"), unique=True)
    reason_codes: Mapped[list[str]] = mapped_column(JSONType)
    status: Mapped[ReviewStatus] = mapped_column(EnumText(ReviewStatus, 16), default=ReviewStatus.PENDING)
    note: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(40), nullable=True)


class DrawTicket(CreatedAt, Base):
    __tablename__ = "draw_tickets"
    __table_args__ = (
        UniqueConstraint("campaign_id", "order_id"),  # one ticket per invitee order
        Index("ix_draw_tickets_member", "member_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    order_id: Mapped[str] = mapped_column(ForeignKey("orders.id"))
    referral_id: Mapped[str] = mapped_column(ForeignKey("referrals.id"))
    status: Mapped[TicketStatus] = mapped_column(EnumText(TicketStatus, 16), default=TicketStatus.ACTIVE)
    ledger_transaction_id: Mapped[str | None] = mapped_column(ForeignKey("ledger_transactions.id"), nullable=True)
    draw_id: Mapped[str | None] = mapped_column(ForeignKey("draws.id"), nullable=True)


class Draw(CreatedAt, Base):
    __tablename__ = "draws"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    prize_count: Mapped[int]
    prize: Mapped[RewardSpecData] = mapped_column(JSONType)
    seed_hash: Mapped[str] = mapped_column(String(64))
    seed: Mapped[str] = mapped_column(String(64))  # kept secret until the draw is run
    status: Mapped[DrawStatus] = mapped_column(EnumText(DrawStatus, 16), default=DrawStatus.COMMITTED)
    ticket_ids: Mapped[list[str]] = mapped_column(JSONType, default=list)  # frozen when the draw runs
    winners: Mapped[list[DrawWinnerData]] = mapped_column(JSONType, default=list)
    drawn_at: Mapped[datetime | None] = mapped_column(nullable=True)


class VipGroup(CreatedAt, Base):
    __tablename__ = "vip_groups"
    __table_args__ = (UniqueConstraint("shop_id", "code"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    campaign_id: Mapped[str] = mapped_column(ForeignKey("campaigns.id"))
    name: Mapped[str] = mapped_column(String(200))
    code: Mapped[str] = mapped_column(String(16))
    owner_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    extra_offer: Mapped[RewardSpecData] = mapped_column(JSONType)
    weekly_target: Mapped[int] = mapped_column(default=0)
    base_perk_level: Mapped[int] = mapped_column(default=1)


class VipGroupMember(CreatedAt, Base):
    __tablename__ = "vip_group_members"
    __table_args__ = (UniqueConstraint("group_id", "member_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("vip_groups.id", ondelete="CASCADE"))
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"))


class VipGroupWeek(Base):
    """A group's invites in one week (shop reporting time zone); reaching the target lifts next week."""

    __tablename__ = "vip_group_weeks"
    __table_args__ = (UniqueConstraint("group_id", "week_start"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    group_id: Mapped[str] = mapped_column(ForeignKey("vip_groups.id", ondelete="CASCADE"))
    week_start: Mapped[date] = mapped_column(Date)
    invites: Mapped[int] = mapped_column(default=0)
    target: Mapped[int] = mapped_column(default=0)
    reached_at: Mapped[datetime | None] = mapped_column(nullable=True)
