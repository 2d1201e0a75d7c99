"""All tables. Import from here so that every mapper is registered before use."""

from liveloop.models.base import Base
from liveloop.models.coupons import (
    Coupon,
    CouponBatch,
    CouponBatchStatus,
    CouponMemberUsage,
    CouponOrder,
    CouponRedemption,
)
from liveloop.models.events import OutboxEvent, WebhookDelivery, WebhookEndpoint
from liveloop.models.ledger import LedgerAccount, LedgerEntry, LedgerTransaction, LotMovement, PointLot
from liveloop.models.live import (
    CohostRequest,
    Interaction,
    InteractionEntry,
    RoomMessage,
    Show,
    ShowCounter,
    ShowCue,
    ShowRestriction,
    ShowViewer,
    WatchSegment,
)
from liveloop.models.members import Consent, Member, MemberDevice
from liveloop.models.orders import Order
from liveloop.models.referral import (
    Campaign,
    CampaignBudget,
    Draw,
    DrawTicket,
    FraudReview,
    InviteClick,
    Referral,
    Reward,
    VipGroup,
    VipGroupMember,
    VipGroupWeek,
)
from liveloop.models.shops import ApiKey, IdempotencyRecord, InboundEvent, Market, Shop

__all__ = [
    "ApiKey",
    "Base",
    "Campaign",
    "CampaignBudget",
    "CohostRequest",
    "Consent",
    "Coupon",
    "CouponBatch",
    "CouponBatchStatus",
    "CouponMemberUsage",
    "CouponOrder",
    "CouponRedemption",
    "Draw",
    "DrawTicket",
    "FraudReview",
    "IdempotencyRecord",
    "InboundEvent",
    "Interaction",
    "InteractionEntry",
    "InviteClick",
    "LedgerAccount",
    "LedgerEntry",
    "LedgerTransaction",
    "LotMovement",
    "Market",
    "Member",
    "MemberDevice",
    "Order",
    "OutboxEvent",
    "PointLot",
    "Referral",
    "Reward",
    "RoomMessage",
    "Shop",
    "Show",
    "ShowCounter",
    "ShowCue",
    "ShowRestriction",
    "ShowViewer",
    "VipGroup",
    "VipGroupMember",
    "VipGroupWeek",
    "WatchSegment",
    "WebhookDelivery",
    "WebhookEndpoint",
]
