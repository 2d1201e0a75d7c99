"""The coupons' API models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from liveloop.coupons import service
from liveloop.kit.money import Currency
from liveloop.kit.schemas import Id, Money, PositiveCount, PositiveMoney, RequestModel, Timestamp


class BatchCreate(RequestModel):
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["fixed", "percent", "gift"]
    count: int = Field(
        0,
        ge=0,
        le=service.MAX_BATCH,
        description=f"Unbound codes to generate: up to {service.CHUNK} at once, more in the background",
    )
    member_ids: list[Id] = Field(
        default_factory=list, max_length=1000, description="Also one code bound to each of these members"
    )
    pattern: str = Field(
        "####-####",
        min_length=4,
        max_length=64,
        description="'#' is a random character; at least four of them",
        # Checked by the service (422 pattern_too_small), also against the count.
        json_schema_extra={"pattern": "^([^#]*#){4}"},
    )
    amount_minor: PositiveMoney | None = None
    currency: Currency | None = Field(
        None, description="Required, except for a percent coupon marked currency_free; orders must be in it"
    )
    currency_free: bool = Field(False, description="Percent coupons only: valid on orders in any currency")
    percent_bp: int | None = Field(None, gt=0, le=10_000)
    gift_sku: str | None = Field(None, max_length=100)
    min_spend_minor: Money = 0
    max_uses_per_coupon: PositiveCount = 1
    max_uses_per_member: PositiveCount = 1
    stackable: bool = False
    starts_at: Timestamp | None = None
    ends_at: Timestamp | None = None


class BatchOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    name: str
    kind: str
    pattern: str
    amount_minor: int | None
    currency: str | None
    currency_free: bool
    percent_bp: int | None
    gift_sku: str | None
    min_spend_minor: int
    max_uses_per_coupon: int
    max_uses_per_member: int
    stackable: bool
    starts_at: datetime | None
    ends_at: datetime | None
    created_at: datetime
    status: str = Field(description="generating (codes are being made; not usable yet) or ready")
    codes_total: int = Field(description="Unbound codes asked for at creation")
    codes_generated: int = Field(description="How many of them exist so far")
    issued: int = 0
    redeemed: int = 0


class CouponOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    batch_id: str
    code: str
    member_id: str | None
    uses: int
    max_uses: int
    voided_at: datetime | None


class BatchCreated(BatchOut):
    coupons: list[CouponOut]


class Bind(RequestModel):
    member_id: Id


class Check(RequestModel):
    member_id: Id
    order_total_minor: Money
    currency: Currency
    order_ref: str | None = Field(None, max_length=255)


class Quote(BaseModel):
    code: str
    valid: bool = True
    discount_minor: int
    currency: str
    gift_sku: str | None


class RedemptionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    coupon_id: str
    member_id: str
    order_ref: str | None
    order_total_minor: int
    discount_minor: int
    currency: str | None
    status: str
    created_at: datetime
    rolled_back_at: datetime | None
