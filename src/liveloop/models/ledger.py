"""Double-entry ledger: accounts hold one asset in one bucket; transactions post entries that sum to zero."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import BigInteger, CheckConstraint, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column
from typing_extensions import TypedDict  # Pydantic reads it in API models (typing's needs Python 3.12)

from liveloop.models.base import Base, BigIntPK, CreatedAt, EnumText, JSONType


class LedgerOwnerType(StrEnum):
    """Who holds an account."""

    MEMBER = "member"  # a member's points, tickets or credit; never below zero
    SYSTEM = "system"  # where value comes from and goes to (issuance, redemption, expiry); no stored balance


class LedgerBucket(StrEnum):
    AVAILABLE = "available"  # usable now
    PENDING = "pending"  # held until released (or reversed)


class LedgerTransactionKind(StrEnum):
    EARN = "earn"  # credited as available
    SPEND = "spend"  # debited from the available balance
    HOLD = "hold"  # credited as pending
    RELEASE = "release"  # a hold moved from pending to available
    REVERSE = "reverse"  # undoes another transaction (``reverses_id``)
    EXPIRE = "expire"  # points of a lot whose time came
    ADJUST = "adjust"  # a manual correction


class LedgerMeta(TypedDict, total=False):
    """What a transaction records beside its entries (``ledger_transactions.meta``), by kind."""

    expires_at: str  # hold: when the points expire once released (ISO 8601)
    released: str  # release: the id of the hold it released
    reason: str  # reverse: why
    recovered: int  # reverse: how much was taken back
    shortfall: int  # reverse: how much could not be, already spent


class LedgerAccount(CreatedAt, Base):
    __tablename__ = "ledger_accounts"
    __table_args__ = (
        UniqueConstraint("shop_id", "owner_type", "owner_id", "asset", "bucket"),
        # The database, not Python, keeps member balances from going below zero.
        CheckConstraint("allow_negative OR balance >= 0", name="balance_non_negative"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    shop_id: Mapped[str] = mapped_column(ForeignKey("shops.id", ondelete="CASCADE"))
    owner_type: Mapped[LedgerOwnerType] = mapped_column(EnumText(LedgerOwnerType, 16))
    owner_id: Mapped[str] = mapped_column(String(64))
    asset: Mapped[str] = mapped_column(String(32))  # points | ticket | credit:USD …
    bucket: Mapped[LedgerBucket] = mapped_column(EnumText(LedgerBucket, 16))
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
    kind: Mapped[LedgerTransactionKind] = mapped_column(EnumText(LedgerTransactionKind, 24))
    memo: Mapped[str] = mapped_column(String(300), default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # A reversal points at what it reverses; one reversal per transaction.
    reverses_id: Mapped[str | None] = mapped_column(ForeignKey("ledger_transactions.id"), nullable=True, unique=True)
    ref_type: Mapped[str | None] = mapped_column(String(32), nullable=True)
    ref_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    meta: Mapped[LedgerMeta] = mapped_column(JSONType, default=dict)


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
