from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from liveloop.models.base import Base, CreatedAt, EnumText


class CouponBatchStatus(StrEnum):
    GENERATING = "generating"  # its codes are being made in chunks; none can be used yet
    READY = "ready"  # every code exists; the batch can be used


class CouponKind(StrEnum):
    FIXED = "fixed"  # amount_minor off, in the batch's currency
    PERCENT = "percent"  # percent_bp of the order's total
    GIFT = "gift"  # gift_sku added to the order; no discount


class CouponRedemptionStatus(StrEnum):
    REDEEMED = "redeemed"
    ROLLED_BACK = "rolled_back"  # given back (the order was cancelled): the use counts no more


class CouponBatch(CreatedAt, Base):
    __tablename__ = "coupon_batches"
    __table_args__ = (Index("ix_coupon_batches_status", "status"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    pattern: Mapped[str] = mapped_column(String(64))
    kind: Mapped[CouponKind] = mapped_column(EnumText(CouponKind, 16))
    amount_minor: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    percent_bp: Mapped[int | None] = mapped_column(nullable=True)  # basis points: 1000 = 10 %
    gift_sku: Mapped[str | None] = mapped_column(String(100), nullable=True)
    min_spend_minor: Mapped[int] = mapped_column(BigInteger, default=0)
    max_uses_per_coupon: Mapped[int] = mapped_column(default=1)
    max_uses_per_member: Mapped[int] = mapped_column(default=1)
    stackable: Mapped[bool] = mapped_column(default=False)
    # Percent coupons only: valid on an order in any currency (such a batch has no currency).
    currency_free: Mapped[bool] = mapped_column(default=False, server_default="0")
    starts_at: Mapped[datetime | None] = mapped_column(nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(nullable=True)
    status: Mapped[CouponBatchStatus] = mapped_column(
        EnumText(CouponBatchStatus, 16), default=CouponBatchStatus.READY, server_default="ready"
    )
    # Unbound codes asked for at creation, and how many of them exist so far (chunks commit one by one).
    codes_total: Mapped[int] = mapped_column(default=0, server_default="0")
    codes_generated: Mapped[int] = mapped_column(default=0, server_default="0")


class Coupon(CreatedAt, Base):
    __tablename__ = "coupons"
    __table_args__ = (
        UniqueConstraint("shop_id", "code"),
        CheckConstraint("uses >= 0 AND uses <= max_uses", name="uses_within_limit"),
        Index("ix_coupons_member", "member_id"),
        # A batch's codes are read in id order (its pages and its CSV export): one range scan each.
        Index("ix_coupons_batch", "batch_id", "id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    batch_id: Mapped[str] = mapped_column(ForeignKey("coupon_batches.id"))
    code: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[str | None] = mapped_column(ForeignKey("members.id"), nullable=True)
    uses: Mapped[int] = mapped_column(default=0)
    max_uses: Mapped[int] = mapped_column(default=1)
    voided_at: Mapped[datetime | None] = mapped_column(nullable=True)


class CouponMemberUsage(Base):
    """Per-member use count of a batch; an atomic conditional update enforces the per-member limit."""

    __tablename__ = "coupon_member_usage"
    __table_args__ = (
        UniqueConstraint("batch_id", "member_id"),
        CheckConstraint("uses >= 0", name="uses_non_negative"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    batch_id: Mapped[str] = mapped_column(ForeignKey("coupon_batches.id"))
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    uses: Mapped[int] = mapped_column(default=0)


class CouponRedemption(CreatedAt, Base):
    __tablename__ = "coupon_redemptions"
    __table_args__ = (
        UniqueConstraint("shop_id", "idempotency_key"),
        Index("ix_coupon_redemptions_coupon", "coupon_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    coupon_id: Mapped[str] = mapped_column(ForeignKey("coupons.id"))
    member_id: Mapped[str] = mapped_column(ForeignKey("members.id"))
    idempotency_key: Mapped[str] = mapped_column(String(255))
    order_ref: Mapped[str | None] = mapped_column(String(255), nullable=True)
    order_total_minor: Mapped[int] = mapped_column(BigInteger)
    discount_minor: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
    status: Mapped[CouponRedemptionStatus] = mapped_column(EnumText(CouponRedemptionStatus, 16))
    rolled_back_at: Mapped[datetime | None] = mapped_column(nullable=True)


class CouponOrder(CreatedAt, Base):
    """The coupons redeemed on one order of a shop.

    Redemptions of one order race on this row: a non-stackable coupon takes it only while it counts no
    redemption (``… WHERE redeemed = 0``), a stackable one only while no non-stackable coupon holds it.
    """

    __tablename__ = "coupon_orders"
    __table_args__ = (
        UniqueConstraint("shop_id", "order_ref"),
        CheckConstraint("redeemed >= 0 AND (NOT non_stackable OR redeemed = 1)", name="stacking_rule"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    order_ref: Mapped[str] = mapped_column(String(255))
    redeemed: Mapped[int] = mapped_column(default=0)
    non_stackable: Mapped[bool] = mapped_column(default=False)
