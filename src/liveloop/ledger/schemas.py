"""The ledger's API models."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


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
