"""Every statement about the ledger: accounts and their balances, transactions and their entries, point lots,
and the checks ``verify`` runs.

The statements of the hot paths are prepared once, at import (``_FIND_ACCOUNT``, ``_MOVE_BALANCE``), so each
execution reuses their compiled form; the service reaches them through :func:`find_account` and
:func:`move_balance`, which need no repository object.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TypedDict

from sqlalchemy import Row, bindparam, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from liveloop.kit.pagination import PageRequest, paginate
from liveloop.kit.repository import Repository, changed
from liveloop.kit.sql import insert_ignoring_conflicts, table
from liveloop.kit.time import utc_now
from liveloop.models import (
    LedgerAccount,
    LedgerBucket,
    LedgerEntry,
    LedgerOwnerType,
    LedgerTransaction,
    LotMovement,
    Member,
    PointLot,
)


class AccountKey(TypedDict):
    """What names an account: one asset in one bucket of one owner, in one shop."""

    shop_id: str
    owner_type: LedgerOwnerType
    owner_id: str
    asset: str
    bucket: LedgerBucket


class EntryRow(TypedDict):
    transaction_id: str
    account_id: int
    asset: str
    amount: int


_FIND_ACCOUNT = select(LedgerAccount.id).where(
    LedgerAccount.shop_id == bindparam("shop_id"),
    LedgerAccount.owner_type == bindparam("owner_type"),
    LedgerAccount.owner_id == bindparam("owner_id"),
    LedgerAccount.asset == bindparam("asset"),
    LedgerAccount.bucket == bindparam("bucket"),
)

# Moves a member balance; the condition (and the CHECK constraint under it) keeps it from going negative.
_MOVE_BALANCE = (
    update(LedgerAccount)
    .where(
        LedgerAccount.id == bindparam("account"),
        LedgerAccount.asset == bindparam("b_asset"),
        LedgerAccount.allow_negative | (LedgerAccount.balance + bindparam("amount") >= 0),
    )
    .values(balance=LedgerAccount.balance + bindparam("amount"))
    .execution_options(synchronize_session=False)
)

_TXN_COLUMNS = (
    "id",
    "shop_id",
    "kind",
    "memo",
    "idempotency_key",
    "reverses_id",
    "ref_type",
    "ref_id",
    "meta",
    "created_at",
)


async def find_account(session: AsyncSession, key: AccountKey) -> int | None:
    return (await session.execute(_FIND_ACCOUNT, key)).scalar_one_or_none()


async def move_balance(session: AsyncSession, account: int, asset: str, amount: int) -> bool:
    """Add ``amount`` to a member account's balance; False when that would take it below zero."""
    return await changed(session, _MOVE_BALANCE, {"account": account, "b_asset": asset, "amount": amount}) == 1


class LedgerRepository(Repository[LedgerTransaction]):
    model = LedgerTransaction
    not_found = ("transaction_not_found", "No such ledger transaction in this shop.")

    # -- accounts ------------------------------------------------------------------------------------------------
    async def create_account(self, key: AccountKey, *, allow_negative: bool) -> None:
        """Insert the account unless it exists (concurrent creators agree on one row)."""
        await self.session.execute(
            insert_ignoring_conflicts(
                self.session,
                table(LedgerAccount),
                {**key, "balance": 0, "allow_negative": allow_negative, "created_at": utc_now()},
            )
        )

    async def account(self, account_id: int) -> LedgerAccount | None:
        return await self.session.get(LedgerAccount, account_id)

    async def accounts(self, ids: Sequence[int]) -> dict[int, LedgerAccount]:
        """Accounts by id, read fresh (balances move by Core UPDATEs, not through the identity map)."""
        rows = await self.session.execute(
            select(LedgerAccount).where(LedgerAccount.id.in_(ids)).execution_options(populate_existing=True)
        )
        return {a.id: a for a in rows.scalars()}

    async def refresh(self, account: LedgerAccount) -> None:
        await self.session.refresh(account)

    async def balances(self, shop_id: str, member_id: str) -> Sequence[Row[str, LedgerBucket, int]]:
        """(asset, bucket, balance) of every account of a member."""
        return (
            await self.session.execute(
                select(LedgerAccount.asset, LedgerAccount.bucket, LedgerAccount.balance).where(
                    LedgerAccount.shop_id == shop_id,
                    LedgerAccount.owner_type == LedgerOwnerType.MEMBER,
                    LedgerAccount.owner_id == member_id,
                )
            )
        ).all()

    async def balance(self, shop_id: str, member_id: str, asset: str, bucket: LedgerBucket) -> int | None:
        return (
            await self.session.execute(
                select(LedgerAccount.balance).where(
                    LedgerAccount.shop_id == shop_id,
                    LedgerAccount.owner_type == LedgerOwnerType.MEMBER,
                    LedgerAccount.owner_id == member_id,
                    LedgerAccount.asset == asset,
                    LedgerAccount.bucket == bucket,
                )
            )
        ).scalar_one_or_none()

    # -- transactions and entries --------------------------------------------------------------------------------
    async def by_idempotency_key(self, shop_id: str, idempotency_key: str) -> LedgerTransaction | None:
        return await self.one_or_none(self.scoped(shop_id).where(LedgerTransaction.idempotency_key == idempotency_key))

    async def reversal_of(self, txn_id: str) -> LedgerTransaction | None:
        query = select(LedgerTransaction).where(LedgerTransaction.reverses_id == txn_id)
        return (await self.session.execute(query)).scalar_one_or_none()

    async def is_reversed(self, txn_id: str) -> bool:
        found = await self.session.execute(select(LedgerTransaction.id).where(LedgerTransaction.reverses_id == txn_id))
        return found.first() is not None

    async def insert_transaction(self, txn: LedgerTransaction, entries: list[EntryRow]) -> None:
        """Write a transaction and its entries with Core inserts (never through a unit-of-work flush)."""
        await self.session.execute(table(LedgerTransaction).insert(), {c: getattr(txn, c) for c in _TXN_COLUMNS})
        await self.session.execute(table(LedgerEntry).insert(), entries)

    async def entries(self, txn_id: str) -> list[LedgerEntry]:
        """A transaction's entries, in the order they were posted."""
        query = select(LedgerEntry).where(LedgerEntry.transaction_id == txn_id).order_by(LedgerEntry.id)
        return list((await self.session.execute(query)).scalars())

    async def member_entry(self, txn_id: str) -> LedgerEntry:
        """The one entry of a transaction on a member's account."""
        return (
            await self.session.execute(
                select(LedgerEntry)
                .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
                .where(LedgerEntry.transaction_id == txn_id, LedgerAccount.owner_type == LedgerOwnerType.MEMBER)
            )
        ).scalar_one()

    async def entries_with_accounts(self, txn_id: str) -> list[tuple[LedgerEntry, LedgerAccount]]:
        rows = await self.session.execute(
            select(LedgerEntry, LedgerAccount)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .where(LedgerEntry.transaction_id == txn_id)
            .order_by(LedgerEntry.id)
        )
        return [(e, a) for e, a in rows.all()]

    async def member_entries(
        self, shop_id: str, member_id: str, page: PageRequest
    ) -> tuple[list[tuple[LedgerEntry, LedgerTransaction, LedgerAccount]], str | None]:
        """A member's ledger entries, newest first."""
        query = (
            select(LedgerEntry, LedgerTransaction, LedgerAccount)
            .join(LedgerAccount, LedgerAccount.id == LedgerEntry.account_id)
            .join(LedgerTransaction, LedgerTransaction.id == LedgerEntry.transaction_id)
            .where(
                LedgerAccount.shop_id == shop_id,
                LedgerAccount.owner_type == LedgerOwnerType.MEMBER,
                LedgerAccount.owner_id == member_id,
            )
        )
        rows, cursor = await paginate(
            self.session, query, page, [LedgerEntry.id], descending=True, row_key=lambda r: [r[0].id]
        )
        return [(r[0], r[1], r[2]) for r in rows], cursor

    async def holder_market(self, txn_id: str) -> str | None:
        """The market of the member a transaction credits or debits."""
        return (
            await self.session.execute(
                select(Member.market)
                .join(LedgerAccount, LedgerAccount.owner_id == Member.id)
                .join(LedgerEntry, LedgerEntry.account_id == LedgerAccount.id)
                .where(LedgerEntry.transaction_id == txn_id, LedgerAccount.owner_type == LedgerOwnerType.MEMBER)
                .limit(1)
            )
        ).scalar_one_or_none()

    # -- point lots ----------------------------------------------------------------------------------------------
    async def insert_lot(
        self, lot_id: str, shop_id: str, account: int, txn_id: str, amount: int, expires_at: datetime
    ) -> None:
        """A new lot of ``amount`` points, and the movement that filled it."""
        await self.session.execute(
            table(PointLot).insert(),
            {
                "id": lot_id,
                "shop_id": shop_id,
                "account_id": account,
                "transaction_id": txn_id,
                "amount": amount,
                "remaining": amount,
                "expires_at": expires_at,
                "created_at": utc_now(),
            },
        )
        await self.session.execute(
            table(LotMovement).insert(), {"lot_id": lot_id, "transaction_id": txn_id, "amount": amount}
        )

    async def live_lots(self, account: int, *, lock: bool = False) -> list[PointLot]:
        """An account's lots with points left, soonest to expire first (``FOR UPDATE`` when ``lock``)."""
        query = (
            select(PointLot)
            .where(PointLot.account_id == account, PointLot.remaining > 0)
            .order_by(PointLot.expires_at, PointLot.id)
        )
        return list((await self.session.execute(self.locked(query) if lock else query)).scalars())

    async def due_lots(self, now: datetime, *, shop_id: str | None, account: int | None, limit: int) -> list[PointLot]:
        """Lots with points left whose expiry has come, locked; a sweep over every account skips the locked ones."""
        query = select(PointLot).where(PointLot.expires_at <= now, PointLot.remaining > 0)
        if shop_id is not None:
            query = query.where(PointLot.shop_id == shop_id)
        if account is not None:
            query = query.where(PointLot.account_id == account)
        query = query.order_by(PointLot.expires_at, PointLot.id).limit(limit)
        return list((await self.session.execute(self.locked(query, skip_locked=account is None))).scalars())

    async def lot(self, lot_id: str) -> PointLot | None:
        return await self.session.get(PointLot, lot_id)

    async def lot_of(self, txn_id: str) -> str | None:
        """The id of the lot a transaction created, if it created one."""
        return (
            await self.session.execute(select(PointLot.id).where(PointLot.transaction_id == txn_id))
        ).scalar_one_or_none()

    async def taken_from_lots(self, txn_id: str) -> list[LotMovement]:
        """What a transaction took from lots (its negative movements)."""
        query = select(LotMovement).where(LotMovement.transaction_id == txn_id, LotMovement.amount < 0)
        return list((await self.session.execute(query)).scalars())

    def add_movement(self, lot_id: str, txn_id: str, amount: int) -> None:
        """Record a lot movement, written by the next flush."""
        self.session.add(LotMovement(lot_id=lot_id, transaction_id=txn_id, amount=amount))

    async def flush(self) -> None:
        await self.session.flush()


# -- verify ----------------------------------------------------------------------------------------------------
# (name, title, SQL) of each consistency check; a row found is a problem.
CHECKS: list[tuple[str, str, str]] = [
    (
        "unbalanced_transactions",
        "Transactions whose entries do not sum to zero per asset",
        "SELECT transaction_id, asset, SUM(amount) FROM ledger_entries "
        "GROUP BY transaction_id, asset HAVING SUM(amount) <> 0",
    ),
    (
        "balance_mismatch",
        "Member accounts whose stored balance differs from the sum of their entries",
        "SELECT a.id, a.balance, COALESCE(s.total, 0) FROM ledger_accounts a "
        "LEFT JOIN (SELECT account_id, SUM(amount) AS total FROM ledger_entries GROUP BY account_id) s "
        "ON s.account_id = a.id WHERE a.owner_type = 'member' AND a.balance <> COALESCE(s.total, 0)",
    ),
    (
        "negative_balances",
        "Member accounts below zero",
        "SELECT id, balance FROM ledger_accounts WHERE balance < 0 AND NOT allow_negative",
    ),
    (
        "system_balance_stored",
        "System accounts with a stored balance (theirs is the sum of their entries)",
        "SELECT id, balance FROM ledger_accounts WHERE owner_type = 'system' AND balance <> 0",
    ),
    (
        "asset_mismatch",
        "Entries whose asset differs from their account's",
        "SELECT e.id, e.asset, a.asset FROM ledger_entries e JOIN ledger_accounts a ON a.id = e.account_id "
        "WHERE e.asset <> a.asset",
    ),
    (
        "lots_out_of_step",
        "Available point balances that differ from the points left in their lots",
        "SELECT a.id, a.balance, COALESCE(l.left_, 0) FROM ledger_accounts a "
        "LEFT JOIN (SELECT account_id, SUM(remaining) AS left_ FROM point_lots GROUP BY account_id) l "
        "ON l.account_id = a.id "
        "WHERE a.owner_type = 'member' AND a.asset = 'points' AND a.bucket = 'available' "
        "AND a.balance <> COALESCE(l.left_, 0)",
    ),
    (
        "empty_transactions",
        "Transactions without entries",
        "SELECT t.id FROM ledger_transactions t WHERE NOT EXISTS "
        "(SELECT 1 FROM ledger_entries e WHERE e.transaction_id = t.id)",
    ),
]


async def count_rows(session: AsyncSession) -> tuple[int, int, int]:
    """How many entries, accounts and transactions the ledger holds."""
    entries = int((await session.execute(text("SELECT COUNT(*) FROM ledger_entries"))).scalar_one())
    accounts = int((await session.execute(text("SELECT COUNT(*) FROM ledger_accounts"))).scalar_one())
    transactions = int((await session.execute(text("SELECT COUNT(*) FROM ledger_transactions"))).scalar_one())
    return entries, accounts, transactions


async def problems(session: AsyncSession, sql: str, sample: int) -> list[tuple[object, ...]]:
    """Up to ``sample`` rows one of :data:`CHECKS` finds."""
    rows = (await session.execute(text(f"{sql} LIMIT {int(sample)}"))).all()
    return [tuple(r) for r in rows]
