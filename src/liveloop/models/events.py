"""Outbox: events written in the same transaction as the change, delivered after commit."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from liveloop.models.base import Base, CreatedAt, EnumText


class EventType(StrEnum):
    """Every event liveloop records in the outbox and sends to webhook endpoints (``type`` of an event)."""

    MEMBER_CREATED = "member.created"
    ORDER_PAID = "order.paid"
    ORDER_REFUNDED = "order.refunded"
    REFERRAL_CREATED = "referral.created"
    REFERRAL_HELD = "referral.held"
    REFERRAL_REJECTED = "referral.rejected"
    REFERRAL_CONVERTED = "referral.converted"
    REFERRAL_REVERSED = "referral.reversed"
    REWARD_GRANTED = "reward.granted"
    REWARD_RELEASED = "reward.released"
    REWARD_REVERSED = "reward.reversed"
    MILESTONE_REACHED = "milestone.reached"
    COUPON_REDEEMED = "coupon.redeemed"
    COUPON_ROLLED_BACK = "coupon.rolled_back"
    DRAW_COMMITTED = "draw.committed"
    DRAW_COMPLETED = "draw.completed"
    GROUP_TARGET_REACHED = "group.target_reached"
    POINTS_EXPIRED = "points.expired"
    SHOW_SCHEDULED = "show.scheduled"
    SHOW_STARTED = "show.started"
    SHOW_ENDED = "show.ended"
    SHOW_HIGH_POINT = "show.high_point"
    SHOW_VIDEO_EVENT = "show.video_event"
    LIVE_INTERACTION_LAUNCHED = "live.interaction_launched"
    LIVE_INTERACTION_SETTLED = "live.interaction_settled"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # queued, being attempted, or waiting for its next retry
    DELIVERED = "delivered"  # the endpoint answered 2xx
    FAILED = "failed"  # every attempt failed; a re-send queues it again


class WebhookEndpoint(CreatedAt, Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    description: Mapped[str | None] = mapped_column(String(500), nullable=True)
    secret: Mapped[str] = mapped_column(String(128))
    # After a rotation the old secret still signs deliveries (beside the new one) until it expires.
    previous_secret: Mapped[str | None] = mapped_column(String(128), nullable=True)
    previous_secret_expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    event_types: Mapped[list[Any]]
    # A paused endpoint keeps its deliveries queued; they go out once it is active again.
    active: Mapped[bool] = mapped_column(default=True)


class OutboxEvent(CreatedAt, Base):
    __tablename__ = "outbox_events"
    __table_args__ = (
        Index("ix_outbox_events_shop_created", "shop_id", "created_at"),
        # The worker's queue: events not yet turned into deliveries.
        Index(
            "ix_outbox_events_pending_fanout",
            "created_at",
            sqlite_where=text("fanned_out_at IS NULL"),
            postgresql_where=text("fanned_out_at IS NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    type: Mapped[EventType] = mapped_column(EnumText(EventType, 64))
    payload: Mapped[dict[str, Any]]
    # Set once the worker has queued a delivery for every endpoint subscribed at that time.
    fanned_out_at: Mapped[datetime | None] = mapped_column(nullable=True)


class WebhookDelivery(CreatedAt, Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("event_id", "endpoint_id"),
        Index("ix_webhook_deliveries_due", "status", "next_attempt_at"),
        # An endpoint's deliveries, newest first (ids are time-ordered).
        Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    event_id: Mapped[str] = mapped_column(ForeignKey("outbox_events.id", ondelete="CASCADE"))
    endpoint_id: Mapped[str] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    status: Mapped[DeliveryStatus] = mapped_column(EnumText(DeliveryStatus, 16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime]
    locked_until: Mapped[datetime | None] = mapped_column(nullable=True)
    last_attempt_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_status_code: Mapped[int | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    delivered_at: Mapped[datetime | None] = mapped_column(nullable=True)
