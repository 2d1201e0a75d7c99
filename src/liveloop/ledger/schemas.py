"""The ledger's API models."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, Field, PlainSerializer, WithJsonSchema

from liveloop.kit.money import KNOWN_CURRENCIES
from liveloop.kit.schemas import MAX_POINTS, Id, RequestModel, Timestamp
from liveloop.ledger import service
from liveloop.models import LedgerMeta

ASSETS: list[Any] = [service.POINTS, service.TICKETS, *(service.credit_asset(c) for c in sorted(KNOWN_CURRENCIES))]

# A date-time written as Python's isoformat (``+00:00``, not ``Z``): the balances have always answered so.
IsoDateTime = Annotated[
    datetime,
    PlainSerializer(lambda value: value.isoformat(), return_type=str, when_used="json"),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


class Movement(RequestModel):
    member_id: Id
    asset: str = Field(
        max_length=16,
        description="points, ticket, or credit:<ISO currency> such as credit:USD",
        # Checked by the service (422 invalid_asset); listed here so clients see the choices.
        json_schema_extra={"enum": ASSETS},
    )
    amount: int = Field(gt=0, le=MAX_POINTS)
    memo: str = Field("", max_length=300)
    hold: bool = Field(False, description="Credit as pending until released")
    expires_at: Timestamp | None = Field(None, description="Points only; the market's expiry by default")


class Reversal(RequestModel):
    reason: str = Field(min_length=1, max_length=64)
    allow_partial: bool = False


class TransactionEntry(BaseModel):
    """One entry of a transaction: how much of an asset it moved on one account."""

    owner_type: str
    owner_id: str
    asset: str
    bucket: str
    amount: int


class Transaction(BaseModel):
    id: str
    kind: str
    memo: str
    reverses_id: str | None
    created_at: datetime
    meta: LedgerMeta
    entries: list[TransactionEntry]


class AssetBalance(BaseModel):
    asset: str
    available: int
    pending: int


class LivePointLot(BaseModel):
    """Points earned together, and when what is left of them expires."""

    id: str
    remaining: int
    expires_at: IsoDateTime


class MemberBalances(BaseModel):
    member_id: str
    balances: list[AssetBalance]
    point_lots: list[LivePointLot]


class LedgerLine(BaseModel):
    """One entry of a member's ledger, with the transaction it belongs to."""

    entry_id: int
    transaction_id: str
    kind: str
    asset: str
    bucket: str
    amount: int
    memo: str
    reverses: str | None
    created_at: datetime
