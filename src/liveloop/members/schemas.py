from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from liveloop.kit.schemas import EmailAddress, PhoneNumber, RequestModel, Timestamp, Timezone
from liveloop.markets.schemas import MarketCode
from liveloop.models import ConsentChannel

DEVICE_ID_DESCRIPTION = (
    "The browser's device: the value of its `ll_did` cookie exactly as liveloop set it (by an invite link or "
    "the live room; the shop's backend reads it from the request and passes it on). A value liveloop did not "
    "sign answers 422 `invalid_device`."
)
DeviceId = Annotated[str | None, Field(max_length=80, description=DEVICE_ID_DESCRIPTION)]
DisplayName = Annotated[
    str | None,
    Field(
        min_length=1,
        max_length=40,
        description="What the member chose to show publicly (draw winners, leaderboards). Without one, public "
        "pages show a masked form of the name (`A•••`), never the name itself.",
    ),
]


class ConsentIn(RequestModel):
    channel: ConsentChannel = Field(strict=False)  # the enum's value, as JSON gives it
    purpose: str = Field(min_length=1, max_length=32, examples=["marketing"])
    granted: bool
    source: str = Field(min_length=1, max_length=200, examples=["checkout-checkbox"])
    text_version: str = Field(min_length=1, max_length=64, examples=["2026-10-01"])
    recorded_at: Timestamp | None = None


class Consent(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    channel: ConsentChannel
    purpose: str
    granted: bool
    recorded_at: datetime
    source: str
    text_version: str


class Consents(BaseModel):
    in_force: list[Consent] = Field(description="The newest record per channel and purpose")
    history: list[Consent] = Field(description="Every record, oldest first")


class ReferralIn(RequestModel):
    """How the new member arrived: the click id from the landing URL, or a typed invite code."""

    click_id: str | None = Field(None, max_length=40)
    code: str | None = Field(None, max_length=16, description="An inviter's or VIP group's short code")
    channel: str | None = Field(None, max_length=16)
    show_id: str | None = Field(None, max_length=64)
    host_id: str | None = Field(None, max_length=64)


class MemberCreate(RequestModel):
    external_id: str | None = Field(None, max_length=255, description="The shop's customer id")
    email: EmailAddress | None = None
    phone: PhoneNumber | None = None
    name: str | None = Field(None, max_length=200)
    display_name: DisplayName = None
    locale: str = Field("en", max_length=16)
    timezone: Timezone | None = Field(None, description="IANA zone; the market's default if absent")
    market: MarketCode | None = Field(None, description="Market code; the shop's default if absent")
    device_id: DeviceId = None
    ip: str | None = Field(None, max_length=64, description="Sign-up IP (stored only as a keyed hash)")
    existing_customer: bool = Field(False, description="True for customers who bought before joining")
    consents: list[ConsentIn] = Field(default_factory=list, max_length=20)
    referral: ReferralIn | None = None


class MemberUpdate(RequestModel):
    email: EmailAddress | None = None
    phone: PhoneNumber | None = None
    name: str | None = Field(None, max_length=200)
    display_name: DisplayName = None
    locale: str | None = Field(None, max_length=16)
    timezone: Timezone | None = None
    market: MarketCode | None = None
    device_id: DeviceId = None


class Member(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: str
    external_id: str | None
    email: str | None
    phone_e164: str | None
    name: str | None
    display_name: str | None
    locale: str
    timezone: str
    market: str
    referral_code: str
    first_paid_order_at: datetime | None
    created_at: datetime


class MemberCreated(Member):
    referral: dict[str, object] | None = None
