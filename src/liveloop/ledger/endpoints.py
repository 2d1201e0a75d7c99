from __future__ import annotations

from datetime import timedelta
from typing import Literal

from fastapi import APIRouter, Request

from liveloop.kit.errors import Unprocessable
from liveloop.kit.http import Session, UnitOfWorkRoute
from liveloop.kit.pagination import Page, Pagination
from liveloop.kit.schemas import PathId
from liveloop.kit.time import utc_now
from liveloop.ledger import service
from liveloop.ledger.schemas import (
    AssetBalance,
    LedgerLine,
    LivePointLot,
    MemberBalances,
    Movement,
    Reversal,
    Transaction,
    TransactionEntry,
)
from liveloop.markets import service as markets
from liveloop.members.service import get_member
from liveloop.shops.auth import Operator, requires

router = APIRouter(prefix="/v1/ledger", route_class=UnitOfWorkRoute, tags=["ledger"])
# A member's balances and entries, under the member's path.
members = APIRouter(prefix="/v1/members", route_class=UnitOfWorkRoute, tags=["members"])


def _check_asset(asset: str) -> None:
    if not service.is_asset(asset):
        raise Unprocessable(
            "asset is 'points', 'ticket' or 'credit:<ISO currency>' such as 'credit:EUR'.", code="invalid_asset"
        )


def _key(request: Request, kind: Literal["credit", "debit"]) -> str | None:
    key = request.headers.get("Idempotency-Key")
    return f"api:{kind}:{key}" if key else None


async def _out(session: Session, shop_id: str, txn_id: str) -> Transaction:
    txn = await service.get_transaction(session, shop_id, txn_id)
    rows = await service.transaction_entries(session, txn.id)
    return Transaction(
        id=txn.id,
        kind=txn.kind,
        memo=txn.memo,
        reverses_id=txn.reverses_id,
        created_at=txn.created_at,
        meta=txn.meta,
        entries=[
            TransactionEntry(
                owner_type=a.owner_type, owner_id=a.owner_id, asset=e.asset, bucket=a.bucket, amount=e.amount
            )
            for e, a in rows
        ],
    )


@router.post("/credits", response_model=Transaction, status_code=201)
async def credit(
    body: Movement, request: Request, session: Session, op: Operator = requires("ledger:write")
) -> Transaction:
    _check_asset(body.asset)
    member = await get_member(session, op.shop_id, body.member_id)
    expires = None
    if body.asset == service.POINTS and not body.hold:
        expires = body.expires_at or await markets.points_expiry(session, op.shop_id, member.market, utc_now())
        if expires <= utc_now() + timedelta(seconds=1):
            raise Unprocessable("expires_at must be in the future.", code="invalid_expiry")
    txn = await service.grant(
        session,
        op.shop_id,
        member.id,
        body.asset,
        body.amount,
        pending=body.hold,
        expires_at=expires,
        memo=body.memo or "manual credit",
        idempotency_key=_key(request, "credit"),
    )
    return await _out(session, op.shop_id, txn.id)


@router.post("/debits", response_model=Transaction, status_code=201)
async def debit(
    body: Movement, request: Request, session: Session, op: Operator = requires("ledger:write")
) -> Transaction:
    _check_asset(body.asset)
    member = await get_member(session, op.shop_id, body.member_id)
    txn = await service.spend(
        session,
        op.shop_id,
        member.id,
        body.asset,
        body.amount,
        memo=body.memo or "manual debit",
        idempotency_key=_key(request, "debit"),
    )
    return await _out(session, op.shop_id, txn.id)


@router.get("/transactions/{txn_id}", response_model=Transaction)
async def get_transaction(txn_id: PathId, session: Session, op: Operator = requires("ledger:read")) -> Transaction:
    return await _out(session, op.shop_id, txn_id)


@router.post("/transactions/{txn_id}/release", response_model=Transaction)
async def release(txn_id: PathId, session: Session, op: Operator = requires("ledger:write")) -> Transaction:
    hold = await service.get_transaction(session, op.shop_id, txn_id)
    expires = None
    market = await service.holder_market(session, hold.id)
    if market is not None:
        expires = await markets.points_expiry(session, op.shop_id, market, utc_now())
    txn = await service.release(session, op.shop_id, txn_id, expires_at=expires)
    return await _out(session, op.shop_id, txn.id)


@router.post("/transactions/{txn_id}/reverse", response_model=Transaction)
async def reverse(
    txn_id: PathId, body: Reversal, session: Session, op: Operator = requires("ledger:write")
) -> Transaction:
    result = await service.reverse(session, op.shop_id, txn_id, reason=body.reason, allow_partial=body.allow_partial)
    if result.transaction is None:
        raise Unprocessable(
            "Nothing is left to take back: the member has used all of it.",
            code="nothing_to_reverse",
            shortfall=result.shortfall,
        )
    return await _out(session, op.shop_id, result.transaction.id)


@members.get("/{member_id}/balances", response_model=MemberBalances)
async def balances(member_id: PathId, session: Session, op: Operator = requires("members:read")) -> MemberBalances:
    member = await get_member(session, op.shop_id, member_id)
    lots = await service.live_lots(session, op.shop_id, member.id)
    return MemberBalances(
        member_id=member.id,
        balances=[
            AssetBalance(asset=b.asset, available=b.available, pending=b.pending)
            for b in await service.balances(session, op.shop_id, member.id)
        ],
        point_lots=[LivePointLot(id=lot.id, remaining=lot.remaining, expires_at=lot.expires_at) for lot in lots],
    )


@members.get("/{member_id}/ledger", response_model=Page[LedgerLine])
async def ledger_entries(
    member_id: PathId, session: Session, page: Pagination, op: Operator = requires("members:read")
) -> Page[LedgerLine]:
    """The member's ledger entries, newest first."""
    member = await get_member(session, op.shop_id, member_id)
    rows, cursor = await service.member_entries(session, op.shop_id, member.id, page)
    items = [
        LedgerLine(
            entry_id=e.id,
            transaction_id=t.id,
            kind=t.kind,
            asset=a.asset,
            bucket=a.bucket,
            amount=e.amount,
            memo=t.memo,
            reverses=t.reverses_id,
            created_at=t.created_at,
        )
        for e, t, a in rows
    ]
    return Page(items=items, next_cursor=cursor)
