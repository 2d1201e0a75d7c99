from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, cast

from pydantic import BaseModel, ConfigDict, Field, model_validator

from liveloop.kit.money import KNOWN_CURRENCIES, Currency, is_currency
from liveloop.kit.schemas import (
    MAX_COUNT,
    MAX_MINOR,
    Count,
    Id,
    Money,
    PositiveCount,
    PositiveMoney,
    RequestModel,
    Timestamp,
)
from liveloop.markets.schemas import MarketCode
from liveloop.models.referral import (
    CampaignStatus,
    DrawStatus,
    MarketRewardsData,
    MilestoneData,
    ReferralStatus,
    ReviewStatus,
    RewardRole,
    RewardSpecData,
    RewardStatus,
    RewardType,
    TicketStatus,
)
from liveloop.models.referral import ConversionEvent as ConversionEventValue
from liveloop.models.referral import RewardTiming as RewardTimingValue

Label = Annotated[str, Field(max_length=200)]
# A budget's unit: "points" or an ISO currency.
BudgetUnit = Annotated[
    str, Field(min_length=3, max_length=8, json_schema_extra={"enum": ["points", *sorted(KNOWN_CURRENCIES)]})
]
BudgetLimit = Annotated[int, Field(ge=0, le=MAX_MINOR)]


REASON_CODES_DESCRIPTION = (
    "Why the referral was rejected, held for review or reversed. Rejected: `self_referral`, "
    "`existing_customer`, `same_device`, `disposable_email`, `inviter_daily_cap`, `budget_exhausted`, "
    "`click_expired`. Held: `same_payment`, `similar_email`, `ip_velocity`, `device_velocity`, `same_network` "
    "(the invitee signed up, or tapped the link, from a network the inviter was seen on within the campaign's "
    "attribution window). Reversed: `order_refunded`, `fraud_confirmed`."
)


class _RewardSpecModel(RequestModel):
    def data(self) -> RewardSpecData:
        """The spec as a JSON column stores it (and the API shows it)."""
        return cast(RewardSpecData, self.model_dump())


class PointsReward(_RewardSpecModel):
    type: Literal["points"]
    amount: int = Field(gt=0, le=10_000_000)
    label: Label = ""


class CreditReward(_RewardSpecModel):
    type: Literal["credit"]
    amount: PositiveMoney = Field(description="Minor units, e.g. 300 = USD 3.00")
    currency: Currency
    label: Label = ""


class CouponReward(_RewardSpecModel):
    type: Literal["coupon"]
    batch_id: Id = Field(description="Each grant issues one new code of this batch, bound to the member")
    label: Label = ""


class GiftReward(_RewardSpecModel):
    type: Literal["gift"]
    sku: str = Field(min_length=1, max_length=100)
    label: Label = ""
    value_minor: Money = Field(0, description="What the gift costs the shop, counted against the budget")
    currency: Currency | None = None


class PerkReward(_RewardSpecModel):
    type: Literal["perk"]
    label: str = Field(min_length=1, max_length=200)


RewardSpec = Annotated[
    PointsReward | CreditReward | CouponReward | GiftReward | PerkReward, Field(discriminator="type")
]


class Milestone(RequestModel):
    threshold: PositiveCount = Field(description="Converted invites needed")
    reward: RewardSpec

    def data(self) -> MilestoneData:
        return {"threshold": self.threshold, "reward": self.reward.data()}


class MarketRewards(RequestModel):
    inviter: RewardSpec | None = None
    invitee: RewardSpec | None = None

    def data(self) -> MarketRewardsData:
        """As stored: only the sides given, without their unset (null) fields."""
        return cast(MarketRewardsData, self.model_dump(exclude_none=True))


ConversionEvent = Literal["signup", "first_view", "first_paid_order"]


class CampaignCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200)
    conversion_event: ConversionEvent = "first_paid_order"
    attribution_window_days: int = Field(7, ge=1, le=365)
    reward_timing: Literal["instant", "after_return_window"] = "instant"
    inviter_reward: RewardSpec | None = None
    invitee_reward: RewardSpec | None = None
    use_market_presets: bool = Field(
        False, description="Fill missing per-market rewards from each target market's presets"
    )
    market_rewards: dict[MarketCode, MarketRewards] = Field(default_factory=dict, max_length=20)
    milestones: list[Milestone] = Field(default_factory=list, max_length=20)
    markets: list[MarketCode] = Field(
        default_factory=list, max_length=20, description="Target markets; empty means all"
    )
    daily_cap_per_inviter: PositiveCount | None = None
    budgets: dict[BudgetUnit, BudgetLimit] = Field(
        default_factory=dict, max_length=20, description='{"USD": 50000, "points": 1000000}'
    )
    min_order_minor: Money = 0
    lottery_enabled: bool = False
    fraud_velocity_per_hour: int = Field(5, ge=1, le=MAX_COUNT)
    starts_at: Timestamp | None = None
    ends_at: Timestamp | None = None
    status: Literal["draft", "active"] = "draft"

    @model_validator(mode="after")
    def _check(self) -> CampaignCreate:
        if self.starts_at and self.ends_at and self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        thresholds = [m.threshold for m in self.milestones]
        if len(set(thresholds)) != len(thresholds):
            raise ValueError("milestone thresholds must be distinct")
        for unit, limit in self.budgets.items():
            if unit != "points" and not is_currency(unit):
                raise ValueError(f"budget unit {unit!r} is neither 'points' nor an ISO currency")
            if limit < 0:
                raise ValueError("budgets are non-negative")
        return self


class CampaignUpdate(RequestModel):
    name: str | None = Field(None, min_length=1, max_length=200)
    status: Literal["draft", "active", "paused", "ended"] | None = None
    daily_cap_per_inviter: PositiveCount | None = None
    budgets: dict[BudgetUnit, BudgetLimit] | None = Field(None, max_length=20)
    ends_at: Timestamp | None = None
    milestones: list[Milestone] | None = Field(None, max_length=20)


class Budget(BaseModel):
    unit: str
    limit: int
    spent: int


class Campaign(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    status: CampaignStatus
    conversion_event: ConversionEventValue
    attribution_window_days: int
    reward_timing: RewardTimingValue
    inviter_reward: dict[str, Any]
    invitee_reward: dict[str, Any]
    market_rewards: dict[str, Any]
    milestones: list[Any]
    markets: list[Any]
    daily_cap_per_inviter: int | None
    min_order_minor: int
    lottery_enabled: bool
    starts_at: datetime | None
    ends_at: datetime | None
    created_at: datetime
    budgets: list[Budget] = Field(default_factory=list)


class ShareTarget(BaseModel):
    channel: str
    url: str = Field(description="The invite link for this channel")
    share_url: str | None = Field(description="Opens the channel's share dialog; null where the app has none")
    message: str


class ShareSheet(BaseModel):
    """The live room's share sheet: a member's own invite links for the show, or only the room's link."""

    room_url: str
    code: str | None = Field(
        None, exclude_if=lambda code: code is None, description="The member's referral code (members only)"
    )
    links: list[ShareTarget]


class InviteLinks(BaseModel):
    member_id: str
    code: str
    locale: str
    links: list[ShareTarget]
    qr_png: str
    qr_svg: str


class Referral(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    campaign_id: str
    inviter_id: str
    invitee_id: str
    channel: str
    show_id: str | None
    host_id: str | None
    group_id: str | None
    status: ReferralStatus
    reason_codes: list[Any] = Field(description=REASON_CODES_DESCRIPTION)
    qualifying_order_id: str | None
    converted_at: datetime | None
    reversed_at: datetime | None
    created_at: datetime


class Reward(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    campaign_id: str | None
    referral_id: str | None
    member_id: str
    role: RewardRole
    milestone: int | None
    reward_type: RewardType
    amount: int
    currency: str | None
    coupon_id: str | None
    label: str
    status: RewardStatus
    release_at: datetime | None
    reversed_at: datetime | None
    reverse_reason: str | None
    created_at: datetime


class ReviewDecision(RequestModel):
    note: str | None = Field(None, max_length=1000)


class Review(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    referral_id: str
    reason_codes: list[Any] = Field(description=REASON_CODES_DESCRIPTION)
    status: ReviewStatus
    note: str | None
    decided_at: datetime | None
    created_at: datetime


class LeaderboardRow(BaseModel):
    rank: int
    member_id: str
    name: str | None
    display_name: str = Field(
        description="What a public leaderboard shows: the member's display name, else a masked form (`A•••`)"
    )
    referral_code: str
    converted: int


DRAW_MAX_TICKETS = 25_000  # the most tickets verify recomputes in one request (25,000 real ids fit the 1 MB body limit)
DRAW_MAX_PRIZES = 10_000  # the most winners a draw has
TicketId = Annotated[str, Field(min_length=1, max_length=64)]


class DrawCreate(RequestModel):
    prize_count: int = Field(gt=0, le=DRAW_MAX_PRIZES)
    prize: RewardSpec


class Draw(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    campaign_id: str
    prize_count: int
    prize: dict[str, Any]
    seed_hash: str
    seed: str | None
    status: DrawStatus
    ticket_ids: list[Any]
    winners: list[Any]
    drawn_at: datetime | None
    created_at: datetime


class PublicWinner(BaseModel):
    ticket_id: str
    name: str = Field(description="The member's display name, else a masked form (`A•••`) or `Guest`")


class PublicDraw(BaseModel):
    """A draw as anyone may see it: enough to check it, nothing that names a member or a reward."""

    id: str
    campaign_id: str
    prize_count: int
    prize: dict[str, Any]
    seed_hash: str
    seed: str | None
    status: DrawStatus
    ticket_ids: list[str]
    winners: list[PublicWinner]
    drawn_at: datetime | None
    created_at: datetime
    algorithm: str


class DrawVerifyIn(RequestModel):
    draw_id: Id
    seed: str = Field(min_length=1, max_length=128, description="The revealed seed")
    seed_hash: str = Field(pattern="^[0-9a-fA-F]{64}$", description="SHA-256 of the seed, published before the draw")
    ticket_ids: list[TicketId] = Field(
        max_length=DRAW_MAX_TICKETS,
        description=f"The draw's tickets, in any order; at most {DRAW_MAX_TICKETS:,} (verify larger draws offline "
        "with the published algorithm)",
    )
    prize_count: int = Field(gt=0, le=DRAW_MAX_PRIZES)
    winners: list[TicketId] = Field(max_length=DRAW_MAX_PRIZES)


class DrawVerifyOut(BaseModel):
    seed_matches_hash: bool
    winners_match: bool
    recomputed_winners: list[str]


class GroupCreate(RequestModel):
    campaign_id: Id
    name: str = Field(min_length=1, max_length=200)
    owner_id: Id
    extra_offer: RewardSpec
    weekly_target: Count = 0
    base_perk_level: int = Field(1, ge=0, le=100)


class Group(BaseModel):
    id: str
    campaign_id: str
    name: str
    code: str
    owner_id: str
    extra_offer: dict[str, Any]
    weekly_target: int
    invites_this_week: int
    week_start: str
    perk_level: int
    link: str
    members: int


class Ticket(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    campaign_id: str
    order_id: str | None
    status: TicketStatus
    draw_id: str | None
    created_at: datetime


class GroupMembership(BaseModel):
    id: str
    name: str
    invites_this_week: int
    week_start: str
    perk_level: int
    members: int
