"""Double-entry ledger: accounts hold one asset in one bucket; transactions post entries that sum to zero."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from liveloop.models.base import Base, BigIntPK, CreatedAt


class LedgerAccount(CreatedAt, Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        UniqueConstraint("shop_id", "owner_type", "owner_id", "asset", "bucket"),
        # The database, not Python, keeps member balances from going below zero.
        CheckConstraint("allow_negative OR balance >= 0", name="balance_non_negative"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    owner_type: Mapped[str] = mapped_column(String(16))  # member | system
    owner_id: Mapped[str] = mapped_column(String(64))
    asset: Mapped[str] = mapped_column(String(32))  # points | ticket | credit:USD …
    bucket: Mapped[str] = mapped_column(String(16))  # available | pending
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    allow_negative: Mapped[bool] = mapped_column(default=False)


class LedgerTransaction(CreatedAt, Base):
    __tablename__ = "ledger_transactions"
    __table_args__ = (
        UniqueConstraint("shop_id", "idempotency_key"),
        Index("ix_ledger_transactions_ref", "shop_id", "ref_type", "ref_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(24))  # earn spend hold release reverse expire adjust
    memo: Mapped[str] = mapped_column(String(300), default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # A reversal points at what it reverses; one reversal per transaction.
    reverses_id: Mapped[str | None] = mapped_column(ForeignKey("ledger_transactions.id"), nullable=True, unique=True)
    ref_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ref_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index("ix_ledger_entries_account", "account_id"),
        Index("ix_ledger_entries_transaction", "transaction_id"),
        CheckConstraint("amount <> 0", name="amount_non_zero"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    transaction_id: Mapped[str] = mapped_column(ForeignKey("ledger_transactions.id"))
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    asset: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)


class PointLot(CreatedAt, Base):
    """Points earned together expire together; spending consumes the oldest-expiring lots first."""

    __tablename__ = "point_lots"
    __table_args__ = (
        CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_in_range"),
        Index("ix_point_lots_account_expiry", "account_id", "expires_at"),
        Index("ix_point_lots_expiry", "expires_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    account_id: Mapped[int] = mapped_column(ForeignKey("ledger_accounts.id"))
    transaction_id: Mapped[str] = mapped_column(ForeignKey("ledger_transactions.id"))
    amount: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime]


class LotMovement(Base):
    """How much of which lot a transaction took (or gave back), so a reversal restores the same lots."""

    __tablename__ = "lot_movements"
    __table_args__ = (Index("ix_lot_movements_transaction", "transaction_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    lot_id: Mapped[str] = mapped_column(ForeignKey("point_lots.id"))
    transaction_id: Mapped[str] = mapped_column(ForeignKey("ledger_transactions.id"))
    amount: Mapped[int] = mapped_column(BigInteger)  # negative: taken from the lot; positive: restored
