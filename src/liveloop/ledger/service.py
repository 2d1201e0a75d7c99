"""The ledger: every point, draw ticket and unit of store credit a member holds.

Double-entry and append-only. Each transaction posts entries that sum to zero per asset; a balance is the
sum of an account's entries, mirrored in ``ledger_accounts.balance`` for speed and proved equal by
``verify``. A balance below zero is refused by a conditional update and, underneath, a CHECK constraint.
Points arrive in lots that expire; spending takes the oldest-expiring lot first; corrections are new,
linked reversing transactions.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from liveloop.kit.errors import Conflict, Unprocessable
from liveloop.kit.ids import new_id
from liveloop.kit.money import is_currency
from liveloop.kit.pagination import PageRequest
from liveloop.kit.time import utc_now
from liveloop.ledger.repository import AccountKey, EntryRow, LedgerRepository, find_account, move_balance
from liveloop.models import (
    LedgerAccount,
    LedgerBucket,
    LedgerEntry,
    LedgerMeta,
    LedgerOwnerType,
    LedgerTransaction,
    LedgerTransactionKind,
    PointLot,
)

POINTS = "points"
TICKETS = "ticket"
AVAILABLE = LedgerBucket.AVAILABLE
PENDING = LedgerBucket.PENDING
MEMBER = LedgerOwnerType.MEMBER
SYSTEM = LedgerOwnerType.SYSTEM


class SystemAccount(StrEnum):
    """The system accounts of a shop, one per asset (the ``owner_id`` of a ``system`` account)."""

    ISSUANCE = "issuance"  # where rewards come from; the only accounts allowed below zero
    REDEMPTION = "redemption"  # where spent value goes
    EXPIRY = "expiry"  # where expired points go


ISSUANCE = SystemAccount.ISSUANCE
REDEMPTION = SystemAccount.REDEMPTION
EXPIRY = SystemAccount.EXPIRY

Kind = LedgerTransactionKind

CREDIT_PREFIX = "credit:"


def credit_asset(currency: str) -> str:
    """The asset of store credit in ``currency`` (an ISO 4217 code, see :func:`is_asset`)."""
    return f"{CREDIT_PREFIX}{currency}"


def is_asset(asset: str) -> bool:
    """``points``, ``ticket`` or ``credit:<ISO 4217 code>``: the same currency rule as orders and coupons."""
    if asset in (POINTS, TICKETS):
        return True
    return asset.startswith(CREDIT_PREFIX) and is_currency(asset.removeprefix(CREDIT_PREFIX))


class InsufficientBalance(Conflict):
    code = "insufficient_balance"


@dataclass(frozen=True)
class Posting:
    account_id: int
    asset: str
    amount: int
    # System accounts (issuance, redemption, expiry) take part in nearly every transaction. They keep no
    # stored balance, which would make their row a lock every writer queues on: their balance is the sum
    # of their entries, and `verify` proves every transaction balanced.
    system: bool = False


# Account ids never change and accounts are never deleted, so each process remembers them (per engine).
# Only ids seen in committed transactions are remembered, so a rolled-back creation is never cached.
_ACCOUNT_IDS: weakref.WeakKeyDictionary[Any, dict[tuple[str, str, str, str, str], int]] = weakref.WeakKeyDictionary()
_SEEN = "liveloop.ledger.accounts_seen"


def remember_accounts(session: Session) -> None:
    """After a commit: the account ids the transaction saw are remembered (see ``liveloop.database``)."""
    seen = session.info.pop(_SEEN, None)
    if seen and session.bind is not None:
        _ACCOUNT_IDS.setdefault(session.bind, {}).update(seen)


def forget_accounts(session: Session) -> None:
    """After a rollback: the account ids it saw are not remembered."""
    session.info.pop(_SEEN, None)


async def account_id(
    session: AsyncSession,
    shop_id: str,
    owner_type: LedgerOwnerType,
    owner_id: str,
    asset: str,
    bucket: LedgerBucket = AVAILABLE,
) -> int:
    """The id of an account, created on first use (concurrent creators agree on one row)."""
    key = (shop_id, owner_type, owner_id, asset, bucket)
    bind = session.sync_session.bind
    cached = _ACCOUNT_IDS.get(bind, {}).get(key) if bind is not None else None
    if cached is not None:
        return cached
    params: AccountKey = {
        "shop_id": shop_id,
        "owner_type": owner_type,
        "owner_id": owner_id,
        "asset": asset,
        "bucket": bucket,
    }
    found = await find_account(session, params)
    if found is None:
        allow_negative = owner_type == SYSTEM and owner_id == ISSUANCE
        await LedgerRepository(session).create_account(params, allow_negative=allow_negative)
        found = await find_account(session, params)
        assert found is not None
    session.sync_session.info.setdefault(_SEEN, {})[key] = found
    return found


async def member_account(
    session: AsyncSession, shop_id: str, member_id: str, asset: str, bucket: LedgerBucket = AVAILABLE
) -> int:
    return await account_id(session, shop_id, MEMBER, member_id, asset, bucket)


async def system_account(session: AsyncSession, shop_id: str, name: SystemAccount, asset: str) -> int:
    return await account_id(session, shop_id, SYSTEM, name, asset)


async def existing_transaction(
    session: AsyncSession, shop_id: str, idempotency_key: str | None
) -> LedgerTransaction | None:
    if idempotency_key is None:
        return None
    return await LedgerRepository(session).by_idempotency_key(shop_id, idempotency_key)


async def post(
    session: AsyncSession,
    shop_id: str,
    kind: LedgerTransactionKind,
    postings: list[Posting],
    *,
    memo: str = "",
    idempotency_key: str | None = None,
    reverses_id: str | None = None,
    ref: tuple[str, str] | None = None,
    meta: LedgerMeta | None = None,
) -> LedgerTransaction:
    """Post one balanced transaction. Balances move atomically, in account-id order."""
    totals: dict[str, int] = defaultdict(int)
    for p in postings:
        if p.amount == 0:
            raise Unprocessable("A ledger entry cannot be zero.", code="zero_amount")
        totals[p.asset] += p.amount
    if any(totals.values()):
        raise AssertionError(f"unbalanced ledger transaction: {dict(totals)}")

    txn = LedgerTransaction(  # written with a Core insert below, never through a unit-of-work flush
        id=new_id("ltx"),
        shop_id=shop_id,
        kind=kind,
        memo=memo[:300],
        idempotency_key=idempotency_key,
        reverses_id=reverses_id,
        ref_type=ref[0] if ref else None,
        ref_id=ref[1] if ref else None,
        meta=meta or {},
        created_at=utc_now(),
    )
    for p in sorted(postings, key=lambda p: p.account_id):
        if p.system:
            continue
        if not await move_balance(session, p.account_id, p.asset, p.amount):
            raise InsufficientBalance(
                f"The balance of {p.asset} is too low for this operation (needs {-p.amount}).",
                asset=p.asset,
            )
    entries: list[EntryRow] = [
        {"transaction_id": txn.id, "account_id": p.account_id, "asset": p.asset, "amount": p.amount} for p in postings
    ]
    await LedgerRepository(session).insert_transaction(txn, entries)
    return txn


# --- earning -------------------------------------------------------------------------------------------


async def grant(
    session: AsyncSession,
    shop_id: str,
    member_id: str,
    asset: str,
    amount: int,
    *,
    pending: bool = False,
    expires_at: datetime | None = None,
    memo: str = "",
    idempotency_key: str | None = None,
    ref: tuple[str, str] | None = None,
) -> LedgerTransaction:
    """Credit ``amount`` of ``asset`` from issuance to a member, available now or held as pending.

    Points credited as available become a lot that expires at ``expires_at``.
    """
    if amount <= 0:
        raise Unprocessable("The amount must be a positive integer.", code="invalid_amount")
    if asset == POINTS and not pending and expires_at is None:
        raise AssertionError("available points need an expiry")
    prior = await existing_transaction(session, shop_id, idempotency_key)
    if prior is not None:
        return prior
    source = await system_account(session, shop_id, ISSUANCE, asset)
    target = await member_account(session, shop_id, member_id, asset, PENDING if pending else AVAILABLE)
    txn = await post(
        session,
        shop_id,
        Kind.HOLD if pending else Kind.EARN,
        [Posting(source, asset, -amount, system=True), Posting(target, asset, amount)],
        memo=memo,
        idempotency_key=idempotency_key,
        ref=ref,
        meta={"expires_at": expires_at.isoformat()} if expires_at and pending else None,
    )
    if asset == POINTS and not pending:
        assert expires_at is not None
        await _new_lot(session, shop_id, target, txn.id, amount, expires_at)
    return txn


async def _new_lot(
    session: AsyncSession, shop_id: str, account: int, txn_id: str, amount: int, expires_at: datetime
) -> None:
    await LedgerRepository(session).insert_lot(new_id("lot"), shop_id, account, txn_id, amount, expires_at)


async def release(
    session: AsyncSession,
    shop_id: str,
    hold_txn_id: str,
    *,
    expires_at: datetime | None = None,
    memo: str = "released",
) -> LedgerTransaction:
    """Move a held credit from pending to available (points start their lot life now)."""
    repo = LedgerRepository(session)
    hold = await repo.get_or_raise(shop_id, hold_txn_id)
    if hold.kind != Kind.HOLD:
        raise Unprocessable("Only a held (pending) credit can be released.", code="not_pending")
    key = f"release:{hold.id}"
    prior = await existing_transaction(session, shop_id, key)
    if prior is not None:
        return prior
    if await repo.is_reversed(hold.id):
        raise Conflict("This held credit was reversed already; it cannot be released.", code="already_reversed")
    pending_entry = await repo.member_entry(hold.id)
    account = await repo.account(pending_entry.account_id)
    assert account is not None
    target = await member_account(session, shop_id, account.owner_id, account.asset, AVAILABLE)
    txn = await post(
        session,
        shop_id,
        Kind.RELEASE,
        [
            Posting(pending_entry.account_id, account.asset, -pending_entry.amount),
            Posting(target, account.asset, pending_entry.amount),
        ],
        memo=memo,
        idempotency_key=key,
        ref=(hold.ref_type, hold.ref_id) if hold.ref_type and hold.ref_id else None,
        meta={"released": hold.id},
    )
    if account.asset == POINTS:
        if expires_at is None:
            raise AssertionError("released points need an expiry")
        await _new_lot(session, shop_id, target, txn.id, pending_entry.amount, expires_at)
    return txn


# --- spending ------------------------------------------------------------------------------------------


async def spend(
    session: AsyncSession,
    shop_id: str,
    member_id: str,
    asset: str,
    amount: int,
    *,
    memo: str = "",
    idempotency_key: str | None = None,
    ref: tuple[str, str] | None = None,
) -> LedgerTransaction:
    """Debit a member's available balance; points come from the oldest-expiring lots first."""
    if amount <= 0:
        raise Unprocessable("The amount must be a positive integer.", code="invalid_amount")
    prior = await existing_transaction(session, shop_id, idempotency_key)
    if prior is not None:
        return prior
    source = await member_account(session, shop_id, member_id, asset)
    if asset == POINTS:
        await expire_due_lots(session, shop_id, account=source)
    sink = await system_account(session, shop_id, REDEMPTION, asset)
    txn = await post(
        session,
        shop_id,
        Kind.SPEND,
        [Posting(source, asset, -amount), Posting(sink, asset, amount, system=True)],
        memo=memo,
        idempotency_key=idempotency_key,
        ref=ref,
    )
    if asset == POINTS:
        await _take_from_lots(session, source, txn.id, amount)
    return txn


async def _take_from_lots(
    session: AsyncSession, account: int, txn_id: str, amount: int, *, first_lot: str | None = None
) -> int:
    """Consume ``amount`` from the account's live lots, ``first_lot`` first, then by expiry. Returns what was taken."""
    repo = LedgerRepository(session)
    lots = await repo.live_lots(account, lock=True)
    if first_lot is not None:
        lots.sort(key=lambda lot: lot.id != first_lot)
    left = amount
    for lot in lots:
        if left == 0:
            break
        take = min(lot.remaining, left)
        lot.remaining -= take
        left -= take
        repo.add_movement(lot.id, txn_id, -take)
    if left:
        raise AssertionError(f"point lots out of step with the balance of account {account}")
    await repo.flush()
    return amount


# --- reversing -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reversal:
    transaction: LedgerTransaction | None  # None when nothing at all could be taken back
    recovered: int
    shortfall: int


async def reverse(
    session: AsyncSession, shop_id: str, txn_id: str, *, reason: str, allow_partial: bool = False
) -> Reversal:
    """Undo a transaction with a new, linked one. Idempotent: a second call returns the first reversal.

    Value the member has already spent cannot be taken back below zero. With ``allow_partial`` the
    reversal takes what is left and reports the shortfall (kept in the transaction's ``meta``);
    without it, :class:`InsufficientBalance` is raised and nothing changes.
    """
    repo = LedgerRepository(session)
    original = await repo.get_or_raise(shop_id, txn_id)
    if original.reverses_id is not None or original.kind in (Kind.EXPIRE, Kind.REVERSE):
        raise Unprocessable("This transaction cannot be reversed; post a new correcting one.", code="not_reversible")
    prior = await repo.reversal_of(original.id)
    if prior is not None:
        return Reversal(prior, int(prior.meta.get("recovered", 0)), int(prior.meta.get("shortfall", 0)))
    if original.kind == Kind.HOLD:
        released = await existing_transaction(session, shop_id, f"release:{original.id}")
        if released is not None:
            # Once released, the value sits in the available bucket: take it back from there.
            return await reverse(session, shop_id, released.id, reason=reason, allow_partial=allow_partial)

    entries = await repo.entries(original.id)
    accounts = await repo.accounts([e.account_id for e in entries])
    gained = [e for e in entries if accounts[e.account_id].owner_type == MEMBER and e.amount > 0]
    amount = sum(e.amount for e in gained) if gained else 0
    recovered = amount
    if len(gained) == 1 and len(entries) == 2:
        member_entry = gained[0]
        acct = accounts[member_entry.account_id]
        if acct.asset == POINTS and acct.bucket == AVAILABLE:
            await expire_due_lots(session, shop_id, account=acct.id)
            await repo.refresh(acct)
        recovered = min(acct.balance, member_entry.amount)
        if recovered < member_entry.amount and not allow_partial:
            raise InsufficientBalance(
                f"The member has already used {member_entry.amount - recovered} of the {member_entry.amount} "
                f"{acct.asset} this transaction gave; reverse with allow_partial to take back what is left.",
                asset=acct.asset,
            )
    shortfall = amount - recovered
    meta: LedgerMeta = {"reason": reason, "recovered": recovered, "shortfall": shortfall}
    if gained and recovered == 0:
        return Reversal(None, 0, shortfall)
    scale = (recovered, amount) if gained and shortfall else (1, 1)
    postings = []
    for e in entries:
        target, system = e.account_id, accounts[e.account_id].owner_type == SYSTEM
        if original.kind == Kind.RELEASE and accounts[e.account_id].bucket == PENDING:
            # Taking back a released reward returns it to where it came from, not to the pending bucket.
            target, system = await system_account(session, shop_id, ISSUANCE, e.asset), True
        postings.append(Posting(target, e.asset, -(e.amount * scale[0] // scale[1]), system=system))
    txn = await post(
        session,
        shop_id,
        Kind.REVERSE,
        postings,
        memo=f"reversal: {reason}",
        reverses_id=original.id,
        ref=(original.ref_type, original.ref_id) if original.ref_type and original.ref_id else None,
        meta=meta,
    )
    await _mirror_lots(session, original, txn, entries, accounts, scale)
    return Reversal(txn, recovered, shortfall)


async def _mirror_lots(
    session: AsyncSession,
    original: LedgerTransaction,
    reversal: LedgerTransaction,
    entries: list[LedgerEntry],
    accounts: dict[int, LedgerAccount],
    scale: tuple[int, int],
) -> None:
    """Keep point lots in step with a reversal: give back what a spend took, take back what an earn gave."""
    repo = LedgerRepository(session)
    for e in entries:
        acct = accounts[e.account_id]
        if acct.asset != POINTS or acct.bucket != AVAILABLE or acct.owner_type != MEMBER:
            continue
        if e.amount < 0:  # the original took points from lots: restore those same lots
            for move in await repo.taken_from_lots(original.id):
                lot = await repo.lot(move.lot_id)
                assert lot is not None
                lot.remaining += -move.amount
                repo.add_movement(lot.id, reversal.id, -move.amount)
            await repo.flush()
        else:  # the original gave points: take them back, from the lot it created first
            first = await repo.lot_of(original.id)
            await _take_from_lots(session, acct.id, reversal.id, e.amount * scale[0] // scale[1], first_lot=first)


# --- expiry --------------------------------------------------------------------------------------------


async def expire_due_lots(
    session: AsyncSession,
    shop_id: str | None = None,
    *,
    account: int | None = None,
    now: datetime | None = None,
    limit: int = 500,
) -> int:
    """Expire lots whose time has come, each by an ``expire`` transaction. Returns how many expired."""
    repo = LedgerRepository(session)
    lots = await repo.due_lots(now or utc_now(), shop_id=shop_id, account=account, limit=limit)
    for lot in lots:
        sink = await system_account(session, lot.shop_id, EXPIRY, POINTS)
        txn = await post(
            session,
            lot.shop_id,
            Kind.EXPIRE,
            [Posting(lot.account_id, POINTS, -lot.remaining), Posting(sink, POINTS, lot.remaining, system=True)],
            memo="points expired",
            idempotency_key=None,
            ref=("lot", lot.id),
        )
        repo.add_movement(lot.id, txn.id, -lot.remaining)
        lot.remaining = 0
    await repo.flush()
    return len(lots)


# --- reading -------------------------------------------------------------------------------------------


async def get_transaction(session: AsyncSession, shop_id: str, txn_id: str) -> LedgerTransaction:
    """This shop's ledger transaction, or 404 ``transaction_not_found``."""
    return await LedgerRepository(session).get_or_raise(shop_id, txn_id)


@dataclass(frozen=True)
class Balance:
    asset: str
    available: int
    pending: int


async def balances(session: AsyncSession, shop_id: str, member_id: str) -> list[Balance]:
    rows = await LedgerRepository(session).balances(shop_id, member_id)
    by_asset: dict[str, dict[LedgerBucket, int]] = defaultdict(lambda: {AVAILABLE: 0, PENDING: 0})
    for asset, bucket, balance in rows:
        by_asset[asset][bucket] = balance
    return [Balance(a, v[AVAILABLE], v[PENDING]) for a, v in sorted(by_asset.items())]


async def balance(
    session: AsyncSession, shop_id: str, member_id: str, asset: str, bucket: LedgerBucket = AVAILABLE
) -> int:
    return await LedgerRepository(session).balance(shop_id, member_id, asset, bucket) or 0


async def member_entries(
    session: AsyncSession, shop_id: str, member_id: str, page: PageRequest
) -> tuple[list[tuple[LedgerEntry, LedgerTransaction, LedgerAccount]], str | None]:
    """A member's ledger entries, newest first."""
    return await LedgerRepository(session).member_entries(shop_id, member_id, page)


async def live_lots(session: AsyncSession, shop_id: str, member_id: str) -> list[PointLot]:
    account = await member_account(session, shop_id, member_id, POINTS)
    return await LedgerRepository(session).live_lots(account)


async def transaction_entries(session: AsyncSession, txn_id: str) -> list[tuple[LedgerEntry, LedgerAccount]]:
    return await LedgerRepository(session).entries_with_accounts(txn_id)


async def holder_market(session: AsyncSession, txn_id: str) -> str | None:
    """The market of the member a transaction credits or debits (its points follow that market's expiry)."""
    return await LedgerRepository(session).holder_market(txn_id)
