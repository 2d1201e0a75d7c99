from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from liveloop.models.base import Base, CreatedAt, EnumText


class ConsentChannel(StrEnum):
    """A channel a member consents (or not) to be reached on."""

    EMAIL = "email"
    SMS = "sms"
    WHATSAPP = "whatsapp"
    PUSH = "push"
    IN_APP = "in_app"
    WEBHOOK = "webhook"


class Member(CreatedAt, Base):
    __tablename__ = "members"
    __table_args__ = (
        UniqueConstraint("shop_id", "external_id"),
        UniqueConstraint("shop_id", "referral_code"),
        Index("ix_members_shop_email_canonical", "shop_id", "email_canonical"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    external_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    # Lower-cased, plus-tag and (for Gmail) dots removed: what fraud checks compare.
    email_canonical: Mapped[str | None] = mapped_column(String(320), nullable=True)
    phone_e164: Mapped[str | None] = mapped_column(String(20), nullable=True)
    name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # What the member chose to show publicly; public pages mask the name when there is none.
    display_name: Mapped[str | None] = mapped_column(String(40), nullable=True)
    locale: Mapped[str] = mapped_column(String(16), default="en")
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    market: Mapped[str] = mapped_column(String(16))
    referral_code: Mapped[str] = mapped_column(String(16))
    signup_ip_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    first_paid_order_at: Mapped[datetime | None] = mapped_column(nullable=True)
    erased_at: Mapped[datetime | None] = mapped_column(nullable=True)


class MemberDevice(CreatedAt, Base):
    __tablename__ = "member_devices"
    __table_args__ = (
        UniqueConstraint("shop_id", "member_id", "device_id"),
        Index("ix_member_devices_shop_device", "shop_id", "device_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    device_id: Mapped[str] = mapped_column(String(128))


class Consent(CreatedAt, Base):
    """Append-only consent history; the newest record per (channel, purpose) is in force."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_member", "member_id", "channel", "purpose"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    channel: Mapped[ConsentChannel] = mapped_column(EnumText(ConsentChannel, 16))
    purpose: Mapped[str] = mapped_column(String(32))  # the shop's own words ("marketing"), not a fixed list
    granted: Mapped[bool]
    recorded_at: Mapped[datetime]
    source: Mapped[str] = mapped_column(String(200))
    text_version: Mapped[str] = mapped_column(String(64))
