"""The error-code catalogue, gathered from every domain: ``GET /v1/error-codes`` and the page ``/docs/errors``.

Each domain declares its codes in its own ``errors.py`` (see :mod:`liveloop.kit.errors`); this module imports
them all, in the order the page shows them. A domain that adds an enum lists it in :data:`DOMAINS` (a test
fails until it does).
"""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from liveloop.coupons.errors import CouponErrorCode
from liveloop.events.errors import EventsErrorCode
from liveloop.kit.errors import ApiErrorCode, ErrorCode
from liveloop.ledger.errors import LedgerErrorCode
from liveloop.live.errors import LiveErrorCode, RoomErrorCode
from liveloop.markets.errors import MarketErrorCode
from liveloop.members.errors import MemberErrorCode
from liveloop.orders.errors import OrderErrorCode
from liveloop.referral.errors import ReferralErrorCode
from liveloop.shops.errors import ShopErrorCode


@dataclass(frozen=True)
class Domain:
    name: str  # the anchor on the page and ``domain`` in the JSON
    title: str
    codes: type[ErrorCode]

    @property
    def summary(self) -> str:
        return (self.codes.__doc__ or "").strip()


DOMAINS: tuple[Domain, ...] = (
    Domain("api", "Any request", ApiErrorCode),
    Domain("shops", "Shops and API keys", ShopErrorCode),
    Domain("markets", "Markets", MarketErrorCode),
    Domain("members", "Members", MemberErrorCode),
    Domain("orders", "Orders in", OrderErrorCode),
    Domain("ledger", "Ledger", LedgerErrorCode),
    Domain("coupons", "Coupons", CouponErrorCode),
    Domain("referral", "Referral", ReferralErrorCode),
    Domain("events", "Events and webhooks out", EventsErrorCode),
    Domain("live", "Live shows", LiveErrorCode),
    Domain("room", "Live room (WebSocket refusals)", RoomErrorCode),
)


def anchor(code: ErrorCode) -> str:
    """The id of a code on the page: the code itself, ``room-<code>`` for the room's refusals."""
    return f"room-{code.value}" if code.room else str(code.value)


class ErrorCodeInfo(BaseModel):
    code: str = Field(description="The value of `error.code` (or of `code` in a room's `t: err` message)")
    domain: str = Field(description="The part of liveloop that answers it, e.g. `members`")
    statuses: list[int] = Field(description="The HTTP statuses it is answered with, the usual one first")
    room: bool = Field(description="Answered by the live room on a viewer's WebSocket, not over HTTP")
    meaning: str = Field(description="What went wrong")
    fix: str = Field(description="What to send instead")


class ErrorCatalogue(BaseModel):
    """Every error code liveloop answers, grouped by domain (the same list as the page /docs/errors)."""

    codes: list[ErrorCodeInfo]


def listing() -> ErrorCatalogue:
    return ErrorCatalogue(
        codes=[
            ErrorCodeInfo(
                code=str(code.value),
                domain=domain.name,
                statuses=[s for s in code.statuses if isinstance(s, int)],
                room=code.room,
                meaning=code.meaning,
                fix=code.fix,
            )
            for domain in DOMAINS
            for code in domain.codes
        ]
    )


router = APIRouter(tags=["errors"])


@router.get("/v1/error-codes", response_model=ErrorCatalogue)
async def error_codes(response: Response) -> ErrorCatalogue:
    """Every error code, with the statuses it comes with, what it means and how to fix the request.

    Public (no API key). The page `/docs/errors` shows the same catalogue for reading."""
    response.headers["cache-control"] = "public, max-age=300"
    return listing()
