from __future__ import annotations

from datetime import datetime
from typing import Literal, TypedDict

from pydantic import BaseModel, ConfigDict, Field, model_validator

from liveloop.kit.money import Currency
from liveloop.kit.schemas import EmailAddress, Money, PhoneNumber, RequestModel, Timestamp, Timezone
from liveloop.markets.schemas import MarketCode
from liveloop.models import OrderStatus


class CustomerIn(RequestModel):
    id: str = Field(min_length=1, max_length=255, description="The shop's customer id")
    email: EmailAddress | None = None
    phone: PhoneNumber | None = None
    name: str | None = Field(None, max_length=200)
    locale: str | None = Field(None, max_length=16)
    market: MarketCode | None = None
    timezone: Timezone | None = None
    device_id: str | None = Field(
        None,
        max_length=128,
        description="The buyer's browser device: its `ll_did` cookie value exactly as liveloop set it. A value "
        "liveloop did not sign is ignored (the order is recorded without it), like an unknown click id.",
    )


class OrderIn(RequestModel):
    id: str = Field(min_length=1, max_length=255, description="The shop's order id")
    currency: Currency
    total_minor: Money
    refunded_minor: Money = 0
    payment_fingerprint: str | None = Field(None, max_length=128)
    customer: CustomerIn

    @model_validator(mode="after")
    def _refund(self) -> OrderIn:
        if self.refunded_minor > self.total_minor:
            raise ValueError("refunded_minor cannot exceed total_minor")
        return self


class OrderEventIn(RequestModel):
    """A generic order event, as any shop platform can send it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "evt_123",
                    "type": "order.paid",
                    "occurred_at": "2026-11-22T10:00:00Z",
                    "order": {
                        "id": "1001",
                        "currency": "USD",
                        "total_minor": 2599,
                        "customer": {"id": "c-42", "email": "ana@example.com"},
                    },
                }
            ]
        }
    )

    id: str = Field(min_length=1, max_length=255, description="Unique per event: deliveries with the same id are one")
    type: Literal["order.created", "order.paid", "order.refunded", "order.partially_refunded", "order.cancelled"]
    occurred_at: Timestamp | None = None
    order: OrderIn


class Order(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    external_id: str
    member_id: str
    currency: str
    total_minor: int
    refunded_minor: int
    status: str
    paid_at: datetime | None
    refunded_at: datetime | None
    created_at: datetime


class WebhookResult(BaseModel):
    received: bool = True
    duplicate: bool = False
    order_id: str | None = None
    status: str | None = None
    skipped: str | None = Field(
        None, description="Why the event was acknowledged without effect (`guest_order`: a checkout with no customer)"
    )


class OrderEventData(TypedDict):
    """The data of an ``order.paid`` or ``order.refunded`` event, as webhook endpoints receive it."""

    order_id: str
    external_id: str
    member_id: str
    currency: str
    total_minor: int
    refunded_minor: int
    status: OrderStatus
