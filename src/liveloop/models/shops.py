from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from liveloop.models.base import Base, CreatedAt, EnumText


class ApiKeyScope(StrEnum):
    """What an API key may do (``ApiKey.scopes`` holds some of them); ``admin`` may do everything."""

    ADMIN = "admin"
    MEMBERS_READ = "members:read"
    MEMBERS_WRITE = "members:write"
    ORDERS_WRITE = "orders:write"
    CAMPAIGNS_READ = "campaigns:read"
    CAMPAIGNS_WRITE = "campaigns:write"
    LEDGER_READ = "ledger:read"
    LEDGER_WRITE = "ledger:write"
    COUPONS_READ = "coupons:read"
    COUPONS_WRITE = "coupons:write"
    REVIEWS_WRITE = "reviews:write"
    LIVE_READ = "live:read"
    LIVE_WRITE = "live:write"


class ConsentRegime(StrEnum):
    """The privacy law a market's consents follow."""

    GDPR = "gdpr"
    CCPA = "ccpa"
    NONE = "none"


class Shop(CreatedAt, Base):
    __tablename__ = "shops"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(200))
    reporting_timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    default_market: Mapped[str] = mapped_column(String(16), default="na")
    landing_url: Mapped[str] = mapped_column(String(1000))
    webhook_secret: Mapped[str] = mapped_column(String(128))
    shopify_secret: Mapped[str | None] = mapped_column(String(128), nullable=True)
    # After a rotation the previous secret still verifies webhooks until this time (deliveries in flight).
    shopify_previous_secret: Mapped[str | None] = mapped_column(String(128), nullable=True)
    shopify_previous_secret_expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # Origins (scheme://host[:port]) whose pages may frame the viewer page: the shop's storefronts.
    storefront_origins: Mapped[list[Any]] = mapped_column(default=list)

    @property
    def shopify_configured(self) -> bool:
        return bool(self.shopify_secret)


class ApiKey(CreatedAt, Base):
    __tablename__ = "api_keys"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    prefix: Mapped[str] = mapped_column(String(24), unique=True)
    key_hash: Mapped[str] = mapped_column(String(64))
    scopes: Mapped[list[Any]]  # ApiKeyScope values, sorted
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Market(CreatedAt, Base):
    __tablename__ = "markets"
    __table_args__ = (UniqueConstraint("shop_id", "code"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    code: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(100))
    currency: Mapped[str] = mapped_column(String(3))
    timezone: Mapped[str] = mapped_column(String(64))
    locales: Mapped[list[Any]]
    consent_regime: Mapped[ConsentRegime] = mapped_column(EnumText(ConsentRegime, 16))
    points_expiry_months: Mapped[int] = mapped_column(default=12)
    return_window_days: Mapped[int] = mapped_column(default=14)
    reward_presets: Mapped[dict[str, Any]]


class IdempotencyRecord(CreatedAt, Base):
    """The first answer to a write made with an ``Idempotency-Key``; replays return it."""

    __tablename__ = "idempotency_records"
    __table_args__ = (UniqueConstraint("shop_id", "scope", "key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(255))
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int]
    response_body: Mapped[dict[str, Any]]


class InboundEvent(CreatedAt, Base):
    """Every incoming webhook delivery, unique per source and event id, so a replay has no effect."""

    __tablename__ = "inbound_events"
    __table_args__ = (UniqueConstraint("shop_id", "source", "event_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    source: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]]
